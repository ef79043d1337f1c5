#!/usr/bin/env python
"""Benchmark DER + SEER on Atari shapes, in one process.

Measures (batch 32, 18 actions, through the real replay buffer and the training loop's
own jitted steps):
  * pixel_update_ms: sample + DER update on 4x84x84 frame stacks (before the freeze);
  * latent_update_ms: sample + DER update on stored 576-d features (after the freeze);
    latent_update_only_ms: the update alone on a fixed batch, beside
    reference_plain_latent_update_ms: a deliberately plain DER update timed in the same
    process (experiments/bench/der_reference.py: no clipping, no freeze machinery);
  * agent_step_ms_after_freeze: the whole agent step after the freeze on a real game
    (act on the frozen features, envpool step, store the features, update);
  * bytes per stored transition before and after the freeze.

    python experiments/bench/bench_atari.py        # writes docs/results/bench_atari.json
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--game", default="alien", help="a game with the full 18-action set")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--agent-steps", type=int, default=2000)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "bench_atari.json"))
    args = p.parse_args()

    import jax
    import numpy as np

    from seer_jax import replay as replay_lib
    from seer_jax.agents.der import Der
    from seer_jax.envs.atari import AtariEnv
    from seer_jax.train import HostTraffic, make_learn, make_observe

    env = AtariEnv(args.game, seed=0, train=True)
    assert env.num_actions == 18, f"{args.game} has {env.num_actions} actions; pick an 18-action game"
    agent = Der(env.num_actions)
    state = agent.init(jax.random.PRNGKey(0))
    image = replay_lib.Replay(agent.frame_spec, agent.action_spec, capacity=12_000, stack=4)
    latent = replay_lib.Replay(agent.latent_spec, agent.action_spec, capacity=40_000, stack=1)
    rs = image.init()
    observe = make_observe(image, agent, frozen=False)
    rng = np.random.default_rng(0)
    ts = env.reset()
    zero = np.zeros((), np.int32)
    traffic = HostTraffic(check=False)  # the training loop's explicit host<->device traffic
    k_obs = jax.random.PRNGKey(0)
    rs, _ = observe(rs, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, 0), k_obs)
    for t in range(3000):  # real frames from random play
        a = np.int32(rng.integers(18))
        ts = env.step(a)
        rs, _ = observe(rs, state, *traffic.up(ts.observation, a, ts.reward, ts.discount, False, t), k_obs)
        if ts.last():
            ts = env.reset()
            rs, _ = observe(rs, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, t), k_obs)

    # Keys made up front, as the training loop derives them (fold_in) outside the timing.
    keys = list(jax.random.split(jax.random.PRNGKey(100), max(args.repeats, args.agent_steps + 50) + 3))

    step0 = jax.device_put(np.int32(0))

    def timed_updates(learn, st, rstate, n):
        for i in range(3):
            st, m = learn(st, rstate, keys[i], step0)
        jax.block_until_ready(st)
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            st, m = learn(st, rstate, keys[3 + i], step0)
            jax.block_until_ready(st)
            times.append((time.perf_counter() - t0) * 1000)
        return st, times

    learn_px = make_learn(image, agent.update, args.batch_size, agent.n_step, agent.gamma)
    state, px = timed_updates(learn_px, state, rs, args.repeats // 3)
    state = agent.freeze(state)
    frozen = state
    lrs = replay_lib.migrate(image, rs, latent, lambda x, k: agent.encode(frozen, x, k), jax.random.PRNGKey(1), 256)
    learn_lat = make_learn(latent, agent.update_latent, args.batch_size, agent.n_step, agent.gamma)
    state, lat = timed_updates(learn_lat, state, lrs, args.repeats)

    # The update alone on one fixed batch (no sampling), and a deliberately plain DER
    # update (experiments/bench/der_reference.py) timed in the same process.
    fixed = jax.jit(lambda r, k: latent.sample(r, k, args.batch_size, agent.n_step, agent.gamma))(
        lrs, jax.random.PRNGKey(3)
    )
    upd_only = jax.jit(agent.update_latent, donate_argnums=0)
    state, only = timed_updates(lambda s, r, k, _: upd_only(s, fixed, k), state, lrs, args.repeats)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from der_reference import time_reference_update

    reference_ms = time_reference_update(args.repeats)

    # The whole agent step after the freeze, exactly as the training loop runs it.
    observe_lat = make_observe(latent, agent, frozen=True)
    ts = env.reset()
    k_obs, k_upd = jax.random.split(jax.random.PRNGKey(11))
    lrs, policy_action = observe_lat(lrs, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, 0), k_obs)
    steps = []
    for t in range(args.agent_steps + 50):
        t0 = time.perf_counter()
        action = traffic.down(policy_action)
        ts = env.step(action)
        # the same explicit transfers and on-device keys as the training loop
        lrs, policy_action = observe_lat(
            lrs, state, *traffic.up(ts.observation, action, ts.reward, ts.discount, False, t + 1), k_obs
        )
        state, m = learn_lat(state, lrs, k_upd, traffic.step_index(t))
        if ts.last():
            ts = env.reset()
            lrs, policy_action = observe_lat(lrs, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, t), k_obs)
        steps.append((time.perf_counter() - t0) * 1000)
    jax.block_until_ready(state)
    steps = steps[50:]  # compile and warm-up

    result = {
        "game": args.game,
        "batch_size": args.batch_size,
        "num_actions": 18,
        "pixel_update_ms": float(np.mean(px)),
        "latent_update_ms": float(np.mean(lat)),
        "latent_update_only_ms": float(np.mean(only)),
        "reference_plain_latent_update_ms": reference_ms,
        "agent_step_ms_after_freeze": float(np.mean(steps)),
        "agent_step_ms_after_freeze_median": float(np.median(steps)),
        "image_bytes_per_transition": image.bytes_per_slot,
        "latent_bytes_per_transition": latent.bytes_per_slot,
        "capacity_factor": image.bytes_per_slot / latent.bytes_per_slot,
        "update_speedup": float(np.mean(px) / np.mean(lat)),
        **platform.provenance(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
