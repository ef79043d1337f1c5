"""CURL-SAC (Srinivas et al. 2020) with SEER, as pure functions.

State is a :class:`CurlSacState` pytree; behaviour is the methods of :class:`CurlSac`,
which holds only static configuration (network shapes, optimizers). Every method is a
pure function of its arguments and can be ``jax.jit``-ed:

* :meth:`CurlSac.init` ``(key) -> state``
* :meth:`CurlSac.act` ``(state, obs, key, explore) -> action``
* :meth:`CurlSac.update` ``(state, batch, key) -> (state, metrics)`` on pixels
  (critic + CURL, then every ``actor_update_freq`` updates the actor, temperature
  and targets)
* :meth:`CurlSac.freeze` ``(state) -> state`` (SEER's freeze: encoder labels to
  ``set_to_zero``, hard copy of the critic into the target, CURL stops)
* :meth:`CurlSac.encode` ``(state, stacks, key) -> latents`` (what is stored after the
  freeze: critic and actor latents of ``num_copies`` random crops)
* :meth:`CurlSac.update_latent` ``(state, batch, key) -> (state, metrics)`` after the
  freeze, on stored latents only.

Parameter layout: ``critic = {conv, critic_proj, q}`` (the critic owns the conv
stack), ``actor = {actor_proj, trunk}`` (the actor reuses the critic's conv stack through
``stop_gradient`` and owns its own projection), ``target = {conv, critic_proj, q}``.
``curl = {W}`` (CURL's bilinear matrix). The SEER "encoder" label covers ``conv``,
``critic_proj`` and ``actor_proj``; CURL (``W`` and its optimizer) stops at the freeze.

Optimizers follow the official CURL code: the critic's Adam steps the encoder and Q heads
on the critic loss; CURL's two Adams (``encoder_optimizer`` over the encoder and
``cpc_optimizer`` over encoder and ``W``, same learning rate and betas) step on the CURL
loss. Fed the same encoder gradients, those two keep identical moments, so the encoder
moves by exactly twice one Adam step of the CURL gradient, ``W`` by one: one forward pass
through the encoder, two backward passes (critic and CURL cotangents).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from seer_jax import freeze as freeze_lib
from seer_jax.augment import center_crop, random_crop
from seer_jax.networks import ActorHead, PixelConv, Projection, QHead

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class CurlSacConfig:
    """Hyperparameters; defaults follow the SEER/CURL DeepMind Control settings."""

    frame_stack: int = 3
    image_size: int = 100
    crop_size: int = 84
    latent_dim: int = 50
    hidden_dim: int = 1024
    num_filters: int = 32
    num_conv_layers: int = 4
    discount: float = 0.99
    init_temperature: float = 0.1
    alpha_lr: float = 1e-4
    alpha_beta1: float = 0.5
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    encoder_lr: float = 1e-3
    beta1: float = 0.9
    critic_tau: float = 0.01
    encoder_tau: float = 0.05
    actor_update_freq: int = 2
    target_update_freq: int = 2
    log_std_min: float = -10.0
    log_std_max: float = 2.0
    num_copies: int = 4
    latent_dtype: str = "float32"
    # The Q and actor heads' products: "float32", or "bfloat16" inputs with float32
    # accumulation (networks.bf16_matmul: ~2x faster latent updates on CPUs with AMX).
    # The projections stay float32 (their 39,200-wide input gains nothing from it).
    matmul_dtype: str = "float32"


class CurlSacState(struct.PyTreeNode):
    critic: Params  # {conv, critic_proj, q}
    curl: Params  # {W}
    actor: Params  # {actor_proj, trunk}
    log_alpha: jax.Array  # ()
    target: Params  # {conv, critic_proj, q}
    critic_opt: Any
    curl_opt: Any  # None after the freeze
    actor_opt: Any
    alpha_opt: Any
    step: jax.Array  # () int32, updates done


CRITIC_ENCODER_KEYS = ("conv", "critic_proj")
ACTOR_ENCODER_KEYS = ("actor_proj",)


def _encoder_part(critic: Params) -> Params:
    return {k: critic[k] for k in CRITIC_ENCODER_KEYS}


def _target_copy(critic: Params) -> Params:
    """A hard copy of the whole critic (encoder and Q heads) as the target critic."""
    return _copy({k: critic[k] for k in ("conv", "critic_proj", "q")})


def _copy(tree):
    # Distinct buffers, so that online and target parameters can both be donated.
    return jax.tree_util.tree_map(jnp.copy, tree)


class CurlSac:
    """CURL-SAC agent for continuous control from pixels (see the module docstring)."""

    def __init__(self, action_dim: int, config: CurlSacConfig = CurlSacConfig()):
        if config.target_update_freq != config.actor_update_freq:
            raise ValueError("actor_update_freq and target_update_freq must be equal.")
        self.action_dim = int(action_dim)
        self.config = config
        c = config
        self.conv = PixelConv(c.num_filters, c.num_conv_layers)
        self.proj = Projection(c.latent_dim)
        self.q = QHead(c.hidden_dim, c.matmul_dtype)
        self.pi = ActorHead(self.action_dim, c.hidden_dim, c.log_std_min, c.log_std_max, c.matmul_dtype)
        self.target_entropy = -float(self.action_dim)
        self.critic_labels = functools.partial(freeze_lib.label_params, encoder_keys=CRITIC_ENCODER_KEYS)
        self.actor_labels = functools.partial(freeze_lib.label_params, encoder_keys=ACTOR_ENCODER_KEYS)
        self.alpha_tx = optax.adam(c.alpha_lr, b1=c.alpha_beta1)
        self.curl_tx = optax.adam(c.encoder_lr)  # CURL's encoder/cpc optimizers: torch default betas

    # ------------------------------------------------------------------ optimizers
    def critic_tx(self, frozen: bool) -> optax.GradientTransformation:
        """Adam over ``{conv, critic_proj}`` (encoder label) and ``{q}`` (heads), all at
        ``critic_lr`` as the official critic_optimizer (``encoder_lr`` is CURL's)."""
        c = self.config
        return self._tx(self.critic_labels, c.critic_lr, c.critic_lr, frozen)

    def actor_tx(self, frozen: bool) -> optax.GradientTransformation:
        """Adam over ``{actor_proj}`` (encoder label) and ``{trunk}`` (heads)."""
        c = self.config
        return self._tx(self.actor_labels, c.actor_lr, c.actor_lr, frozen)

    def _tx(self, labels, encoder_lr: float, heads_lr: float, frozen: bool) -> optax.GradientTransformation:
        b1 = self.config.beta1
        return freeze_lib.freezable(
            labels, encoder=optax.adam(encoder_lr, b1=b1), heads=optax.adam(heads_lr, b1=b1), frozen=frozen
        )

    # ------------------------------------------------------------------ shapes
    @property
    def obs_shape(self) -> tuple[int, int, int, int]:
        c = self.config
        return (c.frame_stack, c.image_size, c.image_size, 3)

    @property
    def frame_spec(self) -> jax.ShapeDtypeStruct:
        """One stored frame (the image replay item)."""
        return jax.ShapeDtypeStruct(self.obs_shape[1:], jnp.uint8)

    @property
    def latent_spec(self) -> dict[str, jax.ShapeDtypeStruct]:
        """One stored latent item after the freeze."""
        c = self.config
        s = jax.ShapeDtypeStruct((c.num_copies, c.latent_dim), jnp.dtype(c.latent_dtype))
        return {"critic": s, "actor": s}

    @property
    def action_spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.action_dim,), jnp.float32)

    # ------------------------------------------------------------------ networks
    def _conv(self, params, x):
        return self.conv.apply({"params": params}, x)

    def _proj(self, params, h):
        return self.proj.apply({"params": params}, h)

    def _q(self, params, z, a):
        return self.q.apply({"params": params}, z, a)

    def _policy(self, trunk, z, key):
        """Tanh-squashed Gaussian sample and its log-probability."""
        mean, log_std = self.pi.apply({"params": trunk}, z)
        noise = jax.random.normal(key, mean.shape)
        pre = mean + noise * jnp.exp(log_std)
        action = jnp.tanh(pre)
        log_prob = jnp.sum(-0.5 * noise**2 - log_std, axis=-1) - 0.5 * math.log(2 * math.pi) * self.action_dim
        log_prob -= jnp.sum(jnp.log(jax.nn.relu(1 - action**2) + 1e-6), axis=-1)
        return action, log_prob

    # ------------------------------------------------------------------ init
    def init(self, key: jax.Array) -> CurlSacState:
        """Fresh parameters, targets (copies of the critic) and optimizer states."""
        c = self.config
        k_conv, k_cp, k_ap, k_q, k_pi, k_w = jax.random.split(key, 6)
        x = jnp.zeros((1, c.crop_size, c.crop_size, 3 * c.frame_stack))
        conv = self.conv.init(k_conv, x)["params"]
        h = self._conv(conv, x)
        z = jnp.zeros((1, c.latent_dim))
        critic = {
            "conv": conv,
            "critic_proj": self.proj.init(k_cp, h)["params"],
            "q": self.q.init(k_q, z, jnp.zeros((1, self.action_dim)))["params"],
        }
        actor = {"actor_proj": self.proj.init(k_ap, h)["params"], "trunk": self.pi.init(k_pi, z)["params"]}
        # uniform [0, 1) as torch.rand in the official CURL code
        curl = {"W": jax.random.uniform(k_w, (c.latent_dim, c.latent_dim))}
        log_alpha = jnp.asarray(math.log(c.init_temperature), jnp.float32)
        return CurlSacState(
            critic=critic,
            curl=curl,
            actor=actor,
            log_alpha=log_alpha,
            target=_target_copy(critic),
            critic_opt=self.critic_tx(False).init(critic),
            curl_opt=self.curl_tx.init({**_encoder_part(critic), **curl}),
            actor_opt=self.actor_tx(False).init(actor),
            alpha_opt=self.alpha_tx.init(log_alpha),
            step=jnp.zeros((), jnp.int32),
        )

    # ------------------------------------------------------------------ acting
    n_step = 1  # one-step transitions; the replay returns environment discounts
    gamma = None

    def observe(self, state: CurlSacState, obs: jax.Array, key: jax.Array, frozen: bool) -> tuple[Any, jax.Array]:
        """What the loop stores for a new observation ``obs`` ``(stack, H, W, 3)`` (its
        newest frame before the freeze, its latent item after) and the exploration
        action for it. ``frozen`` must be static under jit."""
        k_item, k_act = jax.random.split(key)
        if not frozen:
            return obs[-1], self.act(state, obs, k_act, True)
        # One conv pass over the centre crop (to act) and the num_copies random crops (to
        # store): what act() and encode() compute, batched into one small convolution.
        c = self.config
        crops = random_crop(k_item, jnp.repeat(obs[None], c.num_copies, axis=0), c.crop_size)
        h = self._conv(state.critic["conv"], jnp.concatenate([center_crop(obs[None], c.crop_size), crops]))
        za = self._proj(state.actor["actor_proj"], h)
        dtype = jnp.dtype(c.latent_dtype)
        item = {"critic": self._proj(state.critic["critic_proj"], h[1:]).astype(dtype), "actor": za[1:].astype(dtype)}
        action, _ = self._policy(state.actor["trunk"], za[:1], k_act)
        return item, action[0]

    def _centre_features(self, state: CurlSacState, obs: jax.Array) -> jax.Array:
        """The conv features of the centre crop of a batch of stacks (what acting sees)."""
        return self._conv(state.critic["conv"], center_crop(obs, self.config.crop_size))

    def latents(self, state: CurlSacState, obs: jax.Array) -> dict[str, jax.Array]:
        """The critic's and the actor's latents (``{"critic", "actor"}``, each ``(B,
        latent_dim)`` float32) of a batch of uint8 stacks ``(B, stack, H, W, 3)``, from
        the centre crop as :meth:`act` sees them: for probing what the encoder carries."""
        h = self._centre_features(state, obs)
        return {"critic": self._proj(state.critic["critic_proj"], h), "actor": self._proj(state.actor["actor_proj"], h)}

    def act(self, state: CurlSacState, obs: jax.Array, key: jax.Array, explore: bool) -> jax.Array:
        """Action for ``obs`` ``(stack, H, W, 3)`` uint8 (or a batch of them), from the
        centre crop; a policy sample when ``explore`` else the mean. ``explore`` must be
        static under jit."""
        single = obs.ndim == 4
        z = self._proj(state.actor["actor_proj"], self._centre_features(state, obs[None] if single else obs))
        if explore:
            action, _ = self._policy(state.actor["trunk"], z, key)
        else:
            mean, _ = self.pi.apply({"params": state.actor["trunk"]}, z)
            action = jnp.tanh(mean)
        return action[0] if single else action

    def encode(self, state: CurlSacState, stacks: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
        """Latent items of ``stacks`` ``(N, stack, H, W, 3)`` uint8: for each, the critic
        and actor latents of ``num_copies`` independent random crops, each ``(N, copies,
        latent_dim)``."""
        c = self.config
        n = stacks.shape[0]
        reps = jnp.repeat(stacks, c.num_copies, axis=0)
        h = self._conv(state.critic["conv"], random_crop(key, reps, c.crop_size))
        dtype = jnp.dtype(c.latent_dtype)
        zc = self._proj(state.critic["critic_proj"], h).reshape(n, c.num_copies, -1).astype(dtype)
        za = self._proj(state.actor["actor_proj"], h).reshape(n, c.num_copies, -1).astype(dtype)
        return {"critic": zc, "actor": za}

    # ------------------------------------------------------------------ shared SAC pieces
    def _td_target(self, state, z_next_actor, z_next_target, reward, discount, key):
        alpha = jnp.exp(state.log_alpha)
        next_action, next_log_prob = self._policy(state.actor["trunk"], z_next_actor, key)
        tq1, tq2 = self._q(state.target["q"], z_next_target, next_action)
        target_v = jnp.minimum(tq1, tq2) - alpha * next_log_prob
        return jax.lax.stop_gradient(reward + self.config.discount * discount * target_v)

    def _actor_alpha_targets(self, carry, critic, actor_full, actor_latent_fn, z_critic, key, frozen: bool):
        """Actor and temperature steps, then the Polyak target update.

        ``carry`` holds only what this step changes: ``(actor, actor_opt, log_alpha,
        alpha_opt, target)``, where after the freeze ``actor`` and ``target`` are just
        their head subtrees (``{"trunk"}`` and ``{"q"}``): frozen leaves are never copied.
        """
        c = self.config
        actor, actor_opt, log_alpha, alpha_opt, target = carry
        alpha = jnp.exp(log_alpha)

        def actor_loss_fn(trainable):
            action, log_prob = self._policy(trainable["trunk"], actor_latent_fn(trainable), key)
            q1, q2 = self._q(critic["q"], z_critic, action)
            return jnp.mean(alpha * log_prob - jnp.minimum(q1, q2)), log_prob

        (actor_loss, log_prob), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(actor)
        if frozen:  # the frozen projection is not in `actor`: its gradient is zero
            grads = freeze_lib.zero_encoder_grads(grads, actor_full)
            updates, actor_opt = self.actor_tx(True).update(grads, actor_opt)
            actor = {"trunk": freeze_lib.apply_updates(actor_full, updates, self.actor_labels, True)["trunk"]}
        else:
            updates, actor_opt = self.actor_tx(False).update(grads, actor_opt)
            actor = optax.apply_updates(actor, updates)

        entropy_gap = jax.lax.stop_gradient(-log_prob - self.target_entropy)
        alpha_loss_fn = lambda la: jnp.mean(jnp.exp(la) * entropy_gap)
        alpha_loss, alpha_grad = jax.value_and_grad(alpha_loss_fn)(log_alpha)
        alpha_upd, alpha_opt = self.alpha_tx.update(alpha_grad, alpha_opt)
        log_alpha = optax.apply_updates(log_alpha, alpha_upd)

        target = dict(target)
        target["q"] = optax.incremental_update(critic["q"], target["q"], c.critic_tau)
        if not frozen:  # after the freeze the target encoder *is* the frozen online encoder
            for k in ("conv", "critic_proj"):
                target[k] = optax.incremental_update(critic[k], target[k], c.encoder_tau)
        metrics = {"actor_loss": actor_loss, "alpha_loss": alpha_loss, "entropy": -jnp.mean(log_prob)}
        return (actor, actor_opt, log_alpha, alpha_opt, target), metrics

    def _maybe_actor_step(self, state, actor_latent_fn, z_critic, key, frozen):
        """Runs :meth:`_actor_alpha_targets` every ``actor_update_freq`` updates (a
        ``lax.cond``, so only one branch executes); actor metrics are NaN otherwise."""
        if frozen:
            carry = (
                {"trunk": state.actor["trunk"]},
                state.actor_opt,
                state.log_alpha,
                state.alpha_opt,
                {"q": state.target["q"]},
            )
        else:
            carry = (state.actor, state.actor_opt, state.log_alpha, state.alpha_opt, state.target)

        def run(carry):
            return self._actor_alpha_targets(carry, state.critic, state.actor, actor_latent_fn, z_critic, key, frozen)

        def skip(carry):
            _, m = jax.eval_shape(run, carry)
            return carry, jax.tree_util.tree_map(lambda x: jnp.full(x.shape, jnp.nan, x.dtype), m)

        carry, metrics = jax.lax.cond(state.step % self.config.actor_update_freq == 0, run, skip, carry)
        actor, actor_opt, log_alpha, alpha_opt, target = carry
        state = state.replace(
            actor={**state.actor, **actor},
            actor_opt=actor_opt,
            log_alpha=log_alpha,
            alpha_opt=alpha_opt,
            target={**state.target, **target},
        )
        return state, metrics

    # ------------------------------------------------------------------ pixel update
    def update(
        self, state: CurlSacState, batch: dict[str, Any], key: jax.Array
    ) -> tuple[CurlSacState, dict[str, jax.Array]]:
        """One CURL-SAC update on pixels (before the freeze).

        Args:
          batch: ``obs`` and ``next_obs`` ``(B, stack, H, W, 3)`` uint8, ``action``
            ``(B, A)``, ``reward`` ``(B,)``, ``discount`` ``(B,)``.
        Returns:
          ``(new_state, metrics)``; actor metrics are NaN on updates that skip the actor.

        One conv pass with gradients (the critic's, which also serves the CURL anchor and,
        through ``stop_gradient``, the actor) and two forward passes (online conv on the
        next observation for the next action; target encoder on the next observation and
        the CURL positive, batched together).
        """
        c = self.config
        b = batch["action"].shape[0]
        chex.assert_shape(batch["obs"], (b, *self.obs_shape))
        chex.assert_shape(batch["next_obs"], (b, *self.obs_shape))
        k_obs, k_pos, k_next, k_target, k_actor = jax.random.split(key, 5)
        obs = random_crop(k_obs, batch["obs"], c.crop_size)
        pos = random_crop(k_pos, batch["obs"], c.crop_size)
        nxt = random_crop(k_next, batch["next_obs"], c.crop_size)

        z_next_actor = self._proj(state.actor["actor_proj"], self._conv(state.critic["conv"], nxt))
        z_target = self._proj(
            state.target["critic_proj"], self._conv(state.target["conv"], jnp.concatenate([nxt, pos]))
        )
        z_next_target, z_pos = z_target[:b], z_target[b:]
        y = self._td_target(state, z_next_actor, z_next_target, batch["reward"], batch["discount"], k_target)

        def encode(enc):
            h = self._conv(enc["conv"], obs)
            return self._proj(enc["critic_proj"], h), h

        z, encoder_vjp, h = jax.vjp(encode, _encoder_part(state.critic), has_aux=True)

        def q_loss(z, q):
            q1, q2 = self._q(q, z, batch["action"])
            return jnp.mean((q1 - y) ** 2) + jnp.mean((q2 - y) ** 2), q1

        def curl_loss_fn(z, w):
            logits = z @ w @ z_pos.T
            logits = logits - jnp.max(logits, axis=1, keepdims=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(b)).mean()

        (critic_loss, q1), (dz_critic, g_q) = jax.value_and_grad(q_loss, argnums=(0, 1), has_aux=True)(
            z, state.critic["q"]
        )
        curl_loss, (dz_curl, g_w) = jax.value_and_grad(curl_loss_fn, argnums=(0, 1))(z, state.curl["W"])
        (g_encoder_critic,) = encoder_vjp(dz_critic)
        (g_encoder_curl,) = encoder_vjp(dz_curl)

        # Critic step (critic_optimizer): encoder and Q heads on the critic loss.
        updates, critic_opt = self.critic_tx(False).update({**g_encoder_critic, "q": g_q}, state.critic_opt)
        state = state.replace(critic=optax.apply_updates(state.critic, updates), critic_opt=critic_opt)

        h, z = jax.lax.stop_gradient(h), jax.lax.stop_gradient(z)
        actor_latent = lambda actor: self._proj(actor["actor_proj"], h)
        state, actor_metrics = self._maybe_actor_step(state, actor_latent, z, k_actor, frozen=False)

        # CURL step, after the critic, actor and target steps as in the official code.
        curl_updates, curl_opt = self.curl_tx.update({**g_encoder_curl, "W": g_w}, state.curl_opt)
        critic = dict(state.critic)
        for k in CRITIC_ENCODER_KEYS:  # encoder_optimizer + cpc_optimizer: two identical Adam steps
            critic[k] = jax.tree_util.tree_map(lambda p, u: p + 2.0 * u, critic[k], curl_updates[k])
        state = state.replace(critic=critic, curl={"W": state.curl["W"] + curl_updates["W"]}, curl_opt=curl_opt)
        metrics = {
            "critic_loss": critic_loss,
            "curl_loss": curl_loss,
            "q_mean": jnp.mean(q1),
            "alpha": jnp.exp(state.log_alpha),
            **actor_metrics,
        }
        return state.replace(step=state.step + 1), metrics

    # ------------------------------------------------------------------ SEER
    def freeze(self, state: CurlSacState) -> CurlSacState:
        """SEER's freeze: encoder labels switch to ``set_to_zero`` (their optimizer state
        is dropped) and the whole critic is hard-copied into the target critic."""
        return state.replace(
            critic_opt=freeze_lib.freeze_opt_state(state.critic_opt, self.critic_tx(True), state.critic),
            actor_opt=freeze_lib.freeze_opt_state(state.actor_opt, self.actor_tx(True), state.actor),
            target=_target_copy(state.critic),
            curl_opt=None,  # CURL stops at the freeze
        )

    def update_latent(
        self, state: CurlSacState, batch: dict[str, Any], key: jax.Array
    ) -> tuple[CurlSacState, dict[str, jax.Array]]:
        """One SAC update on stored latents (after the freeze); only the heads train.

        Args:
          batch: ``obs`` and ``next_obs`` dicts with ``critic`` and ``actor`` latents
            ``(B, num_copies, latent_dim)``, plus ``action``, ``reward``, ``discount``.
            One of the ``num_copies`` crops is picked at random per observation.
        Returns:
          ``(new_state, metrics)``, as :meth:`update` (no CURL metrics).
        """
        c = self.config
        b = batch["action"].shape[0]
        chex.assert_shape(batch["obs"]["critic"], (b, c.num_copies, c.latent_dim))
        k_obs, k_next, k_target, k_actor = jax.random.split(key, 4)

        def pick(latents, k):
            copy = jax.random.randint(k, (b,), 0, c.num_copies)
            return {n: latents[n][jnp.arange(b), copy].astype(jnp.float32) for n in ("critic", "actor")}

        obs, nxt = pick(batch["obs"], k_obs), pick(batch["next_obs"], k_next)
        y = self._td_target(state, nxt["actor"], nxt["critic"], batch["reward"], batch["discount"], k_target)

        def loss_fn(critic):
            q1, q2 = self._q(critic["q"], obs["critic"], batch["action"])
            return jnp.mean((q1 - y) ** 2) + jnp.mean((q2 - y) ** 2), q1

        # Only the Q heads enter the loss; the encoder's label is frozen (set_to_zero), so
        # its gradients are never formed and its parameters are never rewritten.
        (critic_loss, q1), q_grads = jax.value_and_grad(loss_fn, has_aux=True)({"q": state.critic["q"]})
        grads = freeze_lib.zero_encoder_grads(q_grads, state.critic)
        updates, critic_opt = self.critic_tx(True).update(grads, state.critic_opt)
        critic = freeze_lib.apply_updates(state.critic, updates, self.critic_labels, frozen=True)
        state = state.replace(critic=critic, critic_opt=critic_opt)

        actor_latent = lambda trainable: obs["actor"]
        state, actor_metrics = self._maybe_actor_step(state, actor_latent, obs["critic"], k_actor, frozen=True)
        metrics = {
            "critic_loss": critic_loss,
            "q_mean": jnp.mean(q1),
            "alpha": jnp.exp(state.log_alpha),
            **actor_metrics,
        }
        return state.replace(step=state.step + 1), metrics
