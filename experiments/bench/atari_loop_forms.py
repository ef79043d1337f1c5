#!/usr/bin/env python
"""The post-freeze DER + SEER agent step on a real game, three ways, in one process.

Where does the time of an Atari agent step after the freeze go, and does the loop's
shape matter? Each form runs the same work per step (download the action, envpool
step, upload the observation, store its frozen features and pick the next action,
sample and update on latents) for ``--agent-steps`` steps after the same warm-up:

* ``loop``: what ``seer_jax.train`` runs: ``make_observe`` and ``make_learn`` (agent
  state donated) as two jitted calls, the step counter uploaded on its own;
* ``loop_no_donation``: the same, the update not donating the agent state;
* ``fused``: observe and learn in one jitted call (replay and agent state donated), the
  step counter uploaded with the observation.

The forms alternate in rounds (``--rounds``) so that drift of a shared machine hits all
of them alike; reported are the per-round medians (ms per agent step) and, for ``loop``,
the host-side pieces timed inside the steps.

    python experiments/bench/atari_loop_forms.py   # writes docs/results/atari_loop_forms.json
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
    p.add_argument("--game", default="alien")
    p.add_argument("--agent-steps", type=int, default=1500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "atari_loop_forms.json"))
    args = p.parse_args()

    import jax
    import numpy as np

    from seer_jax import replay as replay_lib
    from seer_jax.agents.der import Der
    from seer_jax.envs.atari import AtariEnv
    from seer_jax.train import HostTraffic, make_learn, make_observe

    env = AtariEnv(args.game, seed=0, train=True)
    agent = Der(env.num_actions)
    state = agent.init(jax.random.PRNGKey(0))
    image = replay_lib.Replay(agent.frame_spec, agent.action_spec, capacity=12_000, stack=4)
    latent = replay_lib.Replay(agent.latent_spec, agent.action_spec, capacity=30_000, stack=1)
    traffic = HostTraffic(check=False)
    zero = np.zeros((), np.int32)
    rng = np.random.default_rng(0)
    k_obs, k_upd = jax.random.split(jax.random.PRNGKey(11))

    # A buffer of real frames from random play, then the freeze and the migration.
    observe_px = make_observe(image, agent, frozen=False)
    rs = image.init()
    ts = env.reset()
    rs, _ = observe_px(rs, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, 0), k_obs)
    for t in range(3000):
        a = np.int32(rng.integers(env.num_actions))
        ts = env.step(a)
        rs, _ = observe_px(rs, state, *traffic.up(ts.observation, a, ts.reward, ts.discount, False, t), k_obs)
        if ts.last():
            ts = env.reset()
            rs, _ = observe_px(rs, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, t), k_obs)
    state = agent.freeze(state)
    frozen = state
    lrs = replay_lib.migrate(image, rs, latent, lambda x, k: agent.encode(frozen, x, k), jax.random.PRNGKey(1), 256)
    del rs

    observe = make_observe(latent, agent, frozen=True)
    learn = make_learn(latent, agent.update_latent, 32, agent.n_step, agent.gamma)
    learn_keep = jax.jit(learn.__wrapped__ if hasattr(learn, "__wrapped__") else learn)

    def fused_fn(replay_state, agent_state, obs, action, reward, discount, first, count, step, k_o, k_u):
        item, next_action = agent.observe(agent_state, obs, jax.random.fold_in(k_o, count), True)
        replay_state = latent.add(replay_state, item, action, reward, discount, first)
        k_sample, k_update = jax.random.split(jax.random.fold_in(k_u, step))
        batch = latent.sample(replay_state, k_sample, 32, agent.n_step, agent.gamma)
        agent_state, metrics = agent.update_latent(agent_state, batch, k_update)
        return replay_state, agent_state, metrics, next_action

    fused = jax.jit(fused_fn, donate_argnums=(0, 1))

    def start_episode(lrs, state, count):
        """Reset the game and store its first observation (both forms, at each episode's end)."""
        ts = env.reset()
        lrs, policy = observe(lrs, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, count), k_obs)
        return ts, lrs, policy

    def run_loop(lrs, state, n, learn_fn, pieces=None):
        ts, lrs, policy = start_episode(lrs, state, 0)
        times = []
        for t in range(n):
            t0 = time.perf_counter()
            action = traffic.down(policy)
            t1 = time.perf_counter()
            ts = env.step(action)
            t2 = time.perf_counter()
            lrs, policy = observe(
                lrs, state, *traffic.up(ts.observation, action, ts.reward, ts.discount, False, t), k_obs
            )
            t3 = time.perf_counter()
            state, _ = learn_fn(state, lrs, k_upd, traffic.step_index(t))
            t4 = time.perf_counter()
            if ts.last():
                ts, lrs, policy = start_episode(lrs, state, t)
            times.append((t4 - t0) * 1e3)
            if pieces is not None:
                pieces.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3))
        jax.block_until_ready(state)
        return lrs, state, times

    def run_fused(lrs, state, n):
        ts, lrs, policy = start_episode(lrs, state, 0)
        times = []
        for t in range(n):
            t0 = time.perf_counter()
            action = traffic.down(policy)
            ts = env.step(action)
            host = (ts.observation, np.asarray(action), np.float32(ts.reward), np.float32(ts.discount))
            host = (*host, np.bool_(False), np.int32(t), np.int32(t))
            lrs, state, _, policy = fused(lrs, state, *jax.device_put(host), k_obs, k_upd)
            if ts.last():
                ts, lrs, policy = start_episode(lrs, state, t)
            times.append((time.perf_counter() - t0) * 1e3)
        jax.block_until_ready(state)
        return lrs, state, times

    forms = {
        "loop": lambda lrs, st, n, pieces=None: run_loop(lrs, st, n, learn, pieces),
        "loop_no_donation": lambda lrs, st, n, pieces=None: run_loop(lrs, st, n, learn_keep),
        "fused": lambda lrs, st, n, pieces=None: run_fused(lrs, st, n),
    }
    for f in forms.values():  # compile
        lrs, state, _ = f(lrs, state, 60)
    medians: dict[str, list[float]] = {k: [] for k in forms}
    pieces: list[tuple] = []
    for r in range(args.rounds):
        for name, f in forms.items():
            lrs, state, times = f(lrs, state, args.agent_steps, pieces if name == "loop" else None)
            medians[name].append(float(np.median(times[20:])))
            print(f"round {r} {name}: {medians[name][-1]:.2f} ms per agent step", flush=True)
    pc = np.median(np.asarray(pieces), axis=0)
    result = {
        "game": args.game,
        "agent_steps_per_round": args.agent_steps,
        "ms_per_agent_step_by_round": medians,
        "ms_per_agent_step": {k: float(np.median(v)) for k, v in medians.items()},
        "loop_pieces_median_ms": dict(
            zip(("download_action", "env_step", "upload_and_observe", "step_counter_and_learn"), map(float, pc))
        ),
        **platform.provenance(),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result["ms_per_agent_step"]))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
