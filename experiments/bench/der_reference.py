"""A deliberately plain DER latent update, the baseline that bench_atari.py times beside
ours in the same run: plain jnp noisy dueling C51 heads (noise drawn per layer), the
double-Q C51 loss, optax.adam; no gradient clipping, no SEER freeze machinery, no
replay sampling, nothing donated."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax


def time_reference_update(
    repeats: int = 300, B: int = 32, A: int = 18, N: int = 51, H: int = 256, F: int = 576
) -> float:
    """Mean ms per call of the plain update (after 20 warm-up calls)."""
    r = np.random.default_rng(0)

    def layer(i, o):
        b = 1 / np.sqrt(i)
        return dict(
            wm=jnp.asarray(r.uniform(-b, b, (i, o)), jnp.float32),
            ws=jnp.full((i, o), 0.1 * b, jnp.float32),
            bm=jnp.asarray(r.uniform(-b, b, (o,)), jnp.float32),
            bs=jnp.full((o,), 0.1 / np.sqrt(o), jnp.float32),
        )

    params = dict(hv=layer(F, H), ha=layer(F, H), zv=layer(H, N), za=layer(H, A * N))
    target = jax.tree_util.tree_map(jnp.copy, params)
    support = jnp.linspace(-10, 10, N)
    f = lambda e: jnp.sign(e) * jnp.sqrt(jnp.abs(e))

    def noisy(p, x, k):
        k1, k2 = jax.random.split(k)
        ei = f(jax.random.normal(k1, (p["wm"].shape[0],)))
        eo = f(jax.random.normal(k2, (p["wm"].shape[1],)))
        return x @ (p["wm"] + p["ws"] * jnp.outer(ei, eo)) + p["bm"] + p["bs"] * eo

    def net(p, x, k):
        ks = jax.random.split(k, 4)
        v = noisy(p["zv"], jax.nn.relu(noisy(p["hv"], x, ks[0])), ks[1])[:, None]
        a = noisy(p["za"], jax.nn.relu(noisy(p["ha"], x, ks[2])), ks[3]).reshape(-1, A, N)
        return jax.nn.log_softmax(v + a - a.mean(1, keepdims=True), -1)

    def loss(p, tp, batch, k):
        k1, k2 = jax.random.split(k)
        logp = net(p, batch["obs"], k1)[jnp.arange(B), batch["action"]]
        pn = jnp.exp(net(p, batch["next_obs"], k1))
        na = jnp.argmax((pn * support).sum(-1), -1)
        tpn = jnp.exp(net(tp, batch["next_obs"], k2))[jnp.arange(B), na]
        tz = jnp.clip(batch["reward"][:, None] + batch["discount"][:, None] * support, -10, 10)
        w = jnp.clip(1 - jnp.abs(tz[:, None, :] - support[None, :, None]) / 0.4, 0, 1)
        m = jax.lax.stop_gradient(jnp.einsum("bij,bj->bi", w, tpn))
        return -jnp.mean(jnp.sum(m * logp, -1))

    tx = optax.adam(1e-4, eps=1.5e-4)
    opt = tx.init(params)

    @jax.jit
    def update(p, o, tp, batch, k):
        g = jax.grad(loss)(p, tp, batch, k)
        u, o = tx.update(g, o)
        return optax.apply_updates(p, u), o

    batch = dict(
        obs=jnp.asarray(r.random((B, F)), jnp.float32),
        next_obs=jnp.asarray(r.random((B, F)), jnp.float32),
        action=jnp.asarray(r.integers(0, A, B), jnp.int32),
        reward=jnp.asarray(r.random(B), jnp.float32),
        discount=jnp.full((B,), 0.8, jnp.float32),
    )
    keys = [jax.random.PRNGKey(i) for i in range(repeats + 20)]
    for i in range(20):
        params, opt = update(params, opt, target, batch, keys[i])
    jax.block_until_ready(params)
    t = time.perf_counter()
    for i in range(repeats):
        params, opt = update(params, opt, target, batch, keys[20 + i])
    jax.block_until_ready(params)
    return (time.perf_counter() - t) / repeats * 1000
