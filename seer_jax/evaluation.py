"""Evaluation: episodes of the deterministic policy in fresh environments.

Owns: :func:`evaluate` (any agent's batched ``act`` on a list of environments) and
:func:`evaluate_and_log` (the loop's evaluation of one seed, seeded by the step so a
resumed run evaluates exactly as an unbroken one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


class EvaluationStopped(Exception):
    """Raised by an evaluation's ``on_step`` callback to abandon it (a stop was asked for)."""


def evaluate(
    act_fn,
    agent_state,
    envs: list,
    key,
    on_step: Callable[[int, int], None] | None = None,
    per_episode: bool = False,
) -> dict[str, Any]:
    """Mean and std of the return of one evaluation episode in each of ``envs``.

    The environments step together and the agent acts on all their observations at once
    (``act_fn(state, obs_batch, key, False)``: the deterministic / evaluation policy on a
    batch); an environment whose episode has ended keeps its last observation in the
    batch, and its action is ignored. ``on_step(t, episodes_done)``, when given, is called
    after each of the ``t`` batched steps (for progress; raising there abandons the
    evaluation). ``per_episode`` adds ``returns``, each episode's."""
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
        if on_step is not None:
            on_step(t, int(done.sum()))
    out: dict[str, Any] = {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns))}
    out["episodes"] = len(envs)
    if per_episode:
        out["returns"] = [float(r) for r in returns]
    return out


def evaluate_and_log(cfg, setting, logger, act, agent_state, key, env_steps, phase, on_step=None) -> dict[str, Any]:
    """Evaluate one seed's agent after ``env_steps`` (``cfg.eval_episodes`` episodes, one
    fresh environment each), log the row and return it with its ``env_steps``
    (``on_step``: as for :func:`evaluate`)."""
    # Fresh evaluation environments per evaluation (one per episode), seeded by the step:
    # evaluations do not depend on each other, so a resumed run evaluates exactly as an
    # unbroken one.
    base = (cfg.seed + 10_000 + 1_000 * env_steps) % (2**31 - 2**20)
    t0 = time.perf_counter()
    eval_envs = [setting.make_env(cfg, base + i, False) for i in range(cfg.eval_episodes)]
    try:
        row = evaluate(act, agent_state, eval_envs, jax.random.fold_in(key, env_steps), on_step)
    finally:
        for env in eval_envs:
            env.close()
    row.update(setting.score_extras(cfg.task, row["return_mean"]))
    row["phase"] = phase
    logger.eval(env_steps, row, seconds=time.perf_counter() - t0)
    return {"env_steps": env_steps, **row}


class EvalProgress:
    """An ``on_step`` callback for :func:`evaluate`: shows the running evaluation (episodes
    done, steps, time left) through ``show(text)`` at most every ``every_s`` seconds, and
    raises :class:`EvaluationStopped` once ``should_stop()`` is true.

    ``expected_steps``: the batched steps the evaluation is expected to take (an episode's
    length where it is fixed, else the last evaluation's); None shows no time left."""

    def __init__(
        self,
        show: Callable[[str], None],
        episodes: int,
        expected_steps: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        label: str = "",
        every_s: float = 1.0,
    ):
        self.show, self.episodes, self.expected_steps = show, episodes, expected_steps
        self.should_stop, self.label, self.every_s = should_stop, label, every_s
        self.t0 = self.last = time.perf_counter()
        self.steps = 0

    def __call__(self, t: int, episodes_done: int) -> None:
        self.steps = t
        if self.should_stop is not None and self.should_stop():
            raise EvaluationStopped
        now = time.perf_counter()
        if now - self.last < self.every_s:
            return
        self.last = now
        text = f"evaluating{self.label}: {episodes_done}/{self.episodes} episodes done, step {t}"
        if self.expected_steps and t < self.expected_steps:
            left = (now - self.t0) / t * (self.expected_steps - t)
            text += f"/{self.expected_steps}, ~{_seconds(left)} left"
        self.show(text)


def _seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
