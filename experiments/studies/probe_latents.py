#!/usr/bin/env python
"""How much of the walker's state do SEER's frozen latents carry? Linear and MLP probes.

After the freeze the SAC heads see only the 50-number latents of the frozen encoder. This
script plays episodes of a DeepMind Control task with a run's policy (exploring, as in
training), keeps each step's pixel stack (the standard 100x100 images, centre crop) and
the task's true state variables (walker: 14 orientations, the torso height, 9
velocities, and the torso's forward speed that the walk reward asks for), encodes the
stacks with the run's frozen encoder, and fits a ridge regression and a small MLP from
latents to state on some episodes and scores them (R^2) on the others. The same probe on a freshly initialised encoder is the floor: what random convolutional
features already give.

    python experiments/studies/probe_latents.py runs/walker_cpu   # -> docs/results/probe_latents_walker_walk.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import numpy as np

from seer_jax import platform


def r2_by_group(x_tr, y_tr, x_te, y_te, groups, ridge=1e-3):
    """Held-out R^2 of a ridge regression of y on x, averaged over each group's columns."""
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    xt, xe = (x_tr - mu) / sd, (x_te - mu) / sd
    xt, xe = np.c_[xt, np.ones(len(xt))], np.c_[xe, np.ones(len(xe))]
    w = np.linalg.solve(xt.T @ xt + ridge * len(xt) * np.eye(xt.shape[1]), xt.T @ y_tr)
    return _r2_by_group(y_te, xe @ w, groups)


def _r2_by_group(y, pred, groups):
    """R^2 of ``pred`` against ``y`` per column, averaged over each group's columns."""
    r2 = 1 - ((y - pred) ** 2).sum(0) / (((y - y.mean(0)) ** 2).sum(0) + 1e-12)
    return {name: float(np.mean(r2[cols])) for name, cols in groups.items()}


