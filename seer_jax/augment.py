"""Image augmentation on uint8 frame stacks: random crop (training) and centre crop.

A frame stack has shape ``(stack, H, W, C)``; crops return ``(out, out, stack * C)``
float32 in [0, 1], frames concatenated on the channel axis (oldest first), ready for a
convolutional encoder. Batched versions take a leading batch axis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _to_channels_last(x: jax.Array) -> jax.Array:
    # (..., stack, H, W, C) -> (..., H, W, stack*C), scaled to [0, 1]
    *lead, k, h, w, c = x.shape
    x = jnp.moveaxis(x, -4, -2).reshape(*lead, h, w, k * c)
    return x.astype(jnp.float32) / 255.0


def crop_at(stack: jax.Array, top: jax.Array, left: jax.Array, size: int) -> jax.Array:
    """Crop one stack (stack, H, W, C) at (top, left) to ``size`` x ``size``, all frames alike."""
    k, _, _, c = stack.shape
    return jax.lax.dynamic_slice(stack, (0, top, left, 0), (k, size, size, c))


def random_crop(key: jax.Array, stacks: jax.Array, size: int) -> jax.Array:
    """Independent random crops of a batch of stacks ``(B, stack, H, W, C)`` uint8, at
    offsets drawn from 0 .. H - size - 1 (as SEER's and CURL's released code).

    Returns ``(B, size, size, stack * C)`` float32 in [0, 1].
    """
    b, _, h, w, _ = stacks.shape
    kt, kl = jax.random.split(key)
    # Offsets 0 .. H - size - 1, as the authors' numpy ``randint(0, H - size)`` draws
    # them (the last offset is never drawn); a crop of the full size has offset 0.
    top = jax.random.randint(kt, (b,), 0, max(h - size, 1))
    left = jax.random.randint(kl, (b,), 0, max(w - size, 1))
    crops = jax.vmap(crop_at, in_axes=(0, 0, 0, None))(stacks, top, left, size)
    return _to_channels_last(crops)


def center_crop(stacks: jax.Array, size: int) -> jax.Array:
    """Centre crop of ``(..., stack, H, W, C)`` to ``(..., size, size, stack * C)`` in [0, 1]."""
    h, w = stacks.shape[-3], stacks.shape[-2]
    top, left = (h - size) // 2, (w - size) // 2
    return _to_channels_last(stacks[..., top : top + size, left : left + size, :])
