"""Flax (linen) modules used by the agents, and their initialisers.

CURL-SAC (DeepMind Control): :class:`PixelConv` (the shared conv stack),
:class:`Projection` (dense + LayerNorm to the latent), :class:`QHead` and
:class:`ActorHead` (MLPs on latents). DER (Atari): :class:`DERConv` and
:class:`DuelingC51` with :class:`NoisyDense`. Imports only
:mod:`seer_jax.choices` from ``seer_jax``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seer_jax.choices import CONV_INITS, DEFAULT_CONV_INIT

RELU_GAIN = 2.0**0.5

_BF16, _F32 = jnp.bfloat16, jnp.float32
_CANONICAL = (((1,), (0,)), ((), ()))


def _materialised_transpose(a: jax.Array) -> jax.Array:
    """``a.T`` laid out row-major in memory. XLA otherwise folds a transpose into the
    consuming dot as a layout change, and XLA:CPU's fast bfloat16 matrix product
    (YNNPACK, AMX where the CPU has it) only takes a left operand whose contracted
    dimension is its last in memory."""
    t = jnp.transpose(a)
    return jax.lax.optimization_barrier(t.reshape(-1)).reshape(t.shape)


@jax.custom_vjp
def bf16_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` for ``(B, K) x (K, N)`` float32 arrays with bfloat16 inputs and float32
    accumulation and result (the default precision of a float32 matrix product on TPU).

    Its gradient uses bfloat16 products in the layouts XLA:CPU runs fast: about 2x
    faster than float32 for the 1024-wide SAC heads on a CPU with AMX
    (``docs/performance.md``); elsewhere it is a plain mixed-precision product."""
    return _bf16_matmul_fwd(x, w)[0]


def _bf16_matmul_fwd(x, w):
    xb, wb = x.astype(_BF16), w.astype(_BF16)
    return jax.lax.dot_general(xb, wb, _CANONICAL, preferred_element_type=_F32), (xb, wb)


def _bf16_matmul_bwd(res, g):
    xb, wb = res
    gb = g.astype(_BF16)
    dx = jax.lax.dot_general(gb, wb, (((1,), (1,)), ((), ())), preferred_element_type=_F32)  # g w^T
    dw = jax.lax.dot_general(_materialised_transpose(xb), gb, _CANONICAL, preferred_element_type=_F32)  # x^T g
    return dx, dw


bf16_matmul.defvjp(_bf16_matmul_fwd, _bf16_matmul_bwd)


def bf16_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """A ``dot_general`` for ``flax.linen.Dense(dot_general=...)``: a dense layer's
    product (``lhs`` contracted on its last axis with a 2-D kernel) through
    :func:`bf16_matmul`; any other contraction is a plain bfloat16-input product."""
    (lc, rc), (lb, rb) = dimension_numbers
    if not lb and not rb and rhs.ndim == 2 and tuple(lc) == (lhs.ndim - 1,) and tuple(rc) == (0,):
        y = bf16_matmul(lhs.reshape(-1, lhs.shape[-1]), rhs)
        return y.reshape(*lhs.shape[:-1], rhs.shape[1])
    return jax.lax.dot_general(lhs.astype(_BF16), rhs.astype(_BF16), dimension_numbers, preferred_element_type=_F32)


def dense_dot_general(matmul_dtype: str):
    """The ``dot_general`` for dense layers computing in ``matmul_dtype``
    (``"float32"``: flax's default; ``"bfloat16"``: :func:`bf16_dot_general`)."""
    if matmul_dtype == "float32":
        return None
    if matmul_dtype == "bfloat16":
        return bf16_dot_general
    raise ValueError(f"matmul_dtype must be 'float32' or 'bfloat16', got {matmul_dtype!r}.")


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


# PyTorch's nn.LayerNorm default (flax's is 1e-6): the authors' encoder projections use it.
TORCH_LAYER_NORM_EPS = 1e-5


class Projection(nn.Module):
    """Dense to ``latent_dim`` then LayerNorm (no tanh, as in the official code):
    ``(B, F)`` conv features -> ``(B, latent_dim)``."""

    latent_dim: int = 50

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        z = nn.Dense(self.latent_dim, kernel_init=nn.initializers.orthogonal())(h)
        return nn.LayerNorm(epsilon=TORCH_LAYER_NORM_EPS)(z)


class MLP(nn.Module):
    hidden: Sequence[int]
    out_dim: int
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dot = dense_dot_general(self.matmul_dtype)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width, kernel_init=nn.initializers.orthogonal(), dot_general=dot)(x))
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal(), dot_general=dot)(x)


