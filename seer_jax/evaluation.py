"""Evaluation: episodes of the deterministic policy in fresh environments.

Owns: :func:`evaluate` (any agent's batched ``act`` on a list of environments) and
:func:`evaluate_and_log` (the loop's evaluation of one seed, seeded by the step so a
resumed run evaluates exactly as an unbroken one).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def evaluate(act_fn, agent_state, envs: list, key) -> dict[str, float]:
    """Mean and std of the return of one evaluation episode in each of ``envs``.

    The environments step together and the agent acts on all their observations at once
    (``act_fn(state, obs_batch, key, False)``: the deterministic / evaluation policy on a
    batch); an environment whose episode has ended keeps its last observation in the
    batch, and its action is ignored."""
    first = [env.reset() for env in envs]
    obs = np.stack([ts.observation for ts in first])
    returns = np.zeros(len(envs))
    done = np.zeros(len(envs), bool)
    t = 0
    while not done.all():
        actions = np.asarray(act_fn(agent_state, obs, jax.random.fold_in(key, t), False))
        for i, env in enumerate(envs):
            if done[i]:
                continue
            ts = env.step(actions[i])
            returns[i] += ts.reward
            obs[i] = ts.observation
            done[i] = ts.last()
        t += 1
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)), "episodes": len(envs)}


def evaluate_and_log(cfg, setting, logger, act, agent_state, key, env_steps, phase) -> dict[str, Any]:
    """Evaluate one seed's agent after ``env_steps`` (``cfg.eval_episodes`` episodes, one
    fresh environment each), log the row and return it with its ``env_steps``."""
    # Fresh evaluation environments per evaluation (one per episode), seeded by the step:
    # evaluations do not depend on each other, so a resumed run evaluates exactly as an
    # unbroken one.
    base = (cfg.seed + 10_000 + 1_000 * env_steps) % (2**31 - 2**20)
    eval_envs = [setting.make_env(cfg, base + i, False) for i in range(cfg.eval_episodes)]
    try:
        row = evaluate(act, agent_state, eval_envs, jax.random.fold_in(key, env_steps))
    finally:
        for env in eval_envs:
            env.close()
    row.update(setting.score_extras(cfg.task, row["return_mean"]))
    row["phase"] = phase
    logger.eval(env_steps, row)
    return {"env_steps": env_steps, **row}
