#!/usr/bin/env python
"""Throughput of N seeds after the freeze: one process (seed axis, vmap) vs N processes.

For each setting (Atari: DER + SEER on alien, 18 actions; DeepMind Control: CURL-SAC +
SEER on walker_walk) and N in 1, 2, 4, 8, measures agent steps per second summed over
seeds for the whole post-freeze agent step (act on the frozen encoder's features, step
the environment, store the new latent, sample and update), as the training loop runs it:

  * steps_per_s_one_process: one process, agent and replay states stacked along a seed
    axis, the store/act and update steps vmapped (``seer_jax.seeds``); N = 1 runs the
    single-seed functions of ``seer_jax.train``;
  * steps_per_s_separate_processes: N single-seed processes started together (a barrier
    after compilation and warm-up), their rates summed.

    python experiments/bench/bench_seeds.py          # writes docs/results/bench_seeds.json

Never run it next to a training run: it measures the whole machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)

from seer_jax import platform  # noqa: E402

TASKS = {"atari": "alien", "dmc": "walker_walk"}


def worker(setting_name: str, n: int, seconds: float, barrier: str | None, seed0: int) -> dict:
    """Time the post-freeze agent step of ``n`` seeds in this process."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from seer_jax import replay as replay_lib
    from seer_jax import seeds
    from seer_jax.train import HostTraffic, TrainConfig, make_learn, make_observe

    cfg = TrainConfig(task=TASKS[setting_name], seed=seed0).resolved()
    setting = cfg.setting
    envs = [setting.make_env(cfg, seed0 + i, True) for i in range(n)]
    agent = setting.make_agent(cfg, envs[0])
    latent = replay_lib.Replay(agent.latent_spec, agent.action_spec, capacity=20_000, stack=1)
    keys = [jax.random.split(jax.random.PRNGKey(seed0 + i), 5) for i in range(n)]
    frozen = [agent.freeze(agent.init(k[0])) for k in keys]
    traffic = HostTraffic(check=False)
    zero = np.zeros(agent.action_spec.shape, agent.action_spec.dtype)
    batch_size = int(cfg.batch_size)
    if n == 1:
        state, k_obs, k_upd = frozen[0], keys[0][1], keys[0][2]
        rstate = latent.init()
        observe = make_observe(latent, agent, frozen=True)
        learn = make_learn(latent, agent.update_latent, batch_size, agent.n_step, agent.gamma)
    else:
        state = seeds.stack(frozen)
        k_obs, k_upd = seeds.stack([k[1] for k in keys]), seeds.stack([k[2] for k in keys])
        rstate = seeds.init(latent, n)
        observe = seeds.make_observe(latent, agent, frozen=True)
        learn = seeds.make_learn(latent, agent.update_latent, batch_size, agent.n_step, agent.gamma)

    first_ts = [env.reset() for env in envs]
    count = [0] * n
    rows = [(x.observation, zero, 0.0, 1.0, True, 0) for x in first_ts]
    rstate, policy = traffic.store(observe, rstate, state, rows, k_obs)

    def agent_step(t, rstate, state, policy):
        actions = traffic.down(policy)
        actions = [actions] if n == 1 else list(actions)
        ts = [env.step(a) for env, a in zip(envs, actions, strict=True)]
        for i in range(n):
            count[i] += 1
        rows = [(x.observation, a, x.reward, x.discount, False, c) for x, a, c in zip(ts, actions, count, strict=True)]
        rstate, policy = traffic.store(observe, rstate, state, rows, k_obs)
        if t >= batch_size + 2:
            state, _ = learn(state, rstate, k_upd, traffic.step_index(t))
        done = [x.last() for x in ts]
        if any(done):  # new episodes: only those seeds store their first observation
            obs = [env.reset().observation if d else x.observation for env, x, d in zip(envs, ts, done, strict=True)]
            for i in range(n):
                count[i] += int(done[i])
            rows = [(o, zero, 0.0, 1.0, d, c) for o, d, c in zip(obs, done, count, strict=True)]
            rstate, new_policy = traffic.store(observe, rstate, state, rows, k_obs, done)
            policy = new_policy if n == 1 else jnp.where(jnp.asarray(done).reshape((n,) + (1,) * (policy.ndim - 1)),
                                                         new_policy, policy)  # fmt: skip
        return rstate, state, policy

    t = 0
    for _ in range(batch_size + 40):  # fill past one batch, compile and warm up
        rstate, state, policy = agent_step(t, rstate, state, policy)
        t += 1
    jax.block_until_ready(state)
    if barrier:
        directory, total = barrier.split(":")
        open(os.path.join(directory, f"ready-{seed0}"), "w").close()
        while len(os.listdir(directory)) < int(total):
            time.sleep(0.01)
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        rstate, state, policy = agent_step(t, rstate, state, policy)
        t += 1
        steps += 1
    jax.block_until_ready(state)
    elapsed = time.perf_counter() - t0
    return {"steps_per_s": steps * n / elapsed, "agent_steps": steps * n, "seconds": elapsed}


def run_worker(setting_name: str, n: int, seconds: float, barrier: str | None = None, seed0: int = 0):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", setting_name, str(n), str(seconds), str(seed0)]
    if barrier:
        cmd += ["--barrier", barrier]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(proc) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", nargs="+", default=["atari", "dmc"], choices=sorted(TASKS))
    p.add_argument("--ns", nargs="+", type=int, default=[1, 2, 4, 8])
    p.add_argument("--seconds", type=float, default=15.0, help="timed window per measurement")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "bench_seeds.json"))
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--barrier", help=argparse.SUPPRESS)
    args = p.parse_args()
    platform.reexec_with_fast_allocator()
    if args.worker:
        setting_name, n, seconds, seed0 = args.worker
        print(json.dumps(worker(setting_name, int(n), float(seconds), args.barrier, int(seed0))))
        return 0

    import tempfile

    result: dict = {"settings": {}}
    for name in args.settings:
        one, sep = {}, {}
        for n in args.ns:
            one[n] = result_of(run_worker(name, n, args.seconds))["steps_per_s"]
            if n == 1:
                sep[n] = one[n]
            else:
                with tempfile.TemporaryDirectory() as d:
                    procs = [run_worker(name, 1, args.seconds, f"{d}:{n}", seed0=i) for i in range(n)]
                    sep[n] = sum(result_of(q)["steps_per_s"] for q in procs)
            print(f"{name} N={n}: one process {one[n]:.1f} steps/s, {n} processes {sep[n]:.1f} steps/s", flush=True)
        result["settings"][name] = {
            "task": TASKS[name],
            "steps_per_s_one_process": one,
            "steps_per_s_separate_processes": sep,
            "ratio_one_over_separate": {n: one[n] / sep[n] for n in args.ns},
        }
    result.update(
        seconds_per_measurement=args.seconds,
        **platform.provenance(),
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
