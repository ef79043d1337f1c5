"""A training run's configuration: :class:`TrainConfig`, its defaults per setting, its
validation (:class:`ConfigError` with advice), and the rules for resuming a run folder.

Owns: the fields of a run, what ``None`` resolves to, which fields may change on resume,
and how ``--seeds`` splits a run into one folder per seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import TypeVar

from seer_jax.auto_freeze import AutoFreeze
from seer_jax.settings import CONV_INITS, Setting, setting_for


class ConfigError(ValueError):
    """A training configuration that cannot run; the message says what to change."""


_T = TypeVar("_T")


def resolved(value: _T | None) -> _T:
    """A field that :meth:`TrainConfig.resolved` has filled (typed for the checker)."""
    assert value is not None, "TrainConfig.resolved() sets every default"
    return value


@dataclasses.dataclass
class TrainConfig:
    """A training run. ``None`` fields take their setting's default (DeepMind Control
    or Atari, see :mod:`seer_jax.settings`).

    Steps: ``env_steps`` and ``eval_every`` count environment steps (on Atari an
    environment step is an agent step of 4 frames); ``freeze_step``, ``init_steps`` and
    ``log_every`` count agent steps (env steps / action repeat), as in the SEER scripts.
    """

    task: str = "walker_walk"
    seed: int = 0
    seeds: list[int] | None = None  # several seeds in one process (a seed axis); None: just `seed`
    env_steps: int | None = None
    action_repeat: int | None = None  # DMC; None: the PlaNet value for the task
    batch_size: int | None = None
    replay_budget_mb: float | None = None
    freeze_step: int | str | None = None  # an agent step, or "auto" (seer_jax.auto_freeze)
    # --freeze-step auto: probe every N agent steps, freeze once the probe's latent drift
    # stays under the threshold for `patience` checks, between min and max (None: half and
    # five times the setting's default freeze step).
    freeze_auto_every: int = 1000
    freeze_auto_threshold: float = 0.05
    freeze_auto_patience: int = 3
    freeze_auto_min: int | None = None
    freeze_auto_max: int | None = None
    no_freeze: bool = False  # plain CURL-SAC / DER, the baseline
    num_copies: int = 4  # DMC: random crops stored per observation after the freeze
    latent_dtype: str = "float32"
    matmul_dtype: str = "float32"  # DMC heads: "bfloat16" inputs, float32 accumulation
    conv_init: str | None = None  # Atari encoder init: None/"pytorch" (the released SEER code's) or "lecun_normal"
    init_steps: int | None = None
    eval_every: int | None = None
    eval_episodes: int | None = None
    keep_best: bool = False  # keep the agent of the best evaluation so far in RUN_DIR/best_agent.msgpack
    log_every: int | None = None
    episode_length: int | None = None  # DMC env steps; None: the suite's (1000)
    migrate_chunk: int = 128
    run_dir: str | None = None
    progress: bool = True
    critic_lr: float | None = None  # DMC; None: 1e-3 (cheetah_run: 2e-4)
    checkpoint_every: int = 10_000  # env steps; 0: only at the end
    keep_checkpoints: int = 2

    @property
    def setting(self) -> Setting:
        return setting_for(self.task)

    @property
    def agent_steps(self) -> int:
        return math.ceil(resolved(self.env_steps) / resolved(self.action_repeat))

    def resolved(self) -> TrainConfig:
        """Validate and fill the setting's defaults; raises ConfigError with advice."""
        try:
            setting = self.setting
        except ValueError as e:  # unknown task: the message lists the valid ones
            raise ConfigError(str(e)) from None
        c = dataclasses.replace(self)
        explicit_freeze = c.freeze_step is not None
        _fill_defaults(c, setting)
        _check_counts(c)
        _check_dtypes_and_inits(c, setting)
        _resolve_freeze(c, setting, explicit_freeze)
        _check_seeds(c)
        if c.run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = f"s{c.seed}" if not c.seeds or len(c.seeds) == 1 else f"seeds{'-'.join(map(str, c.seeds))}"
            c.run_dir = os.path.join("runs", f"{c.task}-{name}-{stamp}")
        return c

    def auto_freeze_rule(self) -> AutoFreeze | None:
        """The rule of ``--freeze-step auto`` (None for a fixed step or no freeze)."""
        if self.freeze_step != "auto":
            return None
        return AutoFreeze(
            every=self.freeze_auto_every,
            threshold=self.freeze_auto_threshold,
            patience=self.freeze_auto_patience,
            min_step=resolved(self.freeze_auto_min),
            max_step=resolved(self.freeze_auto_max),
        )

    @classmethod
    def from_run_dir(cls, run_dir: str, **overrides) -> TrainConfig:
        """The configuration saved in ``run_dir/config.json`` (unknown keys ignored),
        with ``run_dir`` and ``overrides`` applied."""
        path = os.path.join(run_dir, "config.json")
        if not os.path.exists(path):
            raise ConfigError(f"{run_dir}: no config.json there; is it a seer_jax run folder?")
        with open(path) as f:
            saved = json.load(f)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in saved.items() if k in names}, "run_dir": run_dir, **overrides})


def _fill_defaults(c: TrainConfig, setting: Setting) -> None:
    for name, value in setting.defaults.items():
        if getattr(c, name) is None:
            setattr(c, name, value)
    if c.action_repeat is None:
        if setting.name == "dmc":
            from seer_jax.envs.dmc import default_action_repeat

            c.action_repeat = default_action_repeat(c.task)
        else:
            c.action_repeat = 1