class QHead(nn.Module):
    """Twin Q: two MLPs on ``[latent, action]`` (``(B, latent_dim)``, ``(B, A)``), each
    returning ``(B,)``."""

    hidden_dim: int = 1024
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, z: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.concatenate([z, action], axis=-1)
        q1 = MLP((self.hidden_dim, self.hidden_dim), 1, self.matmul_dtype, name="q1")(x)
        q2 = MLP((self.hidden_dim, self.hidden_dim), 1, self.matmul_dtype, name="q2")(x)
        return q1[..., 0], q2[..., 0]


class ActorHead(nn.Module):
    """Gaussian policy trunk on ``(B, latent_dim)``: returns ``(mean, log_std)``, each ``(B, A)``, with log_std in
    ``[log_std_min, log_std_max]`` through a tanh squash."""

    action_dim: int
    hidden_dim: int = 1024
    log_std_min: float = -10.0
    log_std_max: float = 2.0
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP((self.hidden_dim, self.hidden_dim), 2 * self.action_dim, self.matmul_dtype)(z)
        mean, log_std = jnp.split(out, 2, axis=-1)
        log_std = jnp.tanh(log_std)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return mean, log_std


# ---------------------------------------------------------------------------- DER (Atari)


def _uniform(bound: float) -> Callable[..., jax.Array]:
    """An initializer drawing uniformly from [-bound, bound]."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class PatchConv(nn.Module):
    """A VALID convolution whose stride equals its kernel size (non-overlapping
    patches), computed as patch extraction (a reshape) plus one matrix product.

    Same parameters as ``nn.Conv(features, (k, k), strides=k, padding="VALID")``
    (``kernel`` ``(k, k, in, features)`` with its default init, ``bias``) and the same
    outputs up to float rounding; XLA:CPU runs the backward pass of a strided
    convolution through slow dilated convolutions, this through matrix products.

    ``input_scale`` multiplies the input (applied after the product, where it is
    cheaper): with uint8 input and ``1/255`` the patches are cut from the bytes.

    ``channels_first``: the input is ``(B, C, H, W)`` (e.g. a stack of frames as
    stored), which saves a transpose; the output is channels-last either way.

    ``weight_init``: ``"lecun_normal"`` (Flax's default: LeCun-normal kernel, zero bias) or
    ``"pytorch"`` (PyTorch's ``Conv2d`` default, the released SEER code's: kernel and bias
    uniform in +-1/sqrt(fan_in)).
    """

    features: int
    kernel_size: int
    input_scale: float = 1.0
    channels_first: bool = False
    weight_init: str = DEFAULT_CONV_INIT

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        if self.channels_first:
            b, cin, h, w = x.shape
        else:
            b, h, w, cin = x.shape
        kernel_init: Callable[..., jax.Array]
        bias_init: Callable[..., jax.Array]
        if self.weight_init == "lecun_normal":
            kernel_init, bias_init = nn.initializers.lecun_normal(), nn.initializers.zeros
        elif self.weight_init == "pytorch":
            kernel_init = bias_init = _uniform(1.0 / (k * k * cin) ** 0.5)
        else:
            raise ValueError(f"PatchConv weight_init must be one of {CONV_INITS}, got {self.weight_init!r}.")
        kernel = self.param("kernel", _drawn_flat(kernel_init), (k, k, cin, self.features))
        bias = self.param("bias", bias_init, (self.features,))
        oh, ow = h // k, w // k
        if self.channels_first:  # patch entries ordered (cin, kh, kw): rows of kw stay contiguous
            patches = x[:, :, : oh * k, : ow * k].reshape(b, cin, oh, k, ow, k).transpose(0, 2, 4, 1, 3, 5)
            w2d = kernel.transpose(2, 0, 1, 3).reshape(k * k * cin, self.features)
        else:
            patches = x[:, : oh * k, : ow * k, :].reshape(b, oh, k, ow, k, cin).transpose(0, 1, 3, 2, 4, 5)
            w2d = kernel.reshape(k * k * cin, self.features)
        patches = patches.reshape(b, oh, ow, k * k * cin).astype(kernel.dtype)
        y = patches @ w2d
        if self.input_scale != 1.0:
            y = y * self.input_scale
        return y + bias


def _drawn_flat(init: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """``init`` for a conv kernel ``(kh, kw, cin, cout)``, drawn as the matrix
    ``(kh * kw * cin, cout)`` and reshaped. The same numbers (jax draws random bits in
    row-major element order whatever the shape, and fan-in is ``kh * kw * cin`` either
    way), but XLA:CPU compiles a 4-D draw about 5x slower than a 2-D one (3 s against
    0.6 s per kernel on a 2-core CPU), seconds added to the start of every run."""

    def draw(key, shape, dtype=jnp.float32):
        return init(key, (int(np.prod(shape[:-1])), shape[-1]), dtype).reshape(shape)

    return draw


class DERConv(nn.Module):
    """Data-efficient Rainbow conv stack: 32 5x5 stride 5, 64 5x5 stride 5, ReLU.
    Input ``(B, 4, 84, 84)`` (a stack of frames, channels first), pixels times
    ``input_scale`` (uint8 frames with the default 1/255 give [0, 1]); output
    ``(B, 576)``. ``weight_init``: the layers' initialisation (see :class:`PatchConv`)."""

    input_scale: float = 1.0 / 255.0
    weight_init: str = DEFAULT_CONV_INIT

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(
            PatchConv(32, 5, self.input_scale, channels_first=True, weight_init=self.weight_init, name="Conv_0")(x)
        )
        x = nn.relu(PatchConv(64, 5, weight_init=self.weight_init, name="Conv_1")(x))
        return x.reshape(x.shape[0], -1)


class NoisyDense(nn.Module):
    """Factorised-Gaussian noisy linear layer (Fortunato et al. 2018).

    ``__call__(x, noise, noisy)``: with ``noisy`` the weights are ``mu + sigma * eps``
    with ``eps = f(e_in) f(e_out)^T``, ``f(x) = sign(x) sqrt|x|``, where ``noise`` holds
    the standard-normal draws ``[e_in, e_out]`` (length ``in + out``; see
    :func:`noisy_noise`); without ``noisy``, just ``mu`` (evaluation mode).
    """

    features: int
    sigma0: float = 0.1

    def _params(self, n_in: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """``w_mu, b_mu, w_sigma, b_sigma`` (declared from within the compact call)."""
        bound = 1.0 / n_in**0.5
        uniform = lambda k, s: jax.random.uniform(k, s, minval=-bound, maxval=bound)
        w_mu = self.param("w_mu", uniform, (n_in, self.features))
        b_mu = self.param("b_mu", uniform, (self.features,))
        w_sigma = self.param("w_sigma", nn.initializers.constant(self.sigma0 * bound), (n_in, self.features))
        # sigma0 / sqrt(fan_out) for the bias, as in the reference (Kaixhin) noisy layer
        b_sigma = self.param("b_sigma", nn.initializers.constant(self.sigma0 / self.features**0.5), (self.features,))
        return w_mu, b_mu, w_sigma, b_sigma

    def _noise(self, noise: jax.Array | None, n_in: int) -> tuple[jax.Array, jax.Array]:
        """``f(e_in), f(e_out)`` from the draws ``noise``."""
        if noise is None:
            raise ValueError(f"NoisyDense: noisy=True needs `noise` of length in + out = {n_in + self.features}.")
        f = lambda e: jnp.sign(e) * jnp.sqrt(jnp.abs(e))
        return f(noise[:n_in]), f(noise[n_in:])

    @nn.compact
    def __call__(self, x: jax.Array, noise: jax.Array | None, noisy: bool) -> jax.Array:
        w_mu, b_mu, w_sigma, b_sigma = self._params(x.shape[-1])
        if not noisy:
            return x @ w_mu + b_mu
        e_in, e_out = self._noise(noise, x.shape[-1])
        # Forming the noisy weight costs one weight-sized elementwise pass; it halves the
        # matrix products (one instead of x mu + ((x e_in) sigma) e_out), forward and backward
        # (faster on our CPU: experiments/bench/der_latent_floor.py).
        w = w_mu + w_sigma * (e_in[:, None] * e_out[None, :])
        return x @ w + b_mu + b_sigma * e_out


class DuelingC51(nn.Module):
    """Noisy dueling heads with C51: returns log-probabilities ``(B, A, atoms)``.

    All four noisy layers' noise comes from one normal draw of ``key`` (one random
    operation per forward pass instead of eight).
    """

    num_actions: int
    num_atoms: int = 51
    hidden_dim: int = 256
    sigma0: float = 0.1

    @nn.compact
    def __call__(self, feats: jax.Array, key: jax.Array, noisy: bool) -> jax.Array:
        n_in, h, out_a = feats.shape[-1], self.hidden_dim, self.num_actions * self.num_atoms
        sizes = [n_in + h, n_in + h, h + self.num_atoms, h + out_a]
        noise = jax.random.normal(key, (sum(sizes),)) if noisy else jnp.zeros((sum(sizes),))
        parts = jnp.split(noise, np.cumsum(sizes)[:-1].tolist())
        h_v = nn.relu(NoisyDense(h, self.sigma0, name="fc_h_v")(feats, parts[0], noisy))
        h_a = nn.relu(NoisyDense(h, self.sigma0, name="fc_h_a")(feats, parts[1], noisy))
        v = NoisyDense(self.num_atoms, self.sigma0, name="fc_z_v")(h_v, parts[2], noisy)[:, None, :]
        a = NoisyDense(out_a, self.sigma0, name="fc_z_a")(h_a, parts[3], noisy)
        a = a.reshape(-1, self.num_actions, self.num_atoms)
        q = v + a - a.mean(axis=1, keepdims=True)
        return jax.nn.log_softmax(q, axis=-1)
