"""The training loop shared by both settings: observe (store + act), step, update;
freeze and migrate once; evaluate; log.

Everything that changes at SEER's freeze (the update function and what is stored per
observation) is chosen once, at the freeze, so the per-step jitted functions never
branch on the phase. Per agent step only the observation goes to the device and only
the action comes back.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from seer_jax import auto_freeze as auto_freeze_lib
from seer_jax import platform as platform_lib
from seer_jax import replay as replay_lib
from seer_jax import seeds as seeds_lib
from seer_jax.auto_freeze import AutoFreeze
from seer_jax.checkpoint import CheckpointError, RunCheckpointer
from seer_jax.logging import RateMeter, RunLogger
from seer_jax.settings import CONV_INITS, MB, Setting, setting_for


class ConfigError(ValueError):
    """A training configuration that cannot run; the message says what to change."""


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
    conv_init: str | None = None  # Atari encoder init: None/"lecun_normal" (Flax's default) or "pytorch"
    init_steps: int | None = None
    eval_every: int | None = None
    eval_episodes: int | None = None
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

    def resolved(self) -> TrainConfig:
        """Validate and fill the setting's defaults; raises ConfigError with advice."""
        try:
            setting = self.setting
        except ValueError as e:  # unknown task: the message lists the valid ones
            raise ConfigError(str(e)) from None
        c = dataclasses.replace(self)
        explicit_freeze = c.freeze_step is not None
        for name, value in setting.defaults.items():
            if getattr(c, name) is None:
                setattr(c, name, value)
        if c.action_repeat is None:
            if setting.name == "dmc":
                from seer_jax.envs.dmc import default_action_repeat

                c.action_repeat = default_action_repeat(c.task)
            else:
                c.action_repeat = 1
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
        if _resolved(c.init_steps) < 0 or _resolved(c.eval_every) < 0:
            raise ConfigError("--init-steps and --eval-every must be non-negative.")
        if not _resolved(c.replay_budget_mb) > 0:
            raise ConfigError(f"--replay-budget-mb must be positive, got {c.replay_budget_mb!r}.")
        if c.no_freeze:
            c.freeze_step = None
        elif c.freeze_step == "auto":
            default = setting.defaults["freeze_step"]
            c.freeze_auto_max = min(c.freeze_auto_max or 5 * default, c.agent_steps - 1)
            c.freeze_auto_min = min(c.freeze_auto_min or max(1, default // 2), c.freeze_auto_max)
            try:
                c.auto_freeze_rule()
            except ValueError as e:
                raise ConfigError(f"--freeze-step auto: {e}") from None
        else:
            if not isinstance(c.freeze_step, int) or isinstance(c.freeze_step, bool) or c.freeze_step < 1:
                raise ConfigError(
                    f"--freeze-step must be a positive integer (agent steps), got {c.freeze_step!r}; "
                    "use --no-freeze for the plain agent."
                )
            if c.freeze_step >= c.agent_steps:
                if explicit_freeze:
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
        if c.seeds is not None:
            seeds = list(c.seeds)
            if (
                not seeds
                or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
                or len(set(seeds)) != len(seeds)
            ):
                raise ConfigError(f"--seeds must be distinct non-negative integers, got {c.seeds!r}.")
            c.seeds = seeds
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
            min_step=_resolved(self.freeze_auto_min),
            max_step=_resolved(self.freeze_auto_max),
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

    @property
    def agent_steps(self) -> int:
        return math.ceil(_resolved(self.env_steps) / _resolved(self.action_repeat))


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


def make_learn(replay: replay_lib.Replay, update_fn, batch_size: int, n_step: int, gamma):
    """One jitted training step ``learn(agent_state, replay_state, key, step)``: sample a
    batch from the buffer and update the agent with ``fold_in(key, step)`` (agent state
    donated; ``step`` a device scalar, so nothing crosses from the host)."""

    def learn(agent_state, replay_state, key, step):
        k_sample, k_upd = jax.random.split(jax.random.fold_in(key, step))
        batch = replay.sample(replay_state, k_sample, batch_size, n_step, gamma)
        return update_fn(agent_state, batch, k_upd)

    return jax.jit(learn, donate_argnums=0)


def make_observe(replay: replay_lib.Replay, agent, frozen: bool):
    """One jitted step per observation ``observe(replay_state, agent_state, obs, action,
    reward, discount, first, count, key)``: compute what to store (frame or latent) and
    the exploration action (with ``fold_in(key, count)``), and write the slot (replay
    state donated)."""

    def observe(replay_state, agent_state, obs, action, reward, discount, first, count, key):
        item, next_action = agent.observe(agent_state, obs, jax.random.fold_in(key, count), frozen)
        return replay.add(replay_state, item, action, reward, discount, first), next_action

    return jax.jit(observe, donate_argnums=0)


# The jitted per-step functions of recent runs, reused by a later `train` call in the same
# process whose agent and buffer are the same (a sweep, a resumed run, the test suite):
# jax keeps compiled programs per function object, so building new closures for every run
# would trace and lower them again. Keys are the agents' and buffers' full descriptions.
_JIT_CACHE: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
_JIT_CACHE_SIZE = 16


def _cached_jit(key: tuple, build) -> Any:
    """``build()``, or what it returned for the same ``key`` in a recent run."""
    if key in _JIT_CACHE:
        _JIT_CACHE.move_to_end(key)
        return _JIT_CACHE[key]
    value = _JIT_CACHE[key] = build()
    while len(_JIT_CACHE) > _JIT_CACHE_SIZE:
        _JIT_CACHE.popitem(last=False)
    return value


def compiled_programs() -> dict[tuple, int]:
    """How many compiled programs jit holds for each per-step function kept for reuse
    (a resumed run must add none: it runs the uninterrupted run's programs)."""
    return {k: f._cache_size() for k, f in _JIT_CACHE.items() if hasattr(f, "_cache_size")}


def _agent_key(agent) -> tuple:
    """What makes two agents compute different things: the class, the specs, and every
    setting or network the agent holds (the config, and attributes such as ``Der``'s number
    of actions, which its action spec does not show). Agents with equal keys share jits."""
    import flax.linen as nn

    held = tuple(
        (name, repr(value))
        for name, value in sorted(vars(agent).items())
        if isinstance(value, (bool, int, float, str, nn.Module)) or dataclasses.is_dataclass(value)
    )
    return ("agent", type(agent), repr(agent.action_spec), repr(agent.obs_shape), held)


@jax.jit
def _select(mask, a, b):
    """Per seed: ``a`` where ``mask``, else ``b`` (mask broadcast over trailing axes)."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


class HostTraffic:
    """The per-agent-step traffic between host and device, made explicit.

    Per step, :meth:`up` sends the new observation and the transition that led to it
    (action, reward, discount, episode start, observation counter) in one
    ``jax.device_put``, and :meth:`down` fetches the next action with ``jax.device_get``;
    buffers, sampling, updates and keys stay on the device. With
    ``SEER_JAX_CHECK_TRANSFERS=1`` the per-step work runs under
    ``jax.transfer_guard("disallow")`` (any other, implicit, transfer raises) and every
    transfer's shape and dtype is written to ``RUN_DIR/transfers.json``.
    """

    def __init__(self, check: bool | None = None, sharding: Any = None):
        """``sharding``: where stacked per-seed inputs go (the seed axis's sharding)."""
        self.check = os.environ.get("SEER_JAX_CHECK_TRANSFERS") == "1" if check is None else check
        self.sharding = sharding
        self.records: list[dict[str, Any]] = []

    def guard(self):
        """Context for the per-step work: disallows implicit transfers when checking."""
        import contextlib

        return jax.transfer_guard("disallow") if self.check else contextlib.nullcontext()

    def _record(self, direction: str, tree: Any) -> None:
        if self.check and len(self.records) < 10_000:
            leaves = jax.tree_util.tree_leaves(tree)
            self.records.append(
                {"dir": direction, "arrays": [[list(np.shape(x)), str(np.asarray(x).dtype)] for x in leaves]}
            )

    def up(self, obs: Any, action: Any, reward: float, discount: float, first: bool, count: int) -> tuple:
        host = (obs, np.asarray(action), np.float32(reward), np.float32(discount), np.bool_(first), np.int32(count))
        self._record("up", host)
        return jax.device_put(host)

    def up_many(self, rows: list[tuple], write: np.ndarray) -> tuple:
        """:meth:`up` for N seeds at once (each row as :meth:`up`'s arguments), stacked
        along the seed axis, with each seed's ``write`` flag; one transfer."""
        cols = list(zip(*rows, strict=True))
        dtypes = (None, None, np.float32, np.float32, np.bool_, np.int32)
        host = tuple(np.stack([np.asarray(x, d) for x in col]) for col, d in zip(cols, dtypes, strict=True))
        host = (*host, np.asarray(write, np.bool_))
        self._record("up", host)
        return jax.device_put(host, self.sharding)

    def store(
        self, observe_fn: Any, replay_state: Any, agent_state: Any, rows: list[tuple], key: Any, write: Any = None
    ) -> tuple[Any, jax.Array]:
        """Upload each seed's new observation (``rows``: per seed the arguments of
        :meth:`up`) and run the jitted store-and-act step on it: one seed through
        :func:`make_observe`'s signature, several through ``seeds.make_observe``'s (with
        each seed's ``write`` flag, all True when None). Returns its outputs."""
        if len(rows) == 1:
            return observe_fn(replay_state, agent_state, *self.up(*rows[0]), key)
        mask = np.ones(len(rows), bool) if write is None else np.asarray(write)
        *inputs, write_dev = self.up_many(rows, mask)
        return observe_fn(replay_state, agent_state, *inputs, key, write_dev)

    def put(self, x: np.ndarray) -> jax.Array:
        """One explicit upload (placed on the seed axis's sharding)."""
        self._record("up", x)
        return jax.device_put(x, self.sharding)

    def down(self, action: jax.Array) -> np.ndarray:
        host = np.asarray(jax.device_get(action))
        self._record("down", host)
        return host

    def step_index(self, step: int) -> jax.Array:
        """The update's step counter as a device scalar (for its key)."""
        self._record("up", np.int32(step))
        return jax.device_put(np.int32(step))


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (host memory: on CPU it
    includes the device arrays)."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


class TrainingDiverged(RuntimeError):
    """A loss or parameter became NaN or infinite; the message names the step and quantity."""


class TrainingStopped(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM or Ctrl-C) and did so at the end of an agent
    step, after writing a checkpoint there: running the same command again continues
    exactly from it. A subclass of ``KeyboardInterrupt``, so callers that do not catch
    it stop as they would on Ctrl-C. ``step``: the agent steps done."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class _StopSignals:
    """While active, the first SIGTERM or SIGINT asks the training loop to stop after the
    current agent step (with a checkpoint); a second one stops at once
    (``KeyboardInterrupt``; the last periodic checkpoint stays). Installs nothing outside
    the main thread, where Python cannot receive signals."""

    SIGNALS = ("SIGTERM", "SIGINT")

    def __init__(self, message: Any):
        self.message = message
        self.received: str | None = None
        self._previous: dict[Any, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self.received is not None:
            self.__exit__()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        self.message(
            f"{self.received} received: stopping after this agent step, once its checkpoint is written "
            "(send it again to stop at once, from the last periodic checkpoint)"
        )

    def __enter__(self) -> _StopSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


# Fields that may differ when a run is resumed (they do not change what is trained).
RESUMABLE_FIELDS = ("progress", "run_dir", "checkpoint_every", "keep_checkpoints")


def _check_resumable(cfg: TrainConfig) -> None:
    path = os.path.join(_resolved(cfg.run_dir), "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    now = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    diff = [k for k in sorted(set(saved) | set(now)) if k not in RESUMABLE_FIELDS and saved.get(k) != now.get(k)]
    if diff:
        raise ConfigError(
            f"The run folder {cfg.run_dir} holds a run with a different configuration ("
            + ", ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in diff)
            + "). Resume it with `--resume "
            + str(cfg.run_dir)
            + "` (its own configuration), or choose another --run-dir."
        )


class _Phase:
    """What changes at the freeze: the buffer, the jitted learn/observe steps."""

    def __init__(self, name, replay, learn, observe):
        self.name, self.replay, self.learn, self.observe = name, replay, learn, observe


_T = TypeVar("_T")


def _resolved(value: _T | None) -> _T:
    assert value is not None, "TrainConfig.resolved() sets every default"
    return value


@dataclasses.dataclass
class _SeedRun:
    """One seed's host-side state: its environment, logs, checkpoints and counters."""

    cfg: TrainConfig
    run_dir: str
    env: Any
    checkpointer: RunCheckpointer
    keys: Any  # k_init, k_obs, k_update, k_eval, k_migrate
    logger: Any = None
    np_rng: Any = None
    n_obs: int = 0
    episode_return: float = 0.0
    episode_count: int = 0
    last_return: float = float("nan")
    eval_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    next_eval: int | None = None


def _seed_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """The single-seed configuration of each seed (one per sub-folder of the run folder
    when there are several; the run itself when there is one)."""
    if not cfg.seeds or len(cfg.seeds) == 1:
        seed = cfg.seeds[0] if cfg.seeds else cfg.seed
        return [dataclasses.replace(cfg, seed=seed, seeds=None)]
    return [
        dataclasses.replace(cfg, seed=s, seeds=None, run_dir=os.path.join(_resolved(cfg.run_dir), f"seed{s}"))
        for s in cfg.seeds
    ]


def train(cfg: TrainConfig, stop_after: int | None = None) -> dict[str, Any] | None:
    """Train one agent, or several seeds in one process; returns the summary that is also
    written to ``summary.json``.

    With ``cfg.seeds`` listing several seeds, the agents' states and replay buffers are
    stacked along a leading seed axis and every per-step function is vmapped over it
    (:mod:`seer_jax.seeds`; the axis is sharded across devices when there are several).
    Each seed keeps its own run folder ``RUN_DIR/seedS`` (config, logs, evaluations,
    checkpoints, summary), laid out as a single-seed run of that seed.

    Checkpoints go to ``checkpoints/`` every ``checkpoint_every`` env steps and at the
    end; a run folder with checkpoints is resumed from the newest readable one (exactly:
    on CPU a resumed run ends with the same parameters and logs as one that never
    stopped). ``stop_after`` (agent steps) saves a checkpoint there and returns None, as
    an interrupted run would. A SIGTERM or Ctrl-C during the training loop stops it at the
    end of the current agent step with a checkpoint there, then raises
    :class:`TrainingStopped` (a second signal stops at once).

    Calling ``train`` again in the same process with an equal agent and buffer (a sweep
    over seeds, a resume) reuses the previous runs' jitted step functions instead of
    tracing and compiling them again.
    """
    cfg = cfg.resolved()
    # resolved() has set every default: typed locals for the fields used below
    run_dir = _resolved(cfg.run_dir)
    action_repeat = _resolved(cfg.action_repeat)
    batch_size = _resolved(cfg.batch_size)
    replay_budget_mb = _resolved(cfg.replay_budget_mb)
    eval_every = _resolved(cfg.eval_every)
    log_every = _resolved(cfg.log_every)
    init_steps = _resolved(cfg.init_steps)
    setting = cfg.setting
    t_start = time.perf_counter()
    seed_cfgs = _seed_configs(cfg)
    n = len(seed_cfgs)
    many = n > 1
    summary_path = os.path.join(run_dir, "summary.json")
    if os.path.exists(summary_path) and all(
        os.path.exists(os.path.join(_resolved(c.run_dir), "summary.json")) for c in seed_cfgs
    ):
        for c in seed_cfgs:
            _check_resumable(c)
        with open(summary_path) as f:
            summary = json.load(f)
        print(
            f"seer_jax: {run_dir} is a finished run (eval return {summary['final_eval_return_mean']:.1f}); nothing to do."
        )
        return summary
    if many:  # the parent folder: the whole configuration, then one folder per seed
        _check_resumable(cfg)
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(dataclasses.asdict(cfg), f, indent=2, sort_keys=True, default=str)
    runs = []
    for c in seed_cfgs:
        checkpointer = RunCheckpointer(_resolved(c.run_dir), c.keep_checkpoints)
        if checkpointer.steps():
            _check_resumable(c)
        env = setting.make_env(c, c.seed, True)
        keys = jax.random.split(jax.random.PRNGKey(c.seed), 5)
        runs.append(_SeedRun(c, _resolved(c.run_dir), env, checkpointer, keys))
    agent = setting.make_agent(cfg, runs[0].env)
    agent = _cached_jit(_agent_key(agent), lambda: agent)  # an equal agent of a recent run: its jits
    total = cfg.agent_steps
    max_slots = setting.max_slots(cfg)
    budget = int(replay_budget_mb * MB)
    min_cap = batch_size + agent.obs_shape[0] + 1
    image_replay = replay_lib.Replay(
        item_spec=agent.frame_spec,
        action_spec=agent.action_spec,
        capacity=replay_lib.capacity_for_budget(
            budget, agent.frame_spec, agent.action_spec, min_capacity=min_cap, max_capacity=max_slots
        ),
        stack=agent.obs_shape[0],
    )

    def latent_replay():
        return replay_lib.Replay(
            item_spec=agent.latent_spec,
            action_spec=agent.action_spec,
            capacity=replay_lib.capacity_for_budget(
                budget, agent.latent_spec, agent.action_spec, min_capacity=min_cap, max_capacity=max_slots
            ),
            stack=1,
        )

    # The seed axis: one seed runs the plain single-agent functions; several are stacked,
    # vmapped, and sharded across the devices there are.
    mesh = seeds_lib.seed_mesh(n) if many else None

    def place(tree: Any) -> Any:
        """Put loop state where it lives: the seed axis's devices, or the default device.
        Every state array is committed to its device, whether built fresh or restored
        from a checkpoint (restored arrays come back committed): jit compiles a separate
        program per commitment, and a resumed run must run the very programs the
        uninterrupted run runs, to compute the same bits."""
        return seeds_lib.shard(tree, mesh) if mesh is not None else jax.device_put(tree, jax.devices()[0])

    def stack(trees: list) -> Any:
        return place(seeds_lib.stack(trees) if many else trees[0])

    def take(tree: Any, i: int) -> Any:
        return seeds_lib.take(tree, i) if many else tree

    def make_phase(name: str) -> _Phase:
        replay = image_replay if name == "images" else latent_replay()
        update = agent.update if name == "images" else agent.update_latent
        make_learn_fn, make_observe_fn = (
            (seeds_lib.make_learn, seeds_lib.make_observe) if many else (make_learn, make_observe)
        )
        # The methods' functions are in the keys: a method replaced on the class is traced anew.
        key = (_agent_key(agent), name, repr(replay), batch_size, many)
        learn = _cached_jit(
            ("learn", update.__func__, *key),
            lambda: make_learn_fn(replay, update, batch_size, agent.n_step, agent.gamma),
        )
        observe = _cached_jit(
            ("observe", type(agent).observe, *key), lambda: make_observe_fn(replay, agent, frozen=name == "latents")
        )
        return _Phase(name, replay, learn, observe)

    traffic = HostTraffic(sharding=None if mesh is None else seeds_lib.seed_sharding(mesh))
    k_init, k_obs, k_update, k_eval, k_migrate = (stack([r.keys[j] for r in runs]) for j in range(5))
    act = _cached_jit(("act", type(agent).act, _agent_key(agent)), lambda: jax.jit(agent.act, static_argnums=3))
    zero_action = np.zeros(agent.action_spec.shape, agent.action_spec.dtype)

    def observe(phase, replay_state, agent_state, rows, write=None):
        """Store each seed's new observation and get the next exploration actions."""
        return traffic.store(phase.observe, replay_state, agent_state, rows, k_obs, write)

    def arrays_template(meta):
        """The structure of a checkpoint's arrays (its phase decides the state's shape)."""
        fresh = jax.eval_shape(agent.init, runs[0].keys[0])
        latents = meta["phase"] == "latents"
        return {
            "agent": jax.eval_shape(agent.freeze, fresh) if latents else fresh,
            "replay": jax.eval_shape((latent_replay() if latents else image_replay).init),
            "policy_action": np.asarray(zero_action),
            "env": {k: np.zeros(shape, dtype) for k, (shape, dtype) in meta["env_shapes"].items()},
            "auto_freeze": {
                k: np.zeros(shape, dtype) for k, (shape, dtype) in meta.get("auto_freeze_shapes", {}).items()
            },
        }

    restored = [r.checkpointer.restore_latest(arrays_template) for r in runs]
    if any(x is None for x in restored) and any(x is not None for x in restored):
        raise CheckpointError(
            f"Some seed folders of {run_dir} have checkpoints and some do not; resume the seeds one by one "
            "(--resume RUN_DIR/seedS) or delete the folder to start again."
        )
    if restored[0] is not None:
        steps = [x[0] if x is not None else 0 for x in restored]
        if len(set(steps)) > 1:  # killed while saving one seed: all go back to a common step
            common = min(steps)
            restored = [r.checkpointer.restore_latest(arrays_template, max_step=common) for r in runs]
            if any(x is None or x[0] != common for x in restored):
                raise CheckpointError(
                    f"The seeds' checkpoints in {run_dir} have no common step; delete the seed folders to start again."
                )
    # Loop state: everything below is saved in checkpoints.
    if restored[0] is None:
        start_step = 0
        # Under jit: one compiled program instead of hundreds of op-by-op initialisers.
        init = _cached_jit(("init", type(agent).init, _agent_key(agent)), lambda: jax.jit(agent.init))
        agent_state = stack([init(r.keys[0]) for r in runs])
        phase = make_phase("images")
        replay_state = place(seeds_lib.init(phase.replay, n) if many else phase.replay.init())
        metrics = prev_metrics = None
        phase_time = {"images": 0.0, "latents": 0.0}
        phase_steps = {"images": 0, "latents": 0}
        capacity = {"images": image_replay.capacity, "latents": None}
        earlier = {"wall_clock_s": 0.0, "peak_rss_mb": 0.0}
        monitor = auto_freeze_lib.Monitor()
        first = []
        for r in runs:
            r.np_rng = np.random.default_rng(r.cfg.seed)
            r.next_eval = eval_every if eval_every else None
            first.append((r.env.reset().observation, zero_action, 0.0, 1.0, True, r.n_obs))
        replay_state, policy_action = observe(phase, replay_state, agent_state, first)
    else:
        loaded = [x for x in restored if x is not None]
        start_step = loaded[0][0]
        metas = [x[2] for x in loaded]
        agent_state = stack([x[1]["agent"] for x in loaded])
        replay_state = stack([x[1]["replay"] for x in loaded])
        policy_action = stack([x[1]["policy_action"] for x in loaded])
        phase = make_phase(metas[0]["phase"])
        for r, (_, arrays, meta) in zip(runs, loaded, strict=True):
            if "history" in arrays["env"]:
                print(
                    f"seer_jax: restoring the environment by replaying {len(arrays['env']['history'])} recorded steps ...",
                    flush=True,
                )
                r.env.set_state(arrays["env"], report=_replay_reporter())
            else:
                r.env.set_state(arrays["env"])
            r.np_rng = np.random.default_rng()
            r.np_rng.bit_generator.state = meta["np_rng"]
            r.n_obs, r.episode_count, r.episode_return = meta["n_obs"], meta["episode_count"], meta["episode_return"]
            r.last_return = float("nan") if meta["last_return"] is None else meta["last_return"]
            r.eval_rows, r.next_eval = meta["eval_rows"], meta["next_eval"]
        metrics, prev_metrics = (_stack_floats([m[name] for m in metas], many) for name in ("metrics", "prev_metrics"))
        phase_time, phase_steps, capacity = metas[0]["phase_time"], metas[0]["phase_steps"], metas[0]["capacity"]
        # Processes before this one, up to the checkpoint (older checkpoints lack it).
        earlier = {k: float(metas[0].get(k, 0.0)) for k in ("wall_clock_s", "peak_rss_mb")}
        seed_arrays = [x[1].get("auto_freeze", {}) for x in loaded]
        monitor = auto_freeze_lib.Monitor.restore(
            metas[0].get("auto_freeze", auto_freeze_lib.Monitor().meta()),
            {k: np.stack([a[k] for a in seed_arrays]) for k in seed_arrays[0]},
        )

    for i, r in enumerate(runs):
        r.logger = RunLogger(
            r.run_dir,
            dataclasses.asdict(r.cfg),
            total * action_repeat,
            cfg.progress and i == 0,
            resume_env_steps=None if restored[0] is None else start_step * action_repeat,
            label=f"seed {r.cfg.seed}" if many else "",
        )
    logger = runs[0].logger
    device = jax.devices()[0]
    logger.message(
        f"seer_jax: {cfg.task} ({setting.name}) on {device.platform.upper()} ({device.device_kind}"
        + (f", seed axis over {len(mesh.devices)} devices" if mesh is not None else "")
        + (", one core: bit-for-bit repeatable" if device.platform == "cpu" and platform_lib.on_one_cpu() else "")
        + f"); {total} agent steps x action repeat {action_repeat}; "
        + (f"seeds {', '.join(str(r.cfg.seed) for r in runs)}; " if many else "")
        + f"freeze {_freeze_words(cfg)}; run folder {run_dir}"
    )
    if hasattr(runs[0].env, "renderer"):
        logger.message(f"seer_jax: MuJoCo renders with {runs[0].env.renderer()}")
    if restored[0] is None:
        logger.message(
            f"replay: {image_replay.capacity} image transitions "
            f"({image_replay.bytes_per_slot} B each, {image_replay.nbytes / MB:.0f} MB of a {replay_budget_mb:.0f} MB budget)"
            + (" per seed" if many else "")
        )
    else:
        logger.message(
            f"resumed from the checkpoint at agent step {start_step} ({start_step * action_repeat} env steps, "
            f"phase {phase.name}, {int(take(replay_state.size, 0))} stored observations)"
        )

    def save_checkpoint(step_done: int) -> None:
        bad = _non_finite_leaves(agent_state)
        if bad:  # never overwrite good checkpoints with a diverged agent
            good = runs[0].checkpointer.steps()
            raise TrainingDiverged(
                f"non-finite parameters at agent step {step_done} ({step_done * action_repeat} env steps): "
                f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. "
                + (
                    f"The last good checkpoint (agent step {good[-1]}) is kept in {runs[0].checkpointer.directory}."
                    if good
                    else "No checkpoint was written yet."
                )
            )
        for i, r in enumerate(runs):
            env_state = {k: np.asarray(v) for k, v in r.env.get_state().items()}
            meta = {
                "phase": phase.name,
                "n_obs": r.n_obs,
                "episode_count": r.episode_count,
                "episode_return": r.episode_return,
                "last_return": None if r.last_return != r.last_return else r.last_return,
                "np_rng": r.np_rng.bit_generator.state,
                "metrics": _floats(None if metrics is None else take(metrics, i)),
                "prev_metrics": _floats(None if prev_metrics is None else take(prev_metrics, i)),
                "phase_time": phase_time,
                "phase_steps": phase_steps,
                "wall_clock_s": earlier["wall_clock_s"] + time.perf_counter() - t_start,
                "peak_rss_mb": max(earlier["peak_rss_mb"], peak_rss_mb()),
                "capacity": capacity,
                "eval_rows": r.eval_rows,
                "next_eval": r.next_eval,
                "env_shapes": {k: [list(v.shape), v.dtype.name] for k, v in env_state.items()},
                "env_steps": step_done * action_repeat,
                "auto_freeze": monitor.meta(),
                "auto_freeze_shapes": {k: [list(v.shape[1:]), v.dtype.name] for k, v in monitor.arrays().items()},
            }
            r.checkpointer.save(
                step_done,
                {
                    "agent": take(agent_state, i),
                    "replay": take(replay_state, i),
                    "policy_action": np.asarray(take(policy_action, i)),
                    "env": env_state,
                    "auto_freeze": {k: v[i] for k, v in monitor.arrays().items()},
                },
                meta,
            )

    t_phase = time.perf_counter()  # start of the current phase's training time

    def freeze_now(steps_done: int) -> None:
        """SEER's freeze after ``steps_done`` agent steps: freeze the agent, migrate the
        buffer to latents, switch the jitted per-step functions."""
        nonlocal agent_state, phase, replay_state, t_phase
        jax.block_until_ready(agent_state)
        phase_time["images"] += time.perf_counter() - t_phase
        t0 = time.perf_counter()
        old_replay = phase.replay
        phase = make_phase("latents")
        if many:
            agent_state = jax.vmap(agent.freeze)(agent_state)
            replay_state = seeds_lib.migrate(
                old_replay, replay_state, phase.replay, agent.encode, agent_state, k_migrate, cfg.migrate_chunk
            )
            replay_state = place(replay_state)
        else:
            agent_state = agent.freeze(agent_state)
            frozen_state = agent_state
            replay_state = replay_lib.migrate(
                old_replay,
                replay_state,
                phase.replay,
                lambda stacks, k: agent.encode(frozen_state, stacks, k),
                k_migrate,
                cfg.migrate_chunk,
            )
        capacity["latents"] = phase.replay.capacity
        logger.message(
            f"[freeze] agent step {steps_done}: encoder frozen, {int(take(replay_state.size, 0))} observations migrated "
            f"{'per seed ' if many else ''}in {time.perf_counter() - t0:.1f}s; replay capacity {image_replay.capacity} "
            f"images -> {phase.replay.capacity} latents ({phase.replay.bytes_per_slot} B each, "
            f"{phase.replay.nbytes / MB:.0f} MB of {replay_budget_mb:.0f} MB)"
        )
        # The observation just stored as a frame is the one the policy acts on next;
        # its action was computed before the freeze, with the same (now frozen) encoder.
        t_phase = time.perf_counter()

    rule = cfg.auto_freeze_rule()
    probe_fn = _cached_jit(("probe", _agent_key(agent)), lambda: jax.jit(agent.probe_latents))

    def probe_encoder(monitor: auto_freeze_lib.Monitor, steps_done: int) -> tuple[auto_freeze_lib.Monitor, bool]:
        """--freeze-step auto: the probe's latent drift after ``steps_done`` agent steps."""
        if monitor.probe is None:  # the first check fixes the probe: stored observations, evenly spread
            rel = auto_freeze_lib.probe_positions(int(take(replay_state.size, 0)), _resolved(rule).probe_size)
            probe = [np.asarray(image_replay.ordered_stacks(take(replay_state, i), jnp.asarray(rel))) for i in range(n)]
            monitor = dataclasses.replace(monitor, probe=np.stack(probe))
        probes = _resolved(monitor.probe)
        latents = np.stack([np.asarray(probe_fn(take(agent_state, i), probes[i])) for i in range(n)])
        monitor, freeze = auto_freeze_lib.check(_resolved(rule), monitor, steps_done, latents)
        if monitor.drifts:
            drift = ", ".join(f"{d:.4f}" for d in monitor.drifts[-1])
            logger.message(
                f"[auto freeze] agent step {steps_done}: latent drift {drift}" + (" -> freeze" if freeze else "")
            )
        for i, r in enumerate(runs):
            with open(os.path.join(r.run_dir, "freeze_auto.json"), "w") as f:
                json.dump({"rule": dataclasses.asdict(_resolved(rule)), "steps": monitor.steps,
                           "drift": [d[i] for d in monitor.drifts], "chosen_step": monitor.chosen_step}, f, indent=1)  # fmt: skip
        return monitor, freeze

    step_rate, update_rate = RateMeter(), RateMeter()
    next_checkpoint = None
    if cfg.checkpoint_every:
        next_checkpoint = (start_step * action_repeat // cfg.checkpoint_every + 1) * cfg.checkpoint_every

    if restored[0] is not None and phase.name == "images" and cfg.freeze_step == start_step:
        freeze_now(start_step)  # a run forked at its freeze step (experiments/fork_run.py)

    with _StopSignals(logger.message) as signals:
        for step in range(start_step, total):
            policy = None if step < init_steps and setting.random_warmup else traffic.down(policy_action)
            rows, done = [], []
            for i, r in enumerate(runs):
                if policy is None:
                    action = setting.random_action(r.np_rng, r.env)
                else:
                    action = policy if not many else policy[i]
                ts = r.env.step(action)
                r.episode_return += ts.reward
                r.n_obs += 1
                rows.append((ts.observation, action, ts.reward, ts.discount, False, r.n_obs))
                done.append(ts.last())
            with traffic.guard():
                replay_state, policy_action = observe(phase, replay_state, agent_state, rows)
                if step >= max(init_steps, phase.replay.stack + 1):
                    prev_metrics = metrics
                    agent_state, metrics = phase.learn(agent_state, replay_state, k_update, traffic.step_index(step))
                    update_rate.tick()
            if any(done):
                rows = []
                for r, d in zip(runs, done, strict=True):
                    if d:
                        r.last_return, r.episode_count = float(r.episode_return), r.episode_count + 1
                        r.episode_return = 0.0
                        r.n_obs += 1
                        rows.append((r.env.reset().observation, zero_action, 0.0, 1.0, True, r.n_obs))
                    else:  # no new observation for this seed: nothing is written
                        rows.append((*_blank_row(agent), r.n_obs))
                with traffic.guard():
                    replay_state, new_action = observe(phase, replay_state, agent_state, rows, write=done)
                    policy_action = (
                        _select(traffic.put(np.asarray(done)), new_action, policy_action) if many else new_action
                    )
            env_steps = (step + 1) * action_repeat
            phase_steps[phase.name] += 1

            if cfg.freeze_step is not None and step + 1 == cfg.freeze_step:
                freeze_now(step + 1)
            elif rule is not None and phase.name == "images" and rule.is_check_step(step + 1):
                monitor, freeze = probe_encoder(monitor, step + 1)
                if freeze:
                    freeze_now(step + 1)

            if metrics is not None and (step + 1) % log_every == 0:
                for i, r in enumerate(runs):
                    # Components skipped by the last update (NaN) come from the one before it.
                    row = {k: float(v) for k, v in take(metrics, i).items()}
                    if prev_metrics is not None:
                        row.update({k: float(take(prev_metrics, i)[k]) for k, v in row.items() if v != v})
                    bad = [k for k, v in row.items() if not math.isfinite(v)]
                    if bad:
                        good = r.checkpointer.steps()
                        raise TrainingDiverged(
                            f"{', '.join(bad)} became non-finite at agent step {step + 1} ({env_steps} env steps)"
                            + (f", seed {r.cfg.seed}. " if many else ". ")
                            + (
                                f"The last good checkpoint (agent step {good[-1]}) is kept in {r.checkpointer.directory}; "
                                "lower the learning rate or check the inputs before resuming."
                                if good
                                else "No checkpoint was written yet; lower the learning rate or check the inputs."
                            )
                        )
                    row.update(episode_return=r.last_return, episodes=r.episode_count, phase=phase.name)
                    if hasattr(r.env, "last_game_score"):  # Atari: the last whole game's score
                        # (a column from the first row on: CsvLog fixes its columns there)
                        game_score = r.env.last_game_score
                        row["game_score"] = float("nan") if game_score is None else game_score
                    r.logger.train(env_steps, row)

            if runs[0].next_eval is not None and env_steps >= runs[0].next_eval:
                t0 = time.perf_counter()
                for i, r in enumerate(runs):
                    while r.next_eval is not None and r.next_eval <= env_steps:
                        r.next_eval += eval_every
                    r.eval_rows.append(
                        _evaluate_and_log(
                            r.cfg, setting, r.logger, act, take(agent_state, i), r.keys[3], env_steps, phase.name
                        )
                    )
                t_phase += time.perf_counter() - t0  # evaluation is not training time

            rate = step_rate.tick()
            postfix = dict(
                phase=phase.name,
                sps=f"{rate * action_repeat * n:.0f}",
                ups=f"{update_rate.rate * n:.1f}",
                ret=f"{_finite_mean([r.last_return for r in runs]):.0f}",
            )
            if phase.name == "images" and isinstance(cfg.freeze_step, int) and rate > 0:
                # The overall ETA extrapolates the slow pixel phase; say when it ends.
                postfix["freeze_in"] = _hms((cfg.freeze_step - step - 1) / rate)
            logger.progress(action_repeat, **postfix)

            signalled = signals.received is not None and step + 1 < total
            stop = (stop_after is not None and step + 1 == stop_after and step + 1 < total) or signalled
            if (next_checkpoint is not None and env_steps >= next_checkpoint and step + 1 < total) or stop:
                while next_checkpoint is not None and next_checkpoint <= env_steps:
                    next_checkpoint += cfg.checkpoint_every
                jax.block_until_ready(agent_state)
                t0 = time.perf_counter()
                phase_time[phase.name] += t0 - t_phase
                save_checkpoint(step + 1)
                t_phase = time.perf_counter()
                if stop:
                    for r in runs:
                        r.logger.close()
                        r.env.close()
                    if signalled:
                        raise TrainingStopped(
                            f"stopped by {signals.received} after agent step {step + 1} ({env_steps} env steps), "
                            f"with a checkpoint there in {run_dir}; to continue, run the same command with this run folder "
                            f"(experiments/run.py --resume {run_dir})",
                            step + 1,
                        )
                    logger.message(f"stopped after agent step {step + 1}; resume with --resume {run_dir}")
                    return None

    jax.block_until_ready(agent_state)
    phase_time[phase.name] += time.perf_counter() - t_phase
    for i, r in enumerate(runs):
        if not r.eval_rows or r.eval_rows[-1]["env_steps"] != total * action_repeat:
            r.eval_rows.append(
                _evaluate_and_log(
                    r.cfg, setting, r.logger, act, take(agent_state, i), r.keys[3], total * action_repeat, phase.name
                )
            )
    if cfg.checkpoint_every:
        save_checkpoint(total)
    summaries = []
    for r in runs:
        final = r.eval_rows[-1]
        summary = {
            "task": cfg.task,
            "setting": setting.name,
            "seed": r.cfg.seed,
            "env_steps": total * action_repeat,
            "agent_steps": total,
            "freeze_step": monitor.chosen_step if rule is not None else cfg.freeze_step,
            "freeze_rule": "auto" if rule is not None else ("fixed" if cfg.freeze_step is not None else "none"),
            "final_eval_return_mean": final["return_mean"],
            "final_eval_return_std": final["return_std"],
            "eval": r.eval_rows,
            "capacity_images": capacity["images"],
            "capacity_latents": capacity["latents"],
            "hours_images": phase_time["images"] / 3600,
            "hours_latents": phase_time["latents"] / 3600,
            "agent_steps_per_s_images": phase_steps["images"] / max(phase_time["images"], 1e-9),
            "agent_steps_per_s_latents": (phase_steps["latents"] / phase_time["latents"])
            if phase_time["latents"]
            else None,
            "wall_clock_s": earlier["wall_clock_s"] + time.perf_counter() - t_start,
            "wall_clock_s_this_process": time.perf_counter() - t_start,
            "peak_rss_mb": max(earlier["peak_rss_mb"], peak_rss_mb()),
            "resumed": restored[0] is not None,
            "run_dir": r.run_dir,
        }
        if many:
            summary["seeds_in_process"] = n
        with open(os.path.join(r.run_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        summaries.append(summary)
    if many:
        finals = [s["final_eval_return_mean"] for s in summaries]
        summary = {
            "task": cfg.task,
            "seeds": [r.cfg.seed for r in runs],
            "final_eval_return_mean": float(np.mean(finals)),
            "final_eval_return_std_over_seeds": float(np.std(finals)),
            "runs": summaries,
            "wall_clock_s": earlier["wall_clock_s"] + time.perf_counter() - t_start,
            "peak_rss_mb": max(earlier["peak_rss_mb"], peak_rss_mb()),
            "run_dir": run_dir,
        }
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=2)
    if traffic.check:
        with open(os.path.join(run_dir, "transfers.json"), "w") as f:
            json.dump(traffic.records, f)
    final_returns = ", ".join(f"{s['final_eval_return_mean']:.1f}" for s in summaries)
    logger.message(
        f"done: {cfg.task} seed{'s' if many else ''} {', '.join(str(r.cfg.seed) for r in runs)}, "
        f"{total * action_repeat} env steps, eval return "
        + (
            final_returns
            if many
            else f"{summary['final_eval_return_mean']:.1f} ± {summary['final_eval_return_std']:.1f}"
        )
        + f", {summary['wall_clock_s'] / 60:.1f} min, replay {capacity['images']} images -> {capacity['latents']} "
        f"latents; results in {run_dir}"
    )
    for r in runs:
        r.logger.close()
        r.env.close()
    return summary


def _freeze_words(cfg: TrainConfig) -> str:
    rule = cfg.auto_freeze_rule()
    if rule is not None:
        return (
            f"auto (latent drift under {rule.threshold} for {rule.patience} checks every {rule.every} agent steps, "
            f"between agent steps {rule.min_step} and {rule.max_step})"
        )
    return f"at agent step {cfg.freeze_step}" if cfg.freeze_step else "off"


def _finite_mean(values: list[float]) -> float:
    """The mean of the finite values (NaN when there are none: no episode ended yet)."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def _blank_row(agent: Any) -> tuple:
    """Placeholder inputs for a seed that stores nothing this call (its write is False)."""
    shape = agent.obs_shape
    return (np.zeros(shape, np.uint8), np.zeros(agent.action_spec.shape, agent.action_spec.dtype), 0.0, 1.0, False)


def _replay_reporter() -> Any:
    """Progress lines for an Atari environment's replay on resume (it can take minutes)."""
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - start, 1e-9)
        left = (total - done) / rate
        print(f"  replayed {done:,} / {total:,} steps ({rate:,.0f}/s, {left / 60:.1f} min left)", flush=True)

    return report


def _stack_floats(per_seed: list[dict[str, float] | None], many: bool) -> Any:
    """Restored metrics: one seed's floats, or each name's values across seeds."""
    if not many or per_seed[0] is None:
        return per_seed[0]
    return {k: np.asarray([m[k] for m in per_seed], np.float32) for k in per_seed[0]}  # type: ignore[index]


def _non_finite_leaves(tree) -> list[str]:
    """Paths of the floating-point leaves of ``tree`` that hold a NaN or an infinity."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    checks = [
        (jax.tree_util.keystr(path), jnp.all(jnp.isfinite(x)))
        for path, x in flat
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
    ]
    return [path for path, ok in checks if not bool(ok)]


def _floats(metrics) -> dict[str, float] | None:
    return None if metrics is None else {k: float(v) for k, v in metrics.items()}


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _evaluate_and_log(cfg, setting, logger, act, agent_state, key, env_steps, phase) -> dict[str, Any]:
    # Fresh evaluation environments per evaluation (one per episode), seeded by the step:
    # evaluations do not depend on each other, so a resumed run evaluates exactly as an
    # unbroken one.
    base = (cfg.seed + 10_000 + 1_000 * env_steps) % (2**31 - 2**20)
    eval_envs = [setting.make_env(cfg, base + i, False) for i in range(_resolved(cfg.eval_episodes))]
    try:
        row = evaluate(act, agent_state, eval_envs, jax.random.fold_in(key, env_steps))
    finally:
        for env in eval_envs:
            env.close()
    row.update(setting.score_extras(cfg.task, row["return_mean"]))
    row["phase"] = phase
    logger.eval(env_steps, row)
    return {"env_steps": env_steps, **row}
