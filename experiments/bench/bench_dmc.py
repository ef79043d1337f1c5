#!/usr/bin/env python
"""Benchmark CURL-SAC + SEER updates on DeepMind Control shapes, in one process.

Measures, at one batch size (default 128), through the real replay buffer:
  * full_update_ms: sample + the pixel (pre-freeze) update, mean over an even number
    of consecutive updates (actor/target steps run every second update);
  * latent_update_ms: sample + the latent (post-freeze) update;
  * encode_ms_per_obs: storing one observation after the freeze (num_copies crops,
    critic and actor latents) and act_ms (one action from pixels);
  * bytes per stored transition before and after the freeze.
With --compare-xla-default the full update is also timed in a child process with
XLA's default CPU fusions (our speed-up's baseline). With --matmul-dtypes float32 bfloat16
everything is timed once per dtype of the heads' products (``--matmul-dtype`` of run.py),
in the same process: the first one's numbers are the top-level keys, all of them are
under ``by_matmul_dtype``.

    python experiments/bench/bench_dmc.py            # writes docs/results/bench_dmc.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from seer_jax import platform

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def timeit(fn, repeats: int) -> list[float]:
    import jax

    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        out.append((time.perf_counter() - t) * 1000)
    return out


def run(
    batch_size: int, full_repeats: int, latent_repeats: int, only_full: bool = False, matmul_dtype: str = "float32"
) -> dict:
    import jax
    import numpy as np

    from seer_jax import replay as replay_lib
    from seer_jax.agents import CurlSac, CurlSacConfig

    agent = CurlSac(action_dim=6, config=CurlSacConfig(matmul_dtype=matmul_dtype))  # walker/cheetah action size
    state = agent.init(jax.random.PRNGKey(0))
    image = replay_lib.Replay(agent.frame_spec, agent.action_spec, capacity=2000, stack=3)
    rs = image.init()
    add = jax.jit(image.add, donate_argnums=0)
    rng = np.random.default_rng(0)
    for t in range(1500):
        rs = add(
            rs,
            rng.integers(0, 256, agent.frame_spec.shape, dtype=np.uint8),
            rng.uniform(-1, 1, 6).astype(np.float32),
            1.0,
            1.0,
            t % 500 == 0,
        )

    def make_learn(replay, update):
        def learn(s, r, k):
            k1, k2 = jax.random.split(k)
            return update(s, replay.sample(r, k1, batch_size), k2)

        return jax.jit(learn, donate_argnums=0)

    learn = make_learn(image, agent.update)
    box = {"s": state, "i": 0}

    # Keys made up front, as the training loop derives them (fold_in) outside the timing.
    keys = list(jax.random.split(jax.random.PRNGKey(0), 1024))

    def step(learn_fn, rstate):
        def f():
            box["i"] += 1
            box["s"], m = learn_fn(box["s"], rstate, keys[box["i"] % len(keys)])
            return box["s"]

        return f

    f = step(learn, rs)
    timeit(f, 2)  # compile + warm
    full = timeit(f, full_repeats)
    # Updates alternate between critic-only and critic+actor+targets: report the mean
    # over an even number of consecutive updates (the cost per update over a run).
    result = {
        "batch_size": batch_size,
        "full_update_ms": float(np.mean(full)),
        "full_update_ms_all": [round(x, 1) for x in full],
    }
    if only_full:
        return result

    act = jax.jit(agent.act, static_argnums=3)
    obs = rng.integers(0, 256, agent.obs_shape, dtype=np.uint8)
    a = lambda: act(box["s"], obs, jax.random.PRNGKey(0), True)
    timeit(a, 3)
    result["act_ms"] = float(np.median(timeit(a, 50)))

    frozen = agent.freeze(box["s"])
    latent = replay_lib.Replay(agent.latent_spec, agent.action_spec, capacity=20000, stack=1)
    t = time.perf_counter()
    lrs = replay_lib.migrate(image, rs, latent, lambda x, k: agent.encode(frozen, x, k), jax.random.PRNGKey(1), 128)
    jax.block_until_ready(lrs)
    result["migrate_s_per_1000_obs"] = (time.perf_counter() - t) / int(rs.size) * 1000
    enc = jax.jit(lambda s, o, k: agent.encode(s, o[None], k))
    e = lambda: enc(frozen, obs, jax.random.PRNGKey(0))
    timeit(e, 3)
    result["encode_ms_per_obs"] = float(np.median(timeit(e, 50)))

    box["s"] = frozen
    learn_latent = make_learn(latent, agent.update_latent)
    f = step(learn_latent, lrs)
    timeit(f, 3)
    lat = timeit(f, latent_repeats)
    result["latent_update_ms"] = float(np.mean(lat))
    result["latent_update_ms_median"] = float(np.median(lat))
    result["image_bytes_per_transition"] = image.bytes_per_slot
    result["latent_bytes_per_transition"] = latent.bytes_per_slot
    result["capacity_factor"] = image.bytes_per_slot / latent.bytes_per_slot
    result["update_speedup"] = result["full_update_ms"] / result["latent_update_ms"]
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--full-repeats", type=int, default=20, help="even: updates alternate actor steps")
    p.add_argument("--latent-repeats", type=int, default=200)
    p.add_argument(
        "--compare-xla-default", action="store_true", help="also time the full update with XLA's default CPU fusions"
    )
    p.add_argument(
        "--matmul-dtypes",
        nargs="+",
        choices=["float32", "bfloat16"],
        default=["float32"],
        help="dtypes of the heads' products to time (run.py's --matmul-dtype); the first is the headline",
    )
    p.add_argument("--only-full", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "bench_dmc.json"))
    args = p.parse_args()
    by_dtype = {
        d: run(args.batch_size, args.full_repeats, args.latent_repeats, args.only_full, matmul_dtype=d)
        for d in args.matmul_dtypes
    }
    result = dict(by_dtype[args.matmul_dtypes[0]], matmul_dtype=args.matmul_dtypes[0])
    if len(by_dtype) > 1:
        result["by_matmul_dtype"] = {
            d: {k: v for k, v in r.items() if not k.endswith("_all")} for d, r in by_dtype.items()
        }
    if args.only_full:
        print(json.dumps(result))
        return 0
    if args.compare_xla_default:
        env = dict(os.environ, SEER_JAX_XLA_DEFAULTS="0")
        env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if f not in platform._XLA_CPU_DEFAULTS)
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--only-full",
            "--batch-size",
            str(args.batch_size),
            "--full-repeats",
            str(args.full_repeats),
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        result["full_update_ms_xla_default_fusions"] = json.loads(out)["full_update_ms"]

    result.update(
        **platform.provenance(),
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_all")}, indent=2))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
