#!/usr/bin/env python
"""CURL's 4-layer encoder three ways on XLA:CPU, batch 128 of 9x84x84 (what the pixel
update runs): XLA's convolution (what ``PixelConv`` uses), im2col (a 9x patch tensor and
one matrix product per layer) and nine shifted matrix products summed per layer. Times
the forward pass and the gradient with respect to the kernels (the update never needs
the input's gradient). Median milliseconds.

    python experiments/bench/encoder_conv_forms.py   # writes docs/results/encoder_conv_forms.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)

from seer_jax import platform  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "encoder_conv_forms.json"))
    args = p.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((args.batch_size, 84, 84, 9), np.float32))
    kernels = [jnp.asarray(rng.normal(size=(3, 3, 9 if i == 0 else 32, 32)).astype(np.float32) * 0.1) for i in range(4)]

    def taps(x, stride):
        size = (x.shape[1] - 3) // stride + 1
        end = stride * (size - 1) + 1
        return [x[:, dy : dy + end : stride, dx : dx + end : stride, :] for dy in range(3) for dx in range(3)]

    def conv(ws, x):
        for i, w in enumerate(ws):
            s = 2 if i == 0 else 1
            x = jax.lax.conv_general_dilated(x, w, (s, s), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(x)
        return x

    def im2col(ws, x):
        for i, w in enumerate(ws):
            patches = jnp.concatenate(taps(x, 2 if i == 0 else 1), axis=-1)
            y = patches.reshape(-1, patches.shape[-1]) @ w.reshape(-1, w.shape[-1])
            x = jax.nn.relu(y).reshape(*patches.shape[:3], -1)
        return x

    def shifted(ws, x):
        for i, w in enumerate(ws):
            parts = taps(x, 2 if i == 0 else 1)
            x = jax.nn.relu(sum(jnp.einsum("bhwc,cd->bhwd", t, w[k // 3, k % 3]) for k, t in enumerate(parts)))
        return x

    def median_ms(fn, *a):
        for _ in range(2):
            jax.block_until_ready(fn(*a))
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*a))
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1e3)

    reference = conv(kernels, x)
    result: dict = {"batch_size": args.batch_size, "forms": {}}
    for name, f in (("xla_convolution", conv), ("im2col", im2col), ("shifted_products", shifted)):
        err = float(jnp.abs(f(kernels, x) - reference).max())
        grad = jax.jit(jax.grad(lambda ws, x, f=f: jnp.mean(f(ws, x) ** 2)))
        result["forms"][name] = {
            "forward_ms": median_ms(jax.jit(f), kernels, x),
            "kernel_gradient_ms": median_ms(grad, kernels, x),
            "max_abs_difference_from_convolution": err,
        }
        print(name, result["forms"][name], flush=True)
    result.update(platform.provenance())
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    platform.run_main(main)
