"""The training loop: act, step, store, update; freeze and migrate once; evaluate; log.

Everything that changes at SEER's freeze (the update function and what is stored per
observation) is chosen once, at the freeze, so the per-step jitted functions never
branch on the phase.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seer_jax import replay as replay_lib
from seer_jax.agents.curl_sac import CurlSac, CurlSacConfig
from seer_jax.envs.dmc import DMCPixels, default_action_repeat, split_task
from seer_jax.logging import RateMeter, RunLogger

MB = 2**20


class ConfigError(ValueError):
    """A training configuration that cannot run; the message says what to change."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a DeepMind Control run needs. Steps: ``env_steps`` and ``eval_every``
    count environment steps; ``freeze_step``, ``init_steps`` and ``log_every`` count
    agent steps (env steps / action repeat), as in the SEER scripts."""

    task: str = "walker_walk"
    seed: int = 0
    env_steps: int = 500_000
    action_repeat: int | None = None  # None: the PlaNet value for the task
    batch_size: int = 128
    replay_budget_mb: float = 3000.0  # about 100k image transitions on DMC
    freeze_step: int | None = 10_000  # None: plain CURL-SAC (no freeze)
    num_copies: int = 4
    latent_dtype: str = "float32"
    init_steps: int = 1000
    eval_every: int = 10_000
    eval_episodes: int = 10
    log_every: int = 1000
    episode_length: int | None = None  # env steps; None: the suite's (1000)
    migrate_chunk: int = 128
    run_dir: str | None = None
    progress: bool = True
    critic_lr: float | None = None  # None: 1e-3 (cheetah_run: 2e-4)

    def resolved(self) -> "TrainConfig":
        """Validate and fill the task-dependent defaults; raises ConfigError with advice."""
        try:
            split_task(self.task)
        except ValueError as e:  # unknown task: the message lists the valid ones
            raise ConfigError(str(e)) from None
        c = dataclasses.replace(self)
        if c.action_repeat is None:
            c.action_repeat = default_action_repeat(c.task)
        if c.critic_lr is None:
            c.critic_lr = 2e-4 if c.task == "cheetah_run" else 1e-3
        for name in ("env_steps", "action_repeat", "batch_size", "eval_episodes", "log_every", "num_copies", "migrate_chunk"):
            v = getattr(c, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}.")
        if c.init_steps < 0 or c.eval_every < 0:
            raise ConfigError("--init-steps and --eval-every must be non-negative.")
        if c.freeze_step is not None:
            if not isinstance(c.freeze_step, int) or isinstance(c.freeze_step, bool) or c.freeze_step < 1:
                raise ConfigError(
                    f"--freeze-step must be a positive integer (agent steps), got {c.freeze_step!r}; "
                    "use --no-freeze for plain CURL-SAC."
                )
            if c.freeze_step >= c.agent_steps:
                raise ConfigError(
                    f"--freeze-step {c.freeze_step} is not inside the run of {c.agent_steps} agent steps "
                    f"({c.env_steps} env steps at action repeat {c.action_repeat}); lower it, raise "
                    "--env-steps, or use --no-freeze."
                )
        if c.run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            c.run_dir = os.path.join("runs", f"{c.task}-s{c.seed}-{stamp}")
        return c

    @property
    def agent_steps(self) -> int:
        return math.ceil(self.env_steps / (self.action_repeat or default_action_repeat(self.task)))


def _episode_agent_steps(cfg: TrainConfig) -> int:
    return math.ceil((cfg.episode_length or 1000) / cfg.action_repeat)


def evaluate(agent: CurlSac, act_fn, agent_state, env: DMCPixels, episodes: int, key) -> dict[str, float]:
    """Mean and std of the return over ``episodes`` deterministic episodes (centre crop)."""
    returns = []
    for _ in range(episodes):
        ts = env.reset()
        total = 0.0
        while not ts.last():
            action = np.asarray(act_fn(agent_state, ts.observation, key, False))
            ts = env.step(action)
            total += ts.reward
        returns.append(total)
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)), "episodes": episodes}


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train one agent; returns the summary that is also written to ``summary.json``."""
    cfg = cfg.resolved()
    t_start = time.perf_counter()
    env = DMCPixels(cfg.task, seed=cfg.seed, action_repeat=cfg.action_repeat, episode_length=cfg.episode_length)
    eval_env = DMCPixels(
        cfg.task, seed=cfg.seed + 10_000, action_repeat=cfg.action_repeat, episode_length=cfg.episode_length
    )
    action_dim = env.action_spec().shape[0]
    agent = CurlSac(
        action_dim,
        CurlSacConfig(num_copies=cfg.num_copies, latent_dtype=cfg.latent_dtype, critic_lr=cfg.critic_lr),
    )
    total = cfg.agent_steps
    # Never more slots than the run writes: one per agent step plus one per episode start.
    max_slots = total + total // _episode_agent_steps(cfg) + 2
    budget = int(cfg.replay_budget_mb * MB)
    min_cap = cfg.batch_size + agent.config.frame_stack + 1
    image_replay = replay_lib.Replay(
        item_spec=agent.frame_spec,
        action_spec=agent.action_spec,
        capacity=replay_lib.capacity_for_budget(budget, agent.frame_spec, agent.action_spec, min_capacity=min_cap, max_capacity=max_slots),
        stack=agent.config.frame_stack,
    )
    logger = RunLogger(cfg.run_dir, dataclasses.asdict(cfg), total * cfg.action_repeat, cfg.progress)
    devices = jax.devices()
    logger.message(
        f"seer_jax: {cfg.task} on {devices[0].platform.upper()} ({devices[0].device_kind}); "
        f"{total} agent steps x action repeat {cfg.action_repeat}; run folder {cfg.run_dir}"
    )
    logger.message(
        f"replay: {image_replay.capacity} image transitions "
        f"({image_replay.bytes_per_slot} B each, {image_replay.nbytes / MB:.0f} MB of a {cfg.replay_budget_mb:.0f} MB budget)"
    )

    key = jax.random.PRNGKey(cfg.seed)
    k_init, k_act, k_update, k_store, k_eval, k_migrate = jax.random.split(key, 6)
    agent_state = agent.init(k_init)
    np_rng = np.random.default_rng(cfg.seed)

    # ---- jitted steps (phase-specific ones are rebuilt once at the freeze)
    act = jax.jit(agent.act, static_argnums=3)

    def make_learn(replay: replay_lib.Replay, update_fn):
        def learn(agent_state, replay_state, key):
            k_sample, k_upd = jax.random.split(key)
            batch = replay.sample(replay_state, k_sample, cfg.batch_size)
            return update_fn(agent_state, batch, k_upd)

        return jax.jit(learn, donate_argnums=0)

    def make_store(replay: replay_lib.Replay, item_fn):
        def store(replay_state, agent_state, obs, action, reward, discount, first, key):
            return replay.add(replay_state, item_fn(agent_state, obs, key), action, reward, discount, first)

        return jax.jit(store, donate_argnums=0)

    frame_item = lambda agent_state, obs, key: obs[-1]  # noqa: E731 (each frame once)

    def latent_item(agent_state, obs, key):
        return jax.tree_util.tree_map(lambda x: x[0], agent.encode(agent_state, obs[None], key))

    replay, replay_state = image_replay, image_replay.init()
    learn = make_learn(replay, agent.update)
    store = make_store(replay, frame_item)
    phase = "images"
    zero_action = np.zeros(action_dim, np.float32)

    ts = env.reset()
    replay_state = store(replay_state, agent_state, ts.observation, zero_action, 0.0, 1.0, True, k_store)
    episode_return, episode_count, last_return = 0.0, 0, float("nan")
    metrics = prev_metrics = None
    phase_time = {"images": 0.0, "latents": 0.0}
    phase_steps = {"images": 0, "latents": 0}
    capacity = {"images": image_replay.capacity, "latents": None}
    step_rate, update_rate = RateMeter(), RateMeter()
    eval_rows = []
    next_eval = cfg.eval_every if cfg.eval_every else None
    t_phase = time.perf_counter()

    for step in range(total):
        if step < cfg.init_steps:
            action = np_rng.uniform(-1.0, 1.0, action_dim).astype(np.float32)
        else:
            action = np.asarray(act(agent_state, ts.observation, jax.random.fold_in(k_act, step), True))
        ts = env.step(action)
        episode_return += ts.reward
        replay_state = store(
            replay_state, agent_state, ts.observation, action, ts.reward, ts.discount, False,
            jax.random.fold_in(k_store, step),
        )
        if step >= max(cfg.init_steps, replay.stack + 1):
            prev_metrics = metrics
            agent_state, metrics = learn(agent_state, replay_state, jax.random.fold_in(k_update, step))
            update_rate.tick()
        if ts.last():
            last_return, episode_count = episode_return, episode_count + 1
            episode_return = 0.0
            ts = env.reset()
            replay_state = store(
                replay_state, agent_state, ts.observation, zero_action, 0.0, 1.0, True,
                jax.random.fold_in(k_store, step + total),
            )
        env_steps = (step + 1) * cfg.action_repeat
        phase_steps[phase] += 1

        if cfg.freeze_step is not None and step + 1 == cfg.freeze_step:
            jax.block_until_ready(agent_state)
            phase_time["images"] += time.perf_counter() - t_phase
            t0 = time.perf_counter()
            agent_state = agent.freeze(agent_state)
            latent_replay = replay_lib.Replay(
                item_spec=agent.latent_spec,
                action_spec=agent.action_spec,
                capacity=replay_lib.capacity_for_budget(budget, agent.latent_spec, agent.action_spec, min_capacity=min_cap, max_capacity=max_slots),
                stack=1,
            )
            frozen_state = agent_state
            replay_state = replay_lib.migrate(
                replay, replay_state, latent_replay,
                lambda stacks, k: agent.encode(frozen_state, stacks, k), k_migrate, cfg.migrate_chunk,
            )
            replay = latent_replay
            learn = make_learn(replay, agent.update_latent)
            store = make_store(replay, latent_item)
            phase = "latents"
            capacity["latents"] = latent_replay.capacity
            logger.message(
                f"[freeze] agent step {step + 1}: encoder frozen, {int(replay_state.size)} observations migrated "
                f"in {time.perf_counter() - t0:.1f}s; replay capacity {image_replay.capacity} images -> "
                f"{latent_replay.capacity} latents ({latent_replay.bytes_per_slot} B each, "
                f"{latent_replay.nbytes / MB:.0f} MB of {cfg.replay_budget_mb:.0f} MB)"
            )
            t_phase = time.perf_counter()

        if metrics is not None and (step + 1) % cfg.log_every == 0:
            # Components skipped by the last update (NaN) come from the one before it.
            row = {k: float(v) for k, v in metrics.items()}
            if prev_metrics is not None:
                row.update({k: float(prev_metrics[k]) for k, v in row.items() if v != v})
            row.update(episode_return=last_return, episodes=episode_count, phase=phase)
            logger.train(env_steps, row)

        if next_eval is not None and env_steps >= next_eval:
            while next_eval <= env_steps:
                next_eval += cfg.eval_every
            t0 = time.perf_counter()
            row = evaluate(agent, act, agent_state, eval_env, cfg.eval_episodes, k_eval)
            t_phase += time.perf_counter() - t0  # evaluation is not training time
            row["phase"] = phase
            eval_rows.append({"env_steps": env_steps, **row})
            logger.eval(env_steps, row)

        logger.progress(
            cfg.action_repeat,
            phase=phase,
            sps=f"{step_rate.tick() * cfg.action_repeat:.0f}",
            ups=f"{update_rate.rate:.1f}",
            ret=f"{last_return:.0f}",
        )

    jax.block_until_ready(agent_state)
    phase_time[phase] += time.perf_counter() - t_phase
    if not eval_rows or eval_rows[-1]["env_steps"] != total * cfg.action_repeat:
        row = evaluate(agent, act, agent_state, eval_env, cfg.eval_episodes, k_eval)
        row["phase"] = phase
        eval_rows.append({"env_steps": total * cfg.action_repeat, **row})
        logger.eval(total * cfg.action_repeat, row)
    final = eval_rows[-1]
    summary = {
        "task": cfg.task,
        "seed": cfg.seed,
        "env_steps": total * cfg.action_repeat,
        "agent_steps": total,
        "freeze_step": cfg.freeze_step,
        "final_eval_return_mean": final["return_mean"],
        "final_eval_return_std": final["return_std"],
        "eval": eval_rows,
        "capacity_images": capacity["images"],
        "capacity_latents": capacity["latents"],
        "hours_images": phase_time["images"] / 3600,
        "hours_latents": phase_time["latents"] / 3600,
        "agent_steps_per_s_images": phase_steps["images"] / max(phase_time["images"], 1e-9),
        "agent_steps_per_s_latents": (phase_steps["latents"] / phase_time["latents"]) if phase_time["latents"] else None,
        "wall_clock_s": time.perf_counter() - t_start,
        "run_dir": cfg.run_dir,
    }
    with open(os.path.join(cfg.run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logger.message(
        f"done: {cfg.task} seed {cfg.seed}, {summary['env_steps']} env steps, eval return "
        f"{final['return_mean']:.1f} ± {final['return_std']:.1f}, {summary['wall_clock_s'] / 60:.1f} min, "
        f"replay {capacity['images']} images -> {capacity['latents']} latents; results in {cfg.run_dir}"
    )
    logger.close()
    env.close()
    eval_env.close()
    return summary
