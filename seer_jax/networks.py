"""Flax (linen) modules used by the agents.

CURL-SAC (DeepMind Control): :class:`PixelConv` (the shared conv stack),
:class:`Projection` (dense + LayerNorm to the latent), :class:`QHead` and
:class:`ActorHead` (MLPs on latents).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

RELU_GAIN = 2.0**0.5


def delta_orthogonal(gain: float = RELU_GAIN):
    """Delta-orthogonal conv init: zeros except an orthogonal centre tap (times ``gain``)."""

    def init(key, shape, dtype=jnp.float32):
        kh, kw, cin, cout = shape
        w = jnp.zeros(shape, dtype)
        centre = nn.initializers.orthogonal(scale=gain)(key, (cin, cout), dtype)
        return w.at[kh // 2, kw // 2].set(centre)

    return init


class PixelConv(nn.Module):
    """CURL's conv stack: 32 3x3 stride 2, then ``num_layers - 1`` x 32 3x3 stride 1,
    VALID, ReLU. Input ``(B, 84, 84, C)`` in [0, 1]; output ``(B, 35*35*32)``."""

    num_filters: int = 32
    num_layers: int = 4

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.num_layers):
            x = nn.Conv(
                self.num_filters,
                (3, 3),
                strides=2 if i == 0 else 1,
                padding="VALID",
                kernel_init=delta_orthogonal(),
                bias_init=nn.initializers.zeros,
            )(x)
            x = nn.relu(x)
        return x.reshape(x.shape[0], -1)


class Projection(nn.Module):
    """Dense to ``latent_dim`` then LayerNorm (no tanh, as in the official code)."""

    latent_dim: int = 50

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        z = nn.Dense(self.latent_dim, kernel_init=nn.initializers.orthogonal())(h)
        return nn.LayerNorm()(z)


class MLP(nn.Module):
    hidden: Sequence[int]
    out_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width, kernel_init=nn.initializers.orthogonal())(x))
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal())(x)


class QHead(nn.Module):
    """Twin Q: two MLPs on ``[latent, action]``, each returning ``(B,)``."""

    hidden_dim: int = 1024

    @nn.compact
    def __call__(self, z: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.concatenate([z, action], axis=-1)
        q1 = MLP((self.hidden_dim, self.hidden_dim), 1, name="q1")(x)
        q2 = MLP((self.hidden_dim, self.hidden_dim), 1, name="q2")(x)
        return q1[..., 0], q2[..., 0]


class ActorHead(nn.Module):
    """Gaussian policy trunk: returns ``(mean, log_std)`` with log_std in
    ``[log_std_min, log_std_max]`` through a tanh squash."""

    action_dim: int
    hidden_dim: int = 1024
    log_std_min: float = -10.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP((self.hidden_dim, self.hidden_dim), 2 * self.action_dim)(z)
        mean, log_std = jnp.split(out, 2, axis=-1)
        log_std = jnp.tanh(log_std)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return mean, log_std
