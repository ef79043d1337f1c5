#!/usr/bin/env python
"""Where the post-freeze agent step of walker_walk spends its time (CURL-SAC + SEER).

Times each piece of the training loop's step after the freeze, synchronously (each piece
waits for its result), then the step as the loop runs it (pipelined: the update runs
while the next environment step renders):

  * physics: the action repeated (2 MuJoCo steps);
  * render: one 100x100 frame of camera 0 (MuJoCo over EGL);
  * upload: the new observation and transition to the device;
  * observe: encode the observation's 4 random crops (stored latents) and act on the
    centre crop with the frozen encoder;
  * update: sample a batch of 128 latents and update the SAC heads;
  * download: the next action.

Then, not in the sum: the two halves of ``observe`` on their own (``encode_only``: the 4
stored crops; ``act_only``: the centre crop and the policy), and the step inside the real
training loop (``train()`` after an early freeze, without evaluation or checkpoints), whose
difference from the pipelined step is the loop's own cost: logging, the progress line,
the host-side bookkeeping.

    python experiments/bench/profile_walker_step.py   # docs/results/profile_walker_step.json
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
    p.add_argument("--steps", type=int, default=300)
    p.add_argument(
        "--matmul-dtype", choices=["float32", "bfloat16"], default="float32", help="the heads' products (run.py's flag)"
    )
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "profile_walker_step.json"))
    args = p.parse_args()

    import jax
    import numpy as np

    from seer_jax import replay as replay_lib
    from seer_jax.train import HostTraffic, TrainConfig, make_learn, make_observe

    cfg = TrainConfig(task="walker_walk", matmul_dtype=args.matmul_dtype).resolved()
    env = cfg.setting.make_env(cfg, 0, True)
    agent = cfg.setting.make_agent(cfg, env)
    k_init, k_obs, k_upd = jax.random.split(jax.random.PRNGKey(0), 3)
    state = agent.freeze(agent.init(k_init))
    latent = replay_lib.Replay(agent.latent_spec, agent.action_spec, capacity=20_000, stack=1)
    rstate = latent.init()
    observe = make_observe(latent, agent, frozen=True)
    learn = make_learn(latent, agent.update_latent, int(cfg.batch_size), agent.n_step, agent.gamma)
    traffic = HostTraffic(check=False)
    zero = np.zeros(agent.action_spec.shape, agent.action_spec.dtype)
    ts = env.reset()
    rstate, policy = observe(rstate, state, *traffic.up(ts.observation, zero, 0.0, 1.0, True, 0), k_obs)
    dm = env._env  # the dm_control environment under the pixel wrapper
    pieces: dict[str, list[float]] = {k: [] for k in ("physics", "render", "upload", "observe", "update", "download")}

    def timed(name, fn, *fn_args):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*fn_args))
        pieces[name].append((time.perf_counter() - t0) * 1000)
        return out

    warm = int(cfg.batch_size) + 40
    for t in range(warm + args.steps):
        action = timed("download", traffic.down, policy)
        timed("physics", lambda a: [dm.step(a) for _ in range(env.action_repeat)], action)
        frame = timed("render", env._render)
        env._frames.append(frame)
        inputs = timed("upload", traffic.up, env._observation(), action, 0.0, 1.0, False, t + 1)
        rstate, policy = timed("observe", observe, rstate, state, *inputs, k_obs)
        if t >= int(cfg.batch_size) + 2:
            state, _ = timed("update", learn, state, rstate, k_upd, traffic.step_index(t))
        if t == warm - 1:
            for v in pieces.values():
                v.clear()
    sync = {k: float(np.median(v)) for k, v in pieces.items()}

    # The step as the training loop runs it: nothing waits except for the next action.
    ts = env.reset()
    times = []
    for t in range(args.steps):
        t0 = time.perf_counter()
        action = traffic.down(policy)
        ts = env.step(action)
        rstate, policy = observe(rstate, state, *traffic.up(ts.observation, action, ts.reward, 1.0, False, t), k_obs)
        state, _ = learn(state, rstate, k_upd, traffic.step_index(t))
        times.append((time.perf_counter() - t0) * 1000)
    jax.block_until_ready(state)

    # The halves of observe on their own (one conv pass does both in the loop).
    encode = jax.jit(agent.encode)
    act = jax.jit(agent.act, static_argnums=3)
    obs = jax.device_put(ts.observation)
    halves: dict[str, list[float]] = {"encode_only": [], "act_only": []}
    for t in range(40 + args.steps):
        t0 = time.perf_counter()
        jax.block_until_ready(encode(state, obs[None], k_obs))
        t1 = time.perf_counter()
        jax.block_until_ready(act(state, obs, k_obs, True))
        if t >= 40:
            halves["encode_only"].append((t1 - t0) * 1000)
            halves["act_only"].append((time.perf_counter() - t1) * 1000)

    # The step inside train() itself: freeze right after the first few pixel updates,
    # then args.steps agent steps on latents; no evaluation until the end, no checkpoint.
    # The loop reports progress once at the end of every agent step: the intervals
    # between those calls are its steps (the first 20 after the freeze, which compile,
    # are left out).
    import tempfile

    from seer_jax.logging import RunLogger
    from seer_jax.train import train

    stamps: list[tuple[float, str]] = []
    progress = RunLogger.progress

    def stamped(self, *a, **kw):
        stamps.append((time.perf_counter(), kw.get("phase", "")))
        return progress(self, *a, **kw)

    init = int(cfg.batch_size) + 2
    RunLogger.progress = stamped  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train(
                TrainConfig(
                    task="walker_walk",
                    matmul_dtype=args.matmul_dtype,
                    init_steps=init,
                    freeze_step=init + 3,
                    env_steps=(init + 3 + 20 + args.steps) * env.action_repeat,
                    eval_every=0,
                    eval_episodes=1,
                    checkpoint_every=0,
                    run_dir=os.path.join(tmp, "run"),
                )
            )
    finally:
        RunLogger.progress = progress  # type: ignore[method-assign]
    latent_times = [t for t, phase in stamps if phase == "latents"]
    loop_steps = np.diff(latent_times)[20:] * 1000
    result = {
        "task": "walker_walk",
        "action_repeat": env.action_repeat,
        "batch_size": int(cfg.batch_size),
        "matmul_dtype": args.matmul_dtype,
        "piece_ms_median": sync,
        "sum_of_pieces_ms": float(sum(sync.values())),
        "pipelined_step_ms_median": float(np.median(times[20:])),
        "pipelined_step_ms_mean": float(np.mean(times[20:])),
        "observe_halves_ms_median": {k: float(np.median(v)) for k, v in halves.items()},
        "training_loop_step_ms_median": float(np.median(loop_steps)),
        "training_loop_step_ms_mean": float(np.mean(loop_steps)),
        "training_loop_steps": len(loop_steps),
        "loop_overhead_ms": float(np.median(loop_steps) - np.median(times[20:])),
        **platform.provenance(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
