"""Data-efficient Rainbow (van Hasselt et al. 2019) with SEER, as pure functions.

Same shape as :mod:`seer_jax.agents.curl_sac`: :class:`Der` holds static configuration;
:class:`DerState` (a pytree) holds parameters, the target network, the optimizer state
and the update counter.

* :meth:`Der.init` ``(key) -> state``
* :meth:`Der.act` ``(state, obs, key, explore) -> action``: noisy-net greedy action
  (``explore``) or, in evaluation, the noise-free network with epsilon-greedy 0.001
* :meth:`Der.update` ``(state, batch, key) -> (state, metrics)`` on pixels: double-Q
  distributional (C51) loss on n-step transitions, Adam with gradient-norm clipping,
  target network copied every ``target_update`` updates
* :meth:`Der.freeze`, :meth:`Der.encode` (the 576-d conv features of 4-frame states)
  and :meth:`Der.update_latent` (the same loss on stored features, heads only)

Parameters: ``{"conv": ..., "heads": ...}``; the SEER encoder label is ``conv``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, cast

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from seer_jax import freeze as freeze_lib
from seer_jax.choices import CONV_INITS, DER_CONV_INIT
from seer_jax.networks import DERConv, DuelingC51

ENCODER_KEYS = ("conv",)


@dataclasses.dataclass(frozen=True)
class DerConfig:
    frame_stack: int = 4
    image_size: int = 84
    num_atoms: int = 51
    v_min: float = -10.0
    v_max: float = 10.0
    hidden_dim: int = 256
    noisy_sigma0: float = 0.1
    discount: float = 0.99
    n_step: int = 20
    learning_rate: float = 1e-4
    adam_eps: float = 1.5e-4
    max_grad_norm: float = 10.0
    target_update: int = 2000
    eval_epsilon: float = 0.001
    latent_dtype: str = "float32"
    # The encoder's initialisation: "pytorch" (the released SEER code's PyTorch default,
    # see seer_jax.networks.PatchConv) or "lecun_normal" (Flax's default).
    conv_init: str = DER_CONV_INIT


class DerState(struct.PyTreeNode):
    params: dict[str, Any]  # {"conv", "heads"}
    target: dict[str, Any]
    opt: Any
    step: jax.Array  # () int32, updates done


def categorical_projection(support: jax.Array, target_support: jax.Array, probs: jax.Array) -> jax.Array:
    """Project a distribution ``probs`` (B, atoms) living on ``target_support`` (B, atoms)
    onto the fixed ``support`` (atoms,) by linear interpolation (the C51 projection).

    Target atoms are clipped to the support's range; each one's mass is split between
    its two neighbouring support atoms in proportion to closeness (all of it to one atom
    when it lands exactly on it). Mass is conserved.
    """
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (support.shape[0] - 1)
    tz = jnp.clip(target_support, v_min, v_max)
    # weight of target atom j on support atom i: max(0, 1 - |tz_j - z_i| / delta)
    w = jnp.clip(1.0 - jnp.abs(tz[:, None, :] - support[None, :, None]) / delta, 0.0, 1.0)  # (B, atoms_i, atoms_j)
    return jnp.einsum("bij,bj->bi", w, probs)


class Der:
    """Data-efficient Rainbow for discrete actions from stacked frames."""

    def __init__(self, num_actions: int, config: DerConfig = DerConfig()):
        self.num_actions = int(num_actions)
        self.config = config
        c = config
        if c.conv_init not in CONV_INITS:
            raise ValueError(f"DerConfig.conv_init must be one of {CONV_INITS}, got {c.conv_init!r}.")
        self.conv = DERConv(weight_init=c.conv_init)
        self.heads = DuelingC51(self.num_actions, c.num_atoms, c.hidden_dim, c.noisy_sigma0)
        self.support = jnp.linspace(c.v_min, c.v_max, c.num_atoms)
        self.labels = functools.partial(freeze_lib.label_params, encoder_keys=ENCODER_KEYS)

    def tx(self, frozen: bool) -> optax.GradientTransformation:
        """The optimizer (Adam, global-norm clipping) over conv and heads, or over the
        heads only when ``frozen`` (``seer_jax.freeze.freezable``)."""
        c = self.config
        adam = lambda: optax.adam(c.learning_rate, eps=c.adam_eps)
        return freeze_lib.freezable(
            self.labels, encoder=adam(), heads=adam(), frozen=frozen, max_grad_norm=c.max_grad_norm
        )

    # ------------------------------------------------------------------ shapes
    @property
    def obs_shape(self):
        c = self.config
        return (c.frame_stack, c.image_size, c.image_size, 1)

    @property
    def frame_spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(self.obs_shape[1:], jnp.uint8)

    @property
    def latent_spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((576,), jnp.dtype(self.config.latent_dtype))

    @property
    def action_spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((), jnp.int32)

    # ------------------------------------------------------------------ networks
    @staticmethod
    def _to_input(obs: jax.Array) -> jax.Array:
        # (B, stack, H, W, 1) uint8 -> (B, stack, H, W) uint8: the conv stack takes the
        # frames channels-first and scales by 1/255
        return obs[..., 0]

    def features(self, conv_params: Any, obs: jax.Array) -> jax.Array:
        """576-d conv features of ``obs`` ``(B, stack, 84, 84, 1)`` uint8."""
        return cast(jax.Array, self.conv.apply({"params": conv_params}, self._to_input(obs)))

    def _log_probs(self, head_params, feats, key, noisy: bool):
        return self.heads.apply({"params": head_params}, feats, key, noisy)  # (B, A, atoms) log-probs

    def _q(self, head_params, feats, key, noisy: bool):
        return jnp.sum(jnp.exp(self._log_probs(head_params, feats, key, noisy)) * self.support, axis=-1)

    # ------------------------------------------------------------------ init / act
    def init(self, key: jax.Array) -> DerState:
        """Fresh parameters, target copy and optimizer state."""
        k_conv, k_heads = jax.random.split(key)
        x = jnp.zeros((1, *self.obs_shape), jnp.uint8)
        conv = self.conv.init(k_conv, self._to_input(x))["params"]
        feats = self.features(conv, x)
        heads = self.heads.init(k_heads, feats, k_heads, True)["params"]
        params = {"conv": conv, "heads": heads}
        return DerState(
            params=params,
            target=jax.tree_util.tree_map(jnp.copy, params),
            opt=self.tx(False).init(params),
            step=jnp.zeros((), jnp.int32),
        )

    @property
    def n_step(self) -> int:
        return self.config.n_step

    @property
    def gamma(self) -> float:
        return self.config.discount

    def observe(self, state: DerState, obs: jax.Array, key: jax.Array, frozen: bool) -> tuple[jax.Array, jax.Array]:
        """What the loop stores for ``obs`` (its newest frame before the freeze, its conv
        features after) and the exploration action. After the freeze the features used
        to act are the ones stored: one conv pass per observation."""
        feats = self.features(state.params["conv"], obs[None])
        action = self.act_from_features(state, feats, key, True)[0]
        item = feats[0].astype(jnp.dtype(self.config.latent_dtype)) if frozen else obs[-1]
        return item, action

    def act(self, state: DerState, obs: jax.Array, key: jax.Array, explore: bool) -> jax.Array:
        """Greedy action of the noisy network (``explore``) or of the noise-free network
        with epsilon-greedy ``eval_epsilon`` (evaluation). ``obs``: ``(stack, 84, 84, 1)``,
        or a batch of them (then the actions are ``(B,)``)."""
        single = obs.ndim == 4
        feats = self.features(state.params["conv"], obs[None] if single else obs)
        actions = self.act_from_features(state, feats, key, explore)
        return actions[0] if single else actions

    def act_from_features(self, state: DerState, feats: jax.Array, key: jax.Array, explore: bool) -> jax.Array:
        """Actions ``(B,)`` int32 for conv features ``feats`` ``(B, 576)``: greedy under
        fresh noise when ``explore``, else noise-free greedy with epsilon
        ``eval_epsilon`` (static)."""
        k_noise, k_eps, k_rand = jax.random.split(key, 3)
        q = self._q(state.params["heads"], feats, k_noise, noisy=explore)
        greedy = jnp.argmax(q, axis=-1).astype(jnp.int32)
        if explore:
            return greedy
        rand = jax.random.randint(k_rand, greedy.shape, 0, self.num_actions)
        return jnp.where(jax.random.uniform(k_eps, greedy.shape) < self.config.eval_epsilon, rand, greedy)

    # ------------------------------------------------------------------ loss
    def _loss(self, heads, target_heads, feats, next_feats_online, next_feats_target, batch, key):
        """Double-Q C51 loss: the online network (its current noise) picks the next
        action, the target network (fresh noise) gives its distribution."""
        k_online, k_target = jax.random.split(key)
        b = batch["action"].shape[0]
        # One online pass over [obs; next obs] (same parameters, same noise); only the
        # first half carries gradients.
        both = jnp.concatenate([feats, jax.lax.stop_gradient(next_feats_online)])
        log_p_both = self._log_probs(heads, both, k_online, True)  # (2B, A, atoms)
        log_p_a = log_p_both[jnp.arange(b), batch["action"]]
        next_q = jnp.sum(jnp.exp(jax.lax.stop_gradient(log_p_both[b:])) * self.support, axis=-1)
        next_a = jnp.argmax(next_q, axis=-1)
        target_p = jnp.exp(self._log_probs(target_heads, next_feats_target, k_target, True))[jnp.arange(b), next_a]
        tz = batch["reward"][:, None] + batch["discount"][:, None] * self.support[None, :]
        m = jax.lax.stop_gradient(categorical_projection(self.support, tz, target_p))
        loss = -jnp.sum(m * log_p_a, axis=-1)
        return jnp.mean(loss), jnp.mean(jnp.sum(jnp.exp(log_p_a) * self.support, -1))

    def _finish(self, state, params, opt, loss, q):
        step = state.step + 1
        # A lax.cond, not a select: the copy runs only every `target_update` updates.
        target = jax.lax.cond(
            step % self.config.target_update == 0,
            lambda: jax.tree_util.tree_map(jnp.copy, params),
            lambda: state.target,
        )
        metrics = {"loss": loss, "q_mean": q}
        return DerState(params=params, target=target, opt=opt, step=step), metrics

    def update(self, state: DerState, batch: dict[str, Any], key: jax.Array) -> tuple[DerState, dict[str, jax.Array]]:
        """One DER update on pixels. ``batch``: ``obs``/``next_obs`` ``(B, 4, 84, 84, 1)``
        uint8, ``action`` ``(B,)`` int, ``reward`` (n-step return), ``discount``
        (gamma^m times env discounts: the bootstrap factor), all ``(B,)``. Returns
        ``(new_state, metrics)``."""
        b = batch["action"].shape[0]
        chex.assert_shape(batch["obs"], (b, *self.obs_shape))

        def loss_fn(params):
            # Separate passes for obs (with gradients) and next obs (without): the
            # backward pass then covers only the rows that carry gradients.
            feats = self.features(params["conv"], batch["obs"])
            next_online = self.features(jax.lax.stop_gradient(params["conv"]), batch["next_obs"])
            next_target = self.features(state.target["conv"], batch["next_obs"])
            return self._loss(params["heads"], state.target["heads"], feats, next_online, next_target, batch, key)

        (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt = self.tx(False).update(grads, state.opt)
        return self._finish(state, optax.apply_updates(state.params, updates), opt, loss, q)

    # ------------------------------------------------------------------ SEER
    def freeze(self, state: DerState) -> DerState:
        """Freeze the conv stack (``set_to_zero``, its Adam state dropped); the target's
        convs become the online ones, its heads keep their own schedule."""
        target = {"conv": jax.tree_util.tree_map(jnp.copy, state.params["conv"]), "heads": state.target["heads"]}
        return state.replace(opt=freeze_lib.freeze_opt_state(state.opt, self.tx(True), state.params), target=target)

    def probe_latents(self, state: DerState, obs: jax.Array) -> jax.Array:
        """The conv features ``(B, 576)`` float32 of stacks ``(B, 4, 84, 84, 1)``: what
        ``--freeze-step auto`` watches (:mod:`seer_jax.auto_freeze`)."""
        return self.features(state.params["conv"], obs)

    def encode(self, state: DerState, stacks: jax.Array, key: jax.Array) -> jax.Array:
        """Stored latents of ``stacks`` ``(N, 4, 84, 84, 1)``: the frozen conv features."""
        return self.features(state.params["conv"], stacks).astype(jnp.dtype(self.config.latent_dtype))

    def update_latent(
        self, state: DerState, batch: dict[str, Any], key: jax.Array
    ) -> tuple[DerState, dict[str, jax.Array]]:
        """The DER update on stored features (after the freeze): heads only. ``batch`` as
        :meth:`update` but ``obs``/``next_obs`` are ``(B, 576)`` latents."""
        feats = batch["obs"].astype(jnp.float32)
        nxt = batch["next_obs"].astype(jnp.float32)

        def loss_fn(heads):
            return self._loss(heads["heads"], state.target["heads"], feats, nxt, nxt, batch, key)

        (loss, q), head_grads = jax.value_and_grad(loss_fn, has_aux=True)({"heads": state.params["heads"]})
        grads = freeze_lib.zero_encoder_grads(head_grads, state.params)
        updates, opt = self.tx(True).update(grads, state.opt)
        params = freeze_lib.apply_updates(state.params, updates, self.labels, frozen=True)
        return self._finish(state, params, opt, loss, q)
