#!/usr/bin/env python
"""What bounds the DER latent update on this machine: memory traffic and the noisy layers.

Measures in one process (medians, milliseconds):
  * ``copy_heads_ms``: a NumPy copy of one float32 array the size of the noisy heads
    (the machine's memory bandwidth at this size);
  * ``sgd_ms``, ``adam_ms``, ``clip_adam_ms`` (our optimizer), ``flatten_clip_adam_ms``
    (the same through ``optax.flatten``) over the heads' parameter tree, and
    ``fused_flat_adam_ms``: a hand-written Adam on one flat, donated vector;
  * ``latent_update_ms`` (``Der.update_latent``, batch 32, 18 actions) with the noisy
    layers as they are (the noisy weight formed once per layer) against
    ``latent_update_unformed_ms``: ``x mu + ((x e_in) sigma) e_out``, which never forms
    the weight but does twice the matrix products. Alternated ``--rounds`` times.

    python experiments/bench/der_latent_floor.py   # writes docs/results/der_latent_floor.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from seer_jax import platform

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def median_ms(fn, reps: int, warmup: int = 20) -> float:
    import numpy as np

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "der_latent_floor.json"))
    args = p.parse_args()

    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from seer_jax import networks
    from seer_jax.agents.der import Der

    agent = Der(18)
    state = agent.freeze(agent.init(jax.random.PRNGKey(0)))
    heads = state.params["heads"]
    n = sum(x.size for x in jax.tree_util.tree_leaves(heads))
    grads = jax.tree_util.tree_map(lambda x: x * 0.1, heads)
    out: dict = {"head_parameters": int(n)}

    flat = np.ones(n, np.float32)
    out["copy_heads_ms"] = median_ms(lambda: flat.copy(), args.reps)

    def optimizer_ms(tx) -> float:
        @jax.jit
        def step(params, opt, g):
            updates, opt = tx.update(g, opt, params)
            return optax.apply_updates(params, updates), opt

        carry = [heads, tx.init(heads)]

        def run():
            carry[:] = step(carry[0], carry[1], grads)
            jax.block_until_ready(carry[0])

        return median_ms(run, args.reps)

    adam = lambda: optax.adam(1e-4, eps=1.5e-4)
    out["sgd_ms"] = optimizer_ms(optax.sgd(1e-4))
    out["adam_ms"] = optimizer_ms(adam())
    out["clip_adam_ms"] = optimizer_ms(optax.chain(optax.clip_by_global_norm(10.0), adam()))
    out["flatten_clip_adam_ms"] = optimizer_ms(optax.flatten(optax.chain(optax.clip_by_global_norm(10.0), adam())))

    def fused(p_, m, v, g):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        return p_ - 1e-4 * m / (jnp.sqrt(v) + 1.5e-4), m, v

    fused_step = jax.jit(fused, donate_argnums=(0, 1, 2))
    g_flat = jnp.asarray(flat * 0.1)
    flat_carry = [jnp.asarray(flat), jnp.zeros(n), jnp.zeros(n)]

    def run_fused():
        flat_carry[:] = fused_step(*flat_carry, g_flat)
        jax.block_until_ready(flat_carry[0])

    out["fused_flat_adam_ms"] = median_ms(run_fused, args.reps)

    class UnformedNoisyDense(networks.NoisyDense):
        """``NoisyDense`` (same parameters, same outputs) without forming the noisy weight."""

        @nn.compact
        def __call__(self, x, noise, noisy):
            w_mu, b_mu, w_sigma, b_sigma = self._params(x.shape[-1])
            if not noisy:
                return x @ w_mu + b_mu
            e_in, e_out = self._noise(noise, x.shape[-1])
            return x @ w_mu + ((x * e_in) @ w_sigma) * e_out + b_mu + b_sigma * e_out

    rng = np.random.default_rng(0)
    b = 32
    batch = {
        "obs": jnp.asarray(rng.random((b, 576), np.float32)),
        "next_obs": jnp.asarray(rng.random((b, 576), np.float32)),
        "action": jnp.asarray(rng.integers(0, 18, b), jnp.int32),
        "reward": jnp.asarray(rng.random(b), jnp.float32),
        "discount": jnp.full((b,), 0.8, jnp.float32),
    }
    key = jax.random.PRNGKey(1)

    def update_ms() -> tuple[float, float]:
        a = Der(18)  # builds its heads from networks.NoisyDense as it is now
        carry = [a.freeze(a.init(jax.random.PRNGKey(0)))]
        update = jax.jit(a.update_latent, donate_argnums=0)

        def run():
            carry[0], metrics = update(carry[0], batch, key)
            jax.block_until_ready(carry[0])

        ms = median_ms(run, args.reps, warmup=30)
        return ms, float(update(carry[0], batch, key)[1]["loss"])

    formed = networks.NoisyDense
    rounds: dict[str, list[float]] = {"formed": [], "unformed": []}
    losses = {}
    try:
        for _ in range(args.rounds):
            for name, cls in (("formed", formed), ("unformed", UnformedNoisyDense)):
                networks.NoisyDense = cls  # type: ignore[misc]
                ms, losses[name] = update_ms()
                rounds[name].append(ms)
    finally:
        networks.NoisyDense = formed  # type: ignore[misc]
    out["latent_update_ms"] = float(np.median(rounds["formed"]))
    out["latent_update_unformed_ms"] = float(np.median(rounds["unformed"]))
    out["rounds_ms"] = rounds
    out["losses_after_updates"] = losses  # the two forms compute the same update
    out.update(platform.provenance())
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
