"""The two settings the training loop knows: DeepMind Control (CURL-SAC) and Atari (DER).

A :class:`Setting` builds environments and agents for a task and supplies the defaults
that differ between the two; everything else in the loop is shared.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from seer_jax.choices import ATARI_IMAGE_TRANSITION_BYTES, CONV_INITS, DEFAULT_CONV_INIT, DER_CONV_INIT, MB  # noqa: F401  (re-exported)


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    defaults: dict[str, Any]
    make_env: Callable[..., Any]  # (cfg, seed, train) -> dm_env.Environment
    make_agent: Callable[..., Any]  # (cfg, env) -> agent
    random_action: Callable[[np.random.Generator, Any], Any]
    max_slots: Callable[[Any], int]  # (cfg) -> most slots a run can write
    score_extras: Callable[[str, float], dict[str, float]]  # (task, mean return) -> extra eval columns
    # Before the first update (init_steps): uniform random actions (CURL's code) or the
    # agent's own exploration policy (Kaixhin's / SEER's Rainbow: the noisy network acts).
    random_warmup: bool = True
    # A stack reaching back before its episode's start: zeros (the Rainbow / SEER Atari
    # code's env and replay memory) or the first frame repeated (CURL's frame stack).
    zero_pad_stacks: bool = False


# ---------------------------------------------------------------------------- DMC


def _dmc_env(cfg, seed: int, train: bool):
    from seer_jax.envs.dmc import DMCPixels

    return DMCPixels(cfg.task, seed=seed, action_repeat=cfg.action_repeat, episode_length=cfg.episode_length)


def _dmc_agent(cfg, env):
    from seer_jax.agents.curl_sac import CurlSac, CurlSacConfig

    lr = cfg.critic_lr if cfg.critic_lr is not None else (2e-4 if cfg.task == "cheetah_run" else 1e-3)
    return CurlSac(
        env.action_spec().shape[0],
        CurlSacConfig(
            num_copies=cfg.num_copies, latent_dtype=cfg.latent_dtype, matmul_dtype=cfg.matmul_dtype, critic_lr=lr
        ),
    )


def _dmc_random_action(rng, env):
    spec = env.action_spec()
    return rng.uniform(spec.minimum, spec.maximum, spec.shape).astype(np.float32)


def _dmc_max_slots(cfg) -> int:
    steps_per_episode = math.ceil((cfg.episode_length or 1000) / cfg.action_repeat)
    return cfg.agent_steps + cfg.agent_steps // steps_per_episode + 2


DMC = Setting(
    name="dmc",
    defaults=dict(
        env_steps=500_000,
        batch_size=128,
        replay_budget_mb=3000.0,
        freeze_step=10_000,
        init_steps=1000,
        eval_every=10_000,
        eval_episodes=10,
        log_every=1000,
    ),
    make_env=_dmc_env,
    make_agent=_dmc_agent,
    random_action=_dmc_random_action,
    max_slots=_dmc_max_slots,
    score_extras=lambda task, score: {},
)


# ---------------------------------------------------------------------------- Atari


def _atari_env(cfg, seed: int, train: bool):
    from seer_jax.envs.atari import AtariEnv

    return AtariEnv(cfg.task, seed=seed, train=train)


def _atari_agent(cfg, env):
    from seer_jax.agents.der import Der, DerConfig

    return Der(env.num_actions, DerConfig(latent_dtype=cfg.latent_dtype, conv_init=cfg.conv_init or DER_CONV_INIT))


def _atari_random_action(rng, env):
    return np.int32(rng.integers(env.num_actions))


def _atari_score_extras(task: str, score: float) -> dict[str, float]:
    from seer_jax.envs.atari import human_normalized, reference_scores

    try:
        refs = reference_scores()
    except OSError:
        return {}
    return {"human_normalized": human_normalized(task, score, refs)} if task in refs else {}


ATARI = Setting(
    name="atari",
    defaults=dict(
        env_steps=100_000,
        batch_size=32,
        replay_budget_mb=1000.0,
        freeze_step=50_004,
        init_steps=1600,
        eval_every=10_000,
        eval_episodes=10,
        log_every=1000,
    ),
    make_env=_atari_env,
    make_agent=_atari_agent,
    random_action=_atari_random_action,
    random_warmup=False,
    zero_pad_stacks=True,
    # Life losses end training episodes; bound the slots generously (a cap, not a size).
    max_slots=lambda cfg: int(cfg.agent_steps * 1.2) + 100,
    score_extras=_atari_score_extras,
)


def setting_for(task: str) -> Setting:
    """The setting a task belongs to; ValueError listing every valid task otherwise."""
    from seer_jax.envs.atari import atari_games
    from seer_jax.envs.dmc import dmc_task_names

    dmc = dmc_task_names()
    if task in dmc:
        return DMC
    games = atari_games()
    if task in games:
        return ATARI
    raise ValueError(
        f"Unknown task {task!r}. DeepMind Control tasks: {', '.join(dmc)}. Atari games: {', '.join(sorted(games))}."
    )
