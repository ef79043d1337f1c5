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

Optimizers and the order of one update follow the authors' SEER release
(``seer_dmc/curl_sac.py``), which differ from the original CURL code:

* ``critic_opt`` is one :func:`seer_jax.freeze.freezable` ``multi_transform`` holding the
  authors' ``encoder_optimizer_critic`` (label ``encoder``: ``{conv, critic_proj}``, Adam
  at ``encoder_lr`` with PyTorch's default betas) and ``critic_optimizer`` (label ``heads``:
  ``{q}``, Adam at ``critic_lr``, ``beta1``). The encoder's Adam steps twice per update:
  on the critic loss, then on the CURL loss (one state sees both gradients).
* ``curl_opt`` is ``cpc_optimizer``: Adam at ``encoder_lr`` over the critic encoder and
  ``W``, stepped on the CURL loss.
* ``actor_opt`` holds ``encoder_optimizer_actor`` (``{actor_proj}``, ``encoder_lr``,
  default betas) and ``actor_optimizer`` (``{trunk}``, ``actor_lr``, ``beta1``).

Order: critic step; then the observation is encoded again with the encoder that step has
just updated, and that one forward pass serves the actor step (through
``stop_gradient``) and the CURL anchor (the actor never changes the convolutions or the
critic's projection); the target update; finally CURL, whose positive is encoded by the
target encoder *after* that update. :meth:`CurlSac.update_on_crops` takes the crops and the
policy noise explicitly, for parity checks against other implementations.
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
        """The authors' ``encoder_optimizer_critic`` (``{conv, critic_proj}``, encoder
        label) and ``critic_optimizer`` (``{q}``, heads) as one freezable transform."""
        return self._tx(self.critic_labels, self.config.critic_lr, frozen)

    def actor_tx(self, frozen: bool) -> optax.GradientTransformation:
        """The authors' ``encoder_optimizer_actor`` (``{actor_proj}``, encoder label) and
        ``actor_optimizer`` (``{trunk}``, heads) as one freezable transform."""
        return self._tx(self.actor_labels, self.config.actor_lr, frozen)

    @property
    def encoder_tx(self) -> optax.GradientTransformation:
        """The encoders' Adam: ``encoder_lr`` with PyTorch's default betas (0.9, 0.999)."""
        return optax.adam(self.config.encoder_lr)

    def _tx(self, labels, heads_lr: float, frozen: bool) -> optax.GradientTransformation:
        heads = optax.adam(heads_lr, b1=self.config.beta1)
        return freeze_lib.freezable(labels, encoder=self.encoder_tx, heads=heads, frozen=frozen)

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

    def _policy(self, trunk, z, noise):
        """Tanh-squashed Gaussian sample for standard-normal ``noise`` ``(B, A)`` and its
        log-probability."""
        mean, log_std = self.pi.apply({"params": trunk}, z)
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
        action, _ = self._policy(state.actor["trunk"], za[:1], self._noise(k_act, 1))
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

    def probe_latents(self, state: CurlSacState, obs: jax.Array) -> jax.Array:
        """The critic's latents ``(B, latent_dim)`` of uint8 stacks ``(B, stack, H, W, 3)``
        (centre crop): what ``--freeze-step auto`` watches (:mod:`seer_jax.auto_freeze`)."""
        return self.latents(state, obs)["critic"]

    def act(self, state: CurlSacState, obs: jax.Array, key: jax.Array, explore: bool) -> jax.Array:
        """Action for ``obs`` ``(stack, H, W, 3)`` uint8 (or a batch of them), from the
        centre crop; a policy sample when ``explore`` else the mean. ``explore`` must be
        static under jit."""
        single = obs.ndim == 4
        z = self._proj(state.actor["actor_proj"], self._centre_features(state, obs[None] if single else obs))
        if explore:
            action, _ = self._policy(state.actor["trunk"], z, self._noise(key, z.shape[0]))
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
    def _noise(self, key, n):
        return jax.random.normal(key, (n, self.action_dim))

    def _td_target(self, state, z_next_actor, z_next_target, reward, discount, noise):
        alpha = jnp.exp(state.log_alpha)
        next_action, next_log_prob = self._policy(state.actor["trunk"], z_next_actor, noise)
        tq1, tq2 = self._q(state.target["q"], z_next_target, next_action)
        target_v = jnp.minimum(tq1, tq2) - alpha * next_log_prob
        return jax.lax.stop_gradient(reward + self.config.discount * discount * target_v)

    def _actor_alpha_targets(self, carry, critic, actor_full, actor_latent_fn, z_critic, noise, frozen: bool):
        """Actor and temperature steps, then the Polyak target update.

        ``carry`` holds only what this step changes: ``(actor, actor_opt, log_alpha,
        alpha_opt, target)``, where after the freeze ``actor`` and ``target`` are just
        their head subtrees (``{"trunk"}`` and ``{"q"}``): frozen leaves are never copied.
        """
        c = self.config
        actor, actor_opt, log_alpha, alpha_opt, target = carry
        alpha = jnp.exp(log_alpha)

        def actor_loss_fn(trainable):
            action, log_prob = self._policy(trainable["trunk"], actor_latent_fn(trainable), noise)
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

    def _maybe_actor_step(self, state, actor_latent_fn, z_critic, noise, frozen):
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
            return self._actor_alpha_targets(carry, state.critic, state.actor, actor_latent_fn, z_critic, noise, frozen)

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
          key: draws the three random crops (critic/anchor, CURL positive, next
            observation) and the two policy noises.
        Returns:
          ``(new_state, metrics)``; actor metrics are NaN on updates that skip the actor.
        """
        c = self.config
        b = batch["action"].shape[0]
        chex.assert_shape(batch["obs"], (b, *self.obs_shape))
        chex.assert_shape(batch["next_obs"], (b, *self.obs_shape))
        k_obs, k_pos, k_next, k_target, k_actor = jax.random.split(key, 5)
        crops = {
            "obs": random_crop(k_obs, batch["obs"], c.crop_size),
            "pos": random_crop(k_pos, batch["obs"], c.crop_size),
            "next_obs": random_crop(k_next, batch["next_obs"], c.crop_size),
            "next_noise": self._noise(k_target, b),
            "actor_noise": self._noise(k_actor, b),
        }
        return self.update_on_crops(state, {**batch, **crops})

    def update_on_crops(self, state: CurlSacState, batch: dict[str, Any]) -> tuple[CurlSacState, dict[str, jax.Array]]:
        """:meth:`update` with its randomness given: ``obs``, ``pos`` and ``next_obs``
        are crops ``(B, crop, crop, 3 * stack)`` float32 in [0, 1] (the critic's crop,
        which is also CURL's anchor; CURL's positive, a second crop of the observation;
        the next observation's crop), ``next_noise`` and ``actor_noise`` ``(B, A)``
        standard-normal policy noise (the TD target's next action; the actor step).

        Order and optimizers as the authors' release (module docstring). Encoder passes:
        online and target on ``next_obs`` (forward), online on ``obs`` twice (before
        and after the critic step, each with a backward pass), target on ``pos``.
        """
        b = batch["action"].shape[0]
        chex.assert_equal_shape([batch["obs"], batch["pos"], batch["next_obs"]])
        chex.assert_shape([batch["next_noise"], batch["actor_noise"]], (b, self.action_dim))
        z_next_actor = self._proj(state.actor["actor_proj"], self._conv(state.critic["conv"], batch["next_obs"]))
        z_next_target = self._encode(state.target, batch["next_obs"])[0]
        y = self._td_target(state, z_next_actor, z_next_target, batch["reward"], batch["discount"], batch["next_noise"])

        # 1. Critic step: encoder (encoder_optimizer_critic) and Q heads (critic_optimizer).
        def critic_loss_fn(critic):
            q1, q2 = self._q(critic["q"], self._encode(critic, batch["obs"])[0], batch["action"])
            return jnp.mean((q1 - y) ** 2) + jnp.mean((q2 - y) ** 2), q1

        (critic_loss, q1), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(state.critic)
        updates, critic_opt = self.critic_tx(False).update(grads, state.critic_opt)
        state = state.replace(critic=optax.apply_updates(state.critic, updates), critic_opt=critic_opt)

        # 2. The observation again, through the encoder the critic step has just updated:
        # the actor step (no gradient to the encoder) and the CURL anchor share this pass.
        z, encoder_vjp, h = jax.vjp(
            lambda enc: self._encode(enc, batch["obs"]), _encoder_part(state.critic), has_aux=True
        )
        h_sg, z_sg = jax.lax.stop_gradient(h), jax.lax.stop_gradient(z)
        actor_latent = lambda actor: self._proj(actor["actor_proj"], h_sg)
        state, actor_metrics = self._maybe_actor_step(state, actor_latent, z_sg, batch["actor_noise"], False)

        # 3. CURL, its positive from the target encoder as the target step left it.
        z_pos = self._encode(state.target, batch["pos"])[0]

        def curl_loss_fn(z, w):
            logits = z @ (w @ z_pos.T)
            logits = logits - jnp.max(logits, axis=1, keepdims=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(b)).mean()

        curl_loss, (dz, g_w) = jax.value_and_grad(curl_loss_fn, argnums=(0, 1))(z, state.curl["W"])
        (g_encoder,) = encoder_vjp(dz)
        g_critic = {**g_encoder, "q": jax.tree_util.tree_map(jnp.zeros_like, state.critic["q"])}
        enc_updates, critic_opt = freeze_lib.update_encoder(
            self.encoder_tx, state.critic_opt, g_critic, self.critic_labels
        )
        cpc_updates, curl_opt = self.curl_tx.update({**g_encoder, "W": g_w}, state.curl_opt)
        critic = dict(state.critic)
        for k in CRITIC_ENCODER_KEYS:  # encoder_optimizer_critic.step(), then cpc_optimizer.step()
            critic[k] = optax.apply_updates(optax.apply_updates(critic[k], enc_updates[k]), cpc_updates[k])
        state = state.replace(
            critic=critic,
            critic_opt=critic_opt,
            curl={"W": optax.apply_updates(state.curl["W"], cpc_updates["W"])},
            curl_opt=curl_opt,
        )
        metrics = {
            "critic_loss": critic_loss,
            "curl_loss": curl_loss,
            "q_mean": jnp.mean(q1),
            "alpha": jnp.exp(state.log_alpha),
            **actor_metrics,
        }
        return state.replace(step=state.step + 1), metrics

    def _encode(self, params: Params, crops: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(latent, conv features)`` of crops through ``params``' ``conv`` and
        ``critic_proj`` (the online critic's or the target's)."""
        h = self._conv(params["conv"], crops)
        return self._proj(params["critic_proj"], h), h

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

        picked = {
            "obs": pick(batch["obs"], k_obs),
            "next_obs": pick(batch["next_obs"], k_next),
            "next_noise": self._noise(k_target, b),
            "actor_noise": self._noise(k_actor, b),
        }
        return self.update_latent_on_picked(state, {**batch, **picked})

    def update_latent_on_picked(
        self, state: CurlSacState, batch: dict[str, Any]
    ) -> tuple[CurlSacState, dict[str, jax.Array]]:
        """:meth:`update_latent` with its randomness given: ``obs`` and ``next_obs`` are
        dicts of the picked copies' ``critic`` and ``actor`` latents ``(B, latent_dim)``
        float32, ``next_noise`` and ``actor_noise`` ``(B, A)`` policy noise."""
        obs, nxt = batch["obs"], batch["next_obs"]
        chex.assert_equal_shape([obs["critic"], obs["actor"], nxt["critic"], nxt["actor"]])
        y = self._td_target(state, nxt["actor"], nxt["critic"], batch["reward"], batch["discount"], batch["next_noise"])

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
        state, actor_metrics = self._maybe_actor_step(state, actor_latent, obs["critic"], batch["actor_noise"], True)
        metrics = {
            "critic_loss": critic_loss,
            "q_mean": jnp.mean(q1),
            "alpha": jnp.exp(state.log_alpha),
            **actor_metrics,
        }
        return state.replace(step=state.step + 1), metrics
