#!/usr/bin/env python
"""Sanity check of the post-freeze learner: the CURL-SAC heads and the very
`CurlSac.update_latent` that trains them after SEER's freeze, fed a task's state
variables (cartpole_swingup: 5 numbers; walker_walk: 24) instead of frozen latents.
State SAC is known to solve these tasks quickly (CURL's paper, 100k env steps:
cartpole_swingup 835 +- 22), so a learner that cannot do the same from states has a bug;
one that can puts any plateau after the freeze on the frozen encoder's features.

    python experiments/studies/sanity_state_sac.py [--task T] [--seed S] [--env-steps N] [--matmul-dtype D]
    # -> docs/results/sanity_state_sac.json (cartpole_swingup, float32) or
    #    docs/results/sanity_state_sac_<task>_<dtype>.json
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import jax
import jax.numpy as jnp
import numpy as np
from dm_control import suite

from seer_jax import platform
from seer_jax.agents.curl_sac import CurlSac, CurlSacConfig
from seer_jax.envs.dmc import default_action_repeat, split_task

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--task", default="cartpole_swingup", help="a DeepMind Control task, e.g. walker_walk")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--env-steps", type=int, default=40_000)
p.add_argument("--eval-every", type=int, default=10_000, help="env steps between evaluations")
p.add_argument("--matmul-dtype", choices=["float32", "bfloat16"], default="float32")
args = p.parse_args()
seed, ENV_STEPS = args.seed, args.env_steps
rows = []
AR = default_action_repeat(args.task)
domain, task = split_task(args.task)
env = suite.load(domain, task, task_kwargs={"random": seed})
eval_env = suite.load(domain, task, task_kwargs={"random": seed + 100})
flat = lambda o: np.concatenate([np.ravel(v) for v in o.values()]).astype(np.float32)
A = env.action_spec().shape[0]
D = flat(env.reset().observation).shape[0]
agent = CurlSac(A, CurlSacConfig(latent_dim=D, num_copies=1, matmul_dtype=args.matmul_dtype))
state = agent.init(jax.random.PRNGKey(seed))
state = agent.freeze(state)
N = ENV_STEPS // AR
obs_buf = np.zeros((N + 200, D), np.float32)
nxt_buf = np.zeros_like(obs_buf)
act_buf = np.zeros((N + 200, A), np.float32)
rew_buf = np.zeros(N + 200, np.float32)
upd = jax.jit(agent.update_latent, donate_argnums=0)


@jax.jit
def policy(state, z, key, explore):
    mean, log_std = agent.pi.apply({"params": state.actor["trunk"]}, z[None])
    a_exp, _ = agent._policy(state.actor["trunk"], z[None], agent._noise(key, 1))
    return jnp.where(explore, a_exp[0], jnp.tanh(mean[0]))


def step_env(e, a):
    r = 0.0
    for _ in range(AR):
        ts = e.step(a)
        r += ts.reward or 0.0
        if ts.last():
            break
    return ts, r


def evaluate(state, k):
    rets = []
    for i in range(10):
        ts = eval_env.reset()
        tot = 0.0
        while not ts.last():
            a = np.asarray(policy(state, flat(ts.observation), jax.random.fold_in(k, i), False))
            ts, r = step_env(eval_env, a)
            tot += r
        rets.append(tot)
    return np.mean(rets)


rng = np.random.default_rng(seed)
key = jax.random.PRNGKey(seed + 1)
ts = env.reset()
o = flat(ts.observation)
n = 0
t0 = time.time()
for step in range(ENV_STEPS // AR):
    if step < 1000:
        a = rng.uniform(-1, 1, A).astype(np.float32)
    else:
        a = np.asarray(policy(state, o, jax.random.fold_in(key, step), True))
    ts, r = step_env(env, a)
    o2 = flat(ts.observation)
    obs_buf[n], act_buf[n], rew_buf[n], nxt_buf[n] = o, a, r, o2
    n += 1  # noqa: SIM113 (n is the buffer fill, step also counts warm-up)
    o = o2
    if ts.last():
        ts = env.reset()
        o = flat(ts.observation)
    if step >= 1000:
        idx = rng.integers(0, n, 128)
        batch = {
            "obs": {"critic": obs_buf[idx][:, None], "actor": obs_buf[idx][:, None]},
            "next_obs": {"critic": nxt_buf[idx][:, None], "actor": nxt_buf[idx][:, None]},
            "action": act_buf[idx],
            "reward": rew_buf[idx],
            "discount": np.ones(128, np.float32),
        }
        state, m = upd(state, batch, jax.random.fold_in(key, 10**6 + step))
    if ((step + 1) * AR) % args.eval_every == 0:
        ret = float(evaluate(state, jax.random.fold_in(key, step)))
        rows.append({"env_steps": (step + 1) * AR, "eval_return_mean": ret})
        print(
            f"env steps {(step + 1) * AR} eval {ret:.1f}  q {float(m['q_mean']):.1f} alpha {float(m['alpha']):.3f}  {time.time() - t0:.0f}s",
            flush=True,
        )
out = {
    "task": f"{args.task} (states)",
    "seed": seed,
    "action_repeat": AR,
    "matmul_dtype": args.matmul_dtype,
    "batch_size": 128,
    "curve": rows,
    **platform.provenance(),
}
name = (
    "sanity_state_sac.json"
    if (args.task, args.matmul_dtype) == ("cartpole_swingup", "float32")
    else f"sanity_state_sac_{args.task}_{args.matmul_dtype}.json"
)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "results", name)
with open(path, "w") as f:
    json.dump(out, f, indent=2)
print("wrote", path)