def _check_counts(c: TrainConfig) -> None:
    for name in (
        "env_steps",
        "action_repeat",
        "batch_size",
        "eval_episodes",
        "log_every",
        "num_copies",
        "migrate_chunk",
    ):
        v = getattr(c, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}.")
    if (
        not isinstance(c.checkpoint_every, int)
        or c.checkpoint_every < 0
        or not isinstance(c.keep_checkpoints, int)
        or c.keep_checkpoints < 1
    ):
        raise ConfigError(
            f"--checkpoint-every must be a non-negative integer (env steps; 0: only at the end) and --keep-checkpoints "
            f"a positive integer, got {c.checkpoint_every!r} and {c.keep_checkpoints!r}."
        )
    if resolved(c.init_steps) < 0 or resolved(c.eval_every) < 0:
        raise ConfigError("--init-steps and --eval-every must be non-negative.")
    if not resolved(c.replay_budget_mb) > 0:
        raise ConfigError(f"--replay-budget-mb must be positive, got {c.replay_budget_mb!r}.")


def _check_dtypes_and_inits(c: TrainConfig, setting: Setting) -> None:
    for name in ("latent_dtype", "matmul_dtype"):
        if getattr(c, name) not in ("float32", "bfloat16"):
            raise ConfigError(f"--{name.replace('_', '-')} must be float32 or bfloat16, got {getattr(c, name)!r}.")
    if c.matmul_dtype != "float32" and setting.name != "dmc":
        raise ConfigError(
            "--matmul-dtype applies to the CURL-SAC heads (DeepMind Control tasks); leave it at float32 on Atari."
        )
    if c.conv_init is not None and (c.conv_init not in CONV_INITS or setting.name != "atari"):
        raise ConfigError(
            f"--conv-init must be one of {', '.join(CONV_INITS)} and applies to the DER encoder (Atari games), got "
            f"{c.conv_init!r} for {c.task}."
        )


def _resolve_freeze(c: TrainConfig, setting: Setting, explicit: bool) -> None:
    """The freeze: none, "auto" (with its bounds filled), or an agent step inside the run
    (a default step beyond a short run moves to its middle, with a message)."""
    if c.no_freeze:
        c.freeze_step = None
        return
    if c.freeze_step == "auto":
        default = setting.defaults["freeze_step"]
        c.freeze_auto_max = min(c.freeze_auto_max or 5 * default, c.agent_steps - 1)
        c.freeze_auto_min = min(c.freeze_auto_min or max(1, default // 2), c.freeze_auto_max)
        try:
            c.auto_freeze_rule()
        except ValueError as e:
            raise ConfigError(f"--freeze-step auto: {e}") from None
        return
    if not isinstance(c.freeze_step, int) or isinstance(c.freeze_step, bool) or c.freeze_step < 1:
        raise ConfigError(
            f"--freeze-step must be a positive integer (agent steps), got {c.freeze_step!r}; "
            "use --no-freeze for the plain agent."
        )
    if c.freeze_step >= c.agent_steps:
        if explicit:
            raise ConfigError(
                f"--freeze-step {c.freeze_step} is not inside the run of {c.agent_steps} agent steps "
                f"({c.env_steps} env steps at action repeat {c.action_repeat}); lower it, raise "
                "--env-steps, or use --no-freeze."
            )
        # The default freeze step lies beyond a short run: freeze halfway instead.
        c.freeze_step = max(1, c.agent_steps // 2)
        print(
            f"seer_jax: the default freeze step {setting.defaults['freeze_step']} lies beyond this run of "
            f"{c.agent_steps} agent steps; freezing at agent step {c.freeze_step} (set --freeze-step to choose)."
        )


def _check_seeds(c: TrainConfig) -> None:
    if c.seeds is None:
        return
    seeds = list(c.seeds)
    if (
        not seeds
        or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ConfigError(f"--seeds must be distinct non-negative integers, got {c.seeds!r}.")
    c.seeds = seeds


def freeze_words(cfg: TrainConfig) -> str:
    """The freeze in words, for the run's first line."""
    rule = cfg.auto_freeze_rule()
    if rule is not None:
        return (
            f"auto (latent drift under {rule.threshold} for {rule.patience} checks every {rule.every} agent steps, "
            f"between agent steps {rule.min_step} and {rule.max_step})"
        )
    return f"at agent step {cfg.freeze_step}" if cfg.freeze_step else "off"


# Fields that may differ when a run is resumed (they do not change what is trained).
RESUMABLE_FIELDS = ("progress", "run_dir", "checkpoint_every", "keep_checkpoints")


def check_resumable(cfg: TrainConfig) -> None:
    """Refuse (ConfigError) a run folder whose saved configuration trains something else."""
    path = os.path.join(resolved(cfg.run_dir), "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    now = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    # A field a run folder from before that field existed lacks has its default there.
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    saved = {**{k: defaults[k] for k in now if k not in saved and k in defaults}, **saved}
    diff = [k for k in sorted(set(saved) | set(now)) if k not in RESUMABLE_FIELDS and saved.get(k) != now.get(k)]
    if diff:
        raise ConfigError(
            f"The run folder {cfg.run_dir} holds a run with a different configuration ("
            + ", ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in diff)
            + "). Resume it with `--resume "
            + str(cfg.run_dir)
            + "` (its own configuration), or choose another --run-dir."
        )


def seed_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """The single-seed configuration of each seed (one per sub-folder of the run folder
    when there are several; the run itself when there is one)."""
    if not cfg.seeds or len(cfg.seeds) == 1:
        seed = cfg.seeds[0] if cfg.seeds else cfg.seed
        return [dataclasses.replace(cfg, seed=seed, seeds=None)]
    return [
        dataclasses.replace(cfg, seed=s, seeds=None, run_dir=os.path.join(resolved(cfg.run_dir), f"seed{s}"))
        for s in cfg.seeds
    ]