def mlp_r2_by_group(x_tr, y_tr, x_te, y_te, groups, seed=0, steps=3000):
    """Held-out R^2 of a two-layer MLP (256 ReLU units each, full-batch Adam) from x to
    the standardised y, averaged over each group's columns: the heads are MLPs, so what
    a nonlinear read-out finds is the fairer measure of what the latents carry. Stops
    early at the best loss on the last fifth of the training samples."""
    import jax
    import jax.numpy as jnp
    import optax

    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    ymu, ysd = y_tr.mean(0), y_tr.std(0) + 1e-6
    # The last fifth of the training samples picks the stopping point (early stopping).
    cut = int(len(x_tr) * 0.8)
    xs, xe = jnp.asarray((x_tr - mu) / sd, jnp.float32), jnp.asarray((x_te - mu) / sd, jnp.float32)
    ys = jnp.asarray((y_tr - ymu) / ysd, jnp.float32)
    xt, yt, xv, yv = xs[:cut], ys[:cut], xs[cut:], ys[cut:]
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    dims = [xt.shape[1], 256, 256, yt.shape[1]]
    params = [
        (jax.random.normal(k, (a, b)) * jnp.sqrt(2.0 / a), jnp.zeros(b))
        for k, a, b in zip((k1, k2, k3), dims[:-1], dims[1:], strict=True)
    ]

    def f(params, x):
        for i, (w, b) in enumerate(params):
            x = x @ w + b
            if i < len(params) - 1:
                x = jax.nn.relu(x)
        return x

    tx = optax.adamw(1e-3, weight_decay=1e-4)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt):
        grads = jax.grad(lambda p: jnp.mean((f(p, xt) - yt) ** 2))(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt

    val = jax.jit(lambda p: jnp.mean((f(p, xv) - yv) ** 2))
    best, best_loss = params, float(val(params))
    for i in range(steps):
        params, opt = step(params, opt)
        if (i + 1) % 25 == 0 and float(val(params)) < best_loss:
            best, best_loss = params, float(val(params))
    return _r2_by_group(y_te, np.asarray(f(best, xe), np.float64) * ysd + ymu, groups)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=8, help="episodes played; the last quarter is held out")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "results"))
    args = p.parse_args()

    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp

    from seer_jax.agents.curl_sac import CurlSac, CurlSacConfig
    from seer_jax.checkpoint import RunCheckpointer
    from seer_jax.envs.dmc import DMCPixels

    with open(os.path.join(args.run_dir, "config.json")) as f:
        cfg = json.load(f)
    ck = RunCheckpointer(args.run_dir)
    latest = ck.latest_meta()
    if latest is None:
        print(f"error: {args.run_dir} has no checkpoint", file=sys.stderr)
        return 2
    step, meta = latest
    if meta["phase"] != "latents":
        print(f"error: the latest checkpoint (agent step {step}) is before the freeze", file=sys.stderr)
        return 2
    arrays = ocp.StandardCheckpointer().restore(os.path.join(ck.directory, str(step), "arrays"))["agent"]

    env = DMCPixels(cfg["task"], seed=args.seed, action_repeat=cfg["action_repeat"])
    agent = CurlSac(env.action_spec().shape[0], CurlSacConfig())
    fresh = agent.init(jax.random.PRNGKey(args.seed))
    as_jnp = lambda t: jax.tree_util.tree_map(jnp.asarray, t)
    trained = fresh.replace(critic=as_jnp(arrays["critic"]), actor=as_jnp(arrays["actor"]))

    latents = jax.jit(agent.latents)

    act = jax.jit(lambda s, o, k: agent.act(s, o, k, True))
    task = env._env.task
    has_speed = hasattr(env.physics, "horizontal_velocity")  # walker: the speed its walk reward asks for
    stacks, states, episode = [], [], []
    key = jax.random.PRNGKey(args.seed)
    t0 = time.time()
    for ep in range(args.episodes):
        ts = env.reset()
        while True:
            obs = task.get_observation(env.physics)
            extra = [env.physics.horizontal_velocity()] if has_speed else []
            states.append(np.concatenate([np.ravel(v) for v in obs.values()] + [np.ravel(extra)]))
            stacks.append(ts.observation)
            episode.append(ep)
            if ts.last():
                break
            key, k = jax.random.split(key)
            ts = env.step(np.asarray(act(trained, ts.observation, k)))
        print(f"episode {ep + 1}/{args.episodes}: {len(stacks)} steps, {time.time() - t0:.0f} s", flush=True)
    cols, i = {}, 0
    for name, v in task.get_observation(env.physics).items():
        cols[name] = list(range(i, i + np.size(v)))
        i += np.size(v)
    if has_speed:
        cols["horizontal_velocity (reward)"] = [i]
    y = np.asarray(states, np.float64)
    test = np.asarray(episode) >= args.episodes - max(1, args.episodes // 4)
    result: dict = {
        "task": cfg["task"],
        "run_dir": os.path.relpath(args.run_dir),
        "checkpoint_agent_step": step,
        "freeze_step": cfg["freeze_step"],
        "samples_train": int((~test).sum()),
        "samples_test": int(test.sum()),
        "state_groups": {k: len(v) for k, v in cols.items()},
        "r2_held_out": {},
    }
    for label, state in (("frozen encoder (run)", trained), ("fresh encoder (random init)", fresh)):
        zc, za = [], []
        for j in range(0, len(stacks), 256):
            z = latents(state, jnp.asarray(np.stack(stacks[j : j + 256])))
            c, a = z["critic"], z["actor"]
            zc.append(np.asarray(c))
            za.append(np.asarray(a))
        for which, z in (("critic latent", np.concatenate(zc)), ("actor latent", np.concatenate(za))):
            z = z.astype(np.float64)
            for probe, fit in (("linear", r2_by_group), ("mlp", mlp_r2_by_group)):
                r2 = fit(z[~test], y[~test], z[test], y[test], cols)
                result["r2_held_out"][f"{label}, {which}, {probe}"] = r2
                print(f"{label}, {which}, {probe}: " + ", ".join(f"{k} {v:.2f}" for k, v in r2.items()), flush=True)
    result.update(platform.provenance())
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"probe_latents_{cfg['task']}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    platform.run_main(main)
