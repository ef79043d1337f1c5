"""The training loop shared by both settings, read top to bottom in :func:`train`:

    act, step the environments, store, update
    at the freeze step: freeze the encoder and migrate the buffer (once)
    log; evaluate; checkpoint

Owns: the loop and its two records. :class:`Run` is what a run holds fixed (its
configuration, agent, environments, seed axis, jitted steps); :class:`LoopState` is what
the loop changes (the agent and buffer states, the phase, counters), all of it saved in
checkpoints. Each step of the loop is a function of those two, callable on its own.

Everything that changes at SEER's freeze (the buffer, the update and what is stored per
observation) is one :class:`~seer_jax.steps.Phase` value, chosen once at the freeze, so
the per-step jitted functions never branch on the phase. Per agent step only the
observation goes to the device and only the action comes back (:mod:`seer_jax.traffic`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seer_jax import auto_freeze as auto_freeze_lib
from seer_jax import platform as platform_lib
from seer_jax import plots, run_folder
from seer_jax import replay as replay_lib
from seer_jax.auto_freeze import AutoFreeze, Monitor
from seer_jax.checkpoint import CheckpointError, RunCheckpointer
from seer_jax.config import (  # noqa: F401  (re-exported: the public names of seer_jax.train)
    RESUMABLE_FIELDS,
    ConfigError,
    TrainConfig,
    check_resumable,
    freeze_words,
    resolved,
    seed_configs,
)
from seer_jax.evaluation import EvalProgress, EvaluationStopped, evaluate, evaluate_and_log  # noqa: F401
from seer_jax.logging import RateMeter, RunLogger
from seer_jax.run_folder import RunFolderLock
from seer_jax.settings import MB, Setting
from seer_jax.steps import (  # noqa: F401  (re-exported)
    Phase,
    SeedAxis,
    agent_key,
    cached_jit,
    compiled_programs,
    make_learn,
    make_observe,
)
from seer_jax.stopping import StopSignals, TrainingDiverged, TrainingStopped
from seer_jax.traffic import HostTraffic


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (host memory: on CPU it
    includes the device arrays)."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


# ----------------------------------------------------------------------------- records


@dataclasses.dataclass
class SeedRun:
    """One seed's host side: its environment, logs, checkpoints and episode counters."""

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
    best_return: float | None = None  # --keep-best: the best evaluation so far


@dataclasses.dataclass
class Run:
    """What a run holds fixed from start to end (built by :func:`build_run`)."""

    cfg: TrainConfig  # resolved
    setting: Setting
    seeds: list[SeedRun]
    agent: Any
    axis: SeedAxis
    traffic: HostTraffic
    image_replay: replay_lib.Replay
    keys: tuple  # the seeds' k_init, k_obs, k_update, k_eval, k_migrate, each on the seed axis
    act: Any  # jitted agent.act
    probe: Any  # jitted agent.probe_latents (--freeze-step auto)
    rule: AutoFreeze | None
    t_start: float
    step_rate: RateMeter = dataclasses.field(default_factory=RateMeter)
    update_rate: RateMeter = dataclasses.field(default_factory=RateMeter)
    signals: StopSignals | None = None  # the stop requests (SIGTERM, Ctrl-C) while the loop runs
    eval_steps: int | None = None  # batched steps the last evaluation took (its time-left estimate)
    plot_warned: bool = False

    @property
    def total(self) -> int:
        return self.cfg.agent_steps

    @property
    def action_repeat(self) -> int:
        return resolved(self.cfg.action_repeat)

    @property
    def logger(self) -> RunLogger:
        return self.seeds[0].logger

    @property
    def zero_action(self) -> np.ndarray:
        return np.zeros(self.agent.action_spec.shape, self.agent.action_spec.dtype)

    def latent_replay(self) -> replay_lib.Replay:
        return _replay(self.cfg, self.agent, self.agent.latent_spec, stack=1)

    def phase(self, name: str) -> Phase:
        replay = self.image_replay if name == "images" else self.latent_replay()
        return self.axis.make_phase(name, self.agent, replay, resolved(self.cfg.batch_size))

    def store(self, state: LoopState, rows: list[tuple], write: Any = None) -> tuple[Any, Any]:
        """Store each seed's new observation; returns the buffer and the next actions."""
        return self.traffic.store(state.phase.observe, state.replay_state, state.agent_state, rows, self.keys[1], write)


@dataclasses.dataclass
class LoopState:
    """What the loop changes; everything but ``t_phase`` and ``next_checkpoint`` is saved
    in checkpoints. ``step``: agent steps done."""

    step: int
    phase: Phase
    agent_state: Any
    replay_state: Any
    policy_action: Any
    monitor: Monitor
    metrics: Any = None
    prev_metrics: Any = None
    phase_time: dict[str, float] = dataclasses.field(default_factory=lambda: {"images": 0.0, "latents": 0.0})
    phase_steps: dict[str, int] = dataclasses.field(default_factory=lambda: {"images": 0, "latents": 0})
    capacity: dict[str, int | None] = dataclasses.field(default_factory=dict)
    earlier: dict[str, float] = dataclasses.field(default_factory=lambda: {"wall_clock_s": 0.0, "peak_rss_mb": 0.0})
    resumed: bool = False  # this process started from a checkpoint
    t_phase: float = 0.0  # when the current phase's training time last started counting
    next_checkpoint: int | None = None  # env steps


# ----------------------------------------------------------------------------- the loop


def train(cfg: TrainConfig, stop_after: int | None = None) -> dict[str, Any] | None:
    """Train one agent, or several seeds in one process; returns the summary that is also
    written to ``summary.json``.

    With ``cfg.seeds`` listing several seeds, the agents' states and replay buffers are
    stacked along a leading seed axis and every per-step function is vmapped over it
    (:class:`~seer_jax.steps.SeedAxis`; the axis is sharded across devices when there are
    several). Each seed keeps its own run folder ``RUN_DIR/seedS`` (config, logs,
    evaluations, checkpoints, summary), laid out as a single-seed run of that seed.

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
    with RunFolderLock(resolved(cfg.run_dir)):  # one run per folder; a second is refused at once
        return _train(cfg, stop_after)


def _train(cfg: TrainConfig, stop_after: int | None) -> dict[str, Any] | None:
    """:func:`train` on a resolved configuration whose run folder this process holds."""
    finished = finished_summary(cfg)
    if finished is not None:
        return finished
    unfinished = remove_unfinished_saves(cfg)
    started_before = os.path.exists(os.path.join(resolved(cfg.run_dir), "config.json"))
    run = build_run(cfg)
    restored = restore_state(run)
    state = restored if restored is not None else fresh_state(run)
    open_logs(run, state)
    if unfinished:
        run.logger.message(
            f"found an unfinished checkpoint save ({', '.join(unfinished)}; its process was stopped while writing it), "
            "removed it; "
            + (
                f"continuing from the last finished checkpoint, agent step {state.step}"
                if state.resumed
                else "there is no finished checkpoint, so this run starts from the beginning"
            )  # fmt: skip
        )
    elif started_before and not state.resumed:
        run.logger.message(
            f"no finished checkpoint in {resolved(cfg.run_dir)} (the run before stopped before its first): "
            "this run starts from the beginning"
        )
    with StopSignals(run.logger.message) as signals:
        run.signals = signals
        if state.resumed and state.phase.name == "images" and cfg.freeze_step == state.step:
            state = freeze(run, state)  # a run forked at its freeze step (experiments/fork_run.py)
        state = maybe_evaluate(run, state)  # on resume: an evaluation a stop interrupted
        while state.step < run.total and not signals.received and state.step != stop_after:
            state = agent_step(run, state)  # act, step the environments, store, update
            state = maybe_freeze(run, state)
            log_train(run, state)
            state = maybe_evaluate(run, state)  # abandoned (to run on resume) when a stop is asked for
            show_progress(run, state)
            state = maybe_checkpoint(run, state)
        if state.step == run.total and not signals.received:
            state = final_evaluation(run, state)
        if signals.received or state.step < run.total:
            stop_here(run, state, signals.received)
            return None
    return finish(run, state)


def agent_step(run: Run, state: LoopState) -> LoopState:
    """One agent step of every seed: act (random before ``init_steps`` where the setting
    says so), step the environments, store the new observations, update the agents; a
    finished episode's reset observation is stored straight after."""
    cfg, step = run.cfg, state.step
    random = step < resolved(cfg.init_steps) and run.setting.random_warmup
    policy = None if random else run.traffic.down(state.policy_action)
    rows, done = [], []
    for i, r in enumerate(run.seeds):
        if policy is None:
            action = run.setting.random_action(r.np_rng, r.env)
        else:
            action = policy[i] if run.axis.many else policy
        ts = r.env.step(action)
        r.episode_return += ts.reward
        r.n_obs += 1
        rows.append((ts.observation, action, ts.reward, ts.discount, False, r.n_obs))
        done.append(ts.last())
    with run.traffic.guard():
        state.replay_state, state.policy_action = run.store(state, rows)
        if step >= max(resolved(cfg.init_steps), state.phase.replay.stack + 1):
            state.prev_metrics = state.metrics
            state.agent_state, state.metrics = state.phase.learn(
                state.agent_state, state.replay_state, run.keys[2], run.traffic.step_index(step)
            )
            run.update_rate.tick()
    if any(done):
        _start_episodes(run, state, done)
    state.step += 1
    state.phase_steps[state.phase.name] += 1
    return state


def _start_episodes(run: Run, state: LoopState, done: list[bool]) -> None:
    """Reset the environments whose episode ended and store their first observations
    (seeds whose episode goes on store nothing) and take their next actions."""
    rows = []
    for r, d in zip(run.seeds, done, strict=True):
        if d:
            r.last_return, r.episode_count = float(r.episode_return), r.episode_count + 1
            r.episode_return = 0.0
            r.n_obs += 1
            rows.append((r.env.reset().observation, run.zero_action, 0.0, 1.0, True, r.n_obs))
        else:  # no new observation for this seed: nothing is written
            rows.append((*_blank_row(run.agent), r.n_obs))
    with run.traffic.guard():
        state.replay_state, new_action = run.store(state, rows, write=done)
        state.policy_action = run.axis.select(run.traffic, np.asarray(done), new_action, state.policy_action)


def maybe_freeze(run: Run, state: LoopState) -> LoopState:
    """Freeze at the configured step, or (``--freeze-step auto``) at a check step where the
    encoder's latents have settled."""
    if run.cfg.freeze_step is not None and state.step == run.cfg.freeze_step:
        return freeze(run, state)
    if run.rule is not None and state.phase.name == "images" and run.rule.is_check_step(state.step):
        state, settled = probe_encoder(run, state)
        if settled:
            return freeze(run, state)
    return state


def freeze(run: Run, state: LoopState) -> LoopState:
    """SEER's freeze after ``state.step`` agent steps: freeze the agents, migrate the
    buffers to latents, switch to the latent phase's jitted steps."""
    jax.block_until_ready(state.agent_state)
    state.phase_time["images"] += time.perf_counter() - state.t_phase
    t0 = time.perf_counter()
    old, new = state.phase, run.phase("latents")
    state.agent_state, state.replay_state = run.axis.freeze_and_migrate(
        run.agent, state.agent_state, old, new, state.replay_state, run.keys[4], run.cfg.migrate_chunk
    )
    state.phase = new
    state.capacity["latents"] = new.replay.capacity
    run.logger.message(
        f"[freeze] agent step {state.step}: encoder frozen, {int(run.axis.take(state.replay_state.size, 0))} "
        f"observations migrated {'per seed ' if run.axis.many else ''}in {time.perf_counter() - t0:.1f}s; replay "
        f"capacity {run.image_replay.capacity} images -> {new.replay.capacity} latents ({new.replay.bytes_per_slot} B "
        f"each, {new.replay.nbytes / MB:.0f} MB of {resolved(run.cfg.replay_budget_mb):.0f} MB)"
    )
    # The observation just stored as a frame is the one the policy acts on next;
    # its action was computed before the freeze, with the same (now frozen) encoder.
    state.t_phase = time.perf_counter()
    return state


def probe_encoder(run: Run, state: LoopState) -> tuple[LoopState, bool]:
    """--freeze-step auto: the probe's latent drift after ``state.step`` agent steps, and
    whether the rule says freeze (the curve goes to each seed's ``freeze_auto.json``)."""
    rule, axis, monitor = resolved(run.rule), run.axis, state.monitor
    if monitor.probe is None:  # the first check fixes the probe: stored observations, evenly spread
        rel = auto_freeze_lib.probe_positions(int(axis.take(state.replay_state.size, 0)), rule.probe_size)
        probe = [
            np.asarray(run.image_replay.ordered_stacks(axis.take(state.replay_state, i), jnp.asarray(rel)))
            for i in range(axis.n)
        ]
        monitor = dataclasses.replace(monitor, probe=np.stack(probe))
    probes = resolved(monitor.probe)
    latents = np.stack([np.asarray(run.probe(axis.take(state.agent_state, i), probes[i])) for i in range(axis.n)])
    monitor, settled = auto_freeze_lib.check(rule, monitor, state.step, latents)
    if monitor.drifts:
        drift = ", ".join(f"{d:.4f}" for d in monitor.drifts[-1])
        run.logger.message(
            f"[auto freeze] agent step {state.step}: latent drift {drift}" + (" -> freeze" if settled else "")
        )
    for i, r in enumerate(run.seeds):
        with open(os.path.join(r.run_dir, "freeze_auto.json"), "w") as f:
            json.dump({"rule": dataclasses.asdict(rule), "steps": monitor.steps,
                       "drift": [d[i] for d in monitor.drifts], "chosen_step": monitor.chosen_step}, f, indent=1)  # fmt: skip
    state.monitor = monitor
    return state, settled


def log_train(run: Run, state: LoopState) -> None:
    """Every ``log_every`` agent steps: each seed's last losses and episode return to
    ``train.csv`` (and TensorBoard); a non-finite loss stops the run (TrainingDiverged)."""
    if state.metrics is None or state.step % resolved(run.cfg.log_every) != 0:
        return
    env_steps = state.step * run.action_repeat
    for i, r in enumerate(run.seeds):
        # Components skipped by the last update (NaN) come from the one before it.
        row: dict[str, Any] = {k: float(v) for k, v in run.axis.take(state.metrics, i).items()}
        if state.prev_metrics is not None:
            row.update({k: float(run.axis.take(state.prev_metrics, i)[k]) for k, v in row.items() if v != v})
        bad = [k for k, v in row.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"{', '.join(bad)} became non-finite at agent step {state.step} ({env_steps} env steps)"
                + (f", seed {r.cfg.seed}. " if run.axis.many else ". ")
                + _last_good_checkpoint(r.checkpointer, "lower the learning rate or check the inputs")
            )
        row.update(episode_return=r.last_return, episodes=r.episode_count, phase=state.phase.name)
        if hasattr(r.env, "last_game_score"):  # Atari: the last whole game's score
            # (a column from the first row on: CsvLog fixes its columns there)
            game_score = r.env.last_game_score
            row["game_score"] = float("nan") if game_score is None else game_score
        r.logger.train(env_steps, row)


def maybe_evaluate(run: Run, state: LoopState) -> LoopState:
    """Evaluate the seeds an evaluation is due for (evaluation time is not counted as
    training time). A stop asked for meanwhile abandons the evaluation: it is still due
    in the checkpoint, so a resumed run evaluates there first."""
    env_steps = state.step * run.action_repeat
    t0, evaluated = time.perf_counter(), False
    try:
        for r in run.seeds:
            if r.next_eval is None or r.next_eval > env_steps:
                continue
            row = _evaluate_seed(run, state, r, env_steps)
            if row is None:
                break
            r.eval_rows.append(row)
            keep_best(run, state, r, row)
            while r.next_eval <= env_steps:
                r.next_eval += resolved(run.cfg.eval_every)
            evaluated = True
        if evaluated:
            draw_curves(run, state)
    finally:
        state.t_phase += time.perf_counter() - t0
    return state


def final_evaluation(run: Run, state: LoopState) -> LoopState:
    """The evaluation at the end of the run, for each seed whose last evaluation was not at
    the last step (abandoned, like any evaluation, when a stop is asked for)."""
    jax.block_until_ready(state.agent_state)
    state.phase_time[state.phase.name] += time.perf_counter() - state.t_phase
    env_steps = run.total * run.action_repeat
    for r in run.seeds:
        if not r.eval_rows or r.eval_rows[-1]["env_steps"] != env_steps:
            row = _evaluate_seed(run, state, r, env_steps)
            if row is None:
                break
            r.eval_rows.append(row)
            keep_best(run, state, r, row)
    draw_curves(run, state)
    state.t_phase = time.perf_counter()
    return state


BEST_AGENT = "best_agent.msgpack"


def keep_best(run: Run, state: LoopState, r: SeedRun, row: dict[str, Any]) -> None:
    """``keep_best``: when an evaluation beats the seed's best so far, write its agent state
    to ``RUN_DIR/best_agent.msgpack`` (flax serialization; written whole, then moved) and
    what it scored to ``best_agent.json``; :func:`load_best_agent` reads it back."""
    if not run.cfg.keep_best or (r.best_return is not None and row["return_mean"] <= r.best_return):
        return
    from flax import serialization

    agent_state = jax.device_get(run.axis.take(state.agent_state, run.seeds.index(r)))
    path = os.path.join(r.run_dir, BEST_AGENT)
    with open(path + ".tmp", "wb") as f:
        f.write(serialization.to_bytes(agent_state))
    os.replace(path + ".tmp", path)
    with open(os.path.join(r.run_dir, "best_agent.json"), "w") as f:
        json.dump({"env_steps": row["env_steps"], "return_mean": row["return_mean"], "phase": state.phase.name}, f)
    r.best_return = row["return_mean"]


def load_best_agent(run_dir: str, agent: Any, key: jax.Array) -> tuple[Any, dict[str, Any]]:
    """The agent state :func:`keep_best` kept in ``run_dir`` (for ``agent``, built with the
    run's configuration) and its ``best_agent.json`` record."""
    from flax import serialization

    with open(os.path.join(run_dir, "best_agent.json")) as f:
        record = json.load(f)
    template = agent.init(key)
    if record["phase"] == "latents":
        template = agent.freeze(template)
    with open(os.path.join(run_dir, BEST_AGENT), "rb") as f:
        return serialization.from_bytes(template, f.read()), record


def draw_curves(run: Run, state: LoopState) -> None:
    """Redraw each seed's ``learning_curve.png`` (and, for several seeds, the run folder's
    one with every seed and their mean). A picture that cannot be drawn never stops a run:
    it says why once."""
    freeze = state.phase_steps["images"] * run.action_repeat if state.phase.name == "latents" else None
    try:
        for r in run.seeds:
            plots.learning_curve(r.run_dir, f"{r.cfg.task}, seed {r.cfg.seed}", freeze)
        if run.axis.many:
            plots.seeds_learning_curve(resolved(run.cfg.run_dir), {r.cfg.seed: r.run_dir for r in run.seeds},
                                       run.cfg.task)  # fmt: skip
    except Exception as e:  # matplotlib missing or failing: the run matters more than its picture
        if not run.plot_warned:
            run.logger.message(f"could not draw learning_curve.png ({type(e).__name__}: {e}); training goes on")
            run.plot_warned = True


def _evaluate_seed(run: Run, state: LoopState, r: SeedRun, env_steps: int) -> dict[str, Any] | None:
    """One seed's evaluation, shown on the progress bar as it runs; None when a stop
    request abandoned it."""
    i = run.seeds.index(r)
    agent_state = run.axis.take(state.agent_state, i)
    signals = run.signals
    progress = EvalProgress(
        run.logger.status,
        resolved(r.cfg.eval_episodes),
        run.eval_steps or getattr(r.env, "episode_steps", None),
        should_stop=None if signals is None else (lambda: signals.received is not None),
        label=f" seed {r.cfg.seed}" if run.axis.many else "",
    )
    try:
        row = evaluate_and_log(
            r.cfg, run.setting, r.logger, run.act, agent_state, r.keys[3], env_steps, state.phase.name, progress
        )
    except EvaluationStopped:
        run.logger.message(
            f"evaluation at {env_steps} env steps abandoned{progress.label} (it runs again when the run is resumed)"
        )
        return None
    run.eval_steps = progress.steps
    return row


def show_progress(run: Run, state: LoopState) -> None:
    """The progress bar's numbers: env steps per second, updates per second, the last
    return, and before a fixed freeze the time until it."""
    n = run.axis.n
    rate = run.step_rate.tick()
    postfix = dict(
        phase=state.phase.name,
        sps=f"{rate * run.action_repeat * n:.0f}",
        ups=f"{run.update_rate.rate * n:.1f}",
        ret=f"{_finite_mean([r.last_return for r in run.seeds]):.0f}",
    )
    if state.phase.name == "images" and isinstance(run.cfg.freeze_step, int) and rate > 0:
        # The overall ETA extrapolates the slow pixel phase; say when it ends.
        postfix["freeze_in"] = _hms((run.cfg.freeze_step - state.step) / rate)
    run.logger.progress(run.action_repeat, **postfix)


def maybe_checkpoint(run: Run, state: LoopState, force: bool = False) -> LoopState:
    """Save a checkpoint every ``checkpoint_every`` env steps before the end (the end's is
    written by :func:`finish`), or now when ``force``; never twice at one step."""
    env_steps = state.step * run.action_repeat
    due = state.next_checkpoint is not None and env_steps >= state.next_checkpoint and state.step < run.total
    if not (due or force) or state.step in run.seeds[0].checkpointer.steps():
        return state
    while state.next_checkpoint is not None and state.next_checkpoint <= env_steps:
        state.next_checkpoint += run.cfg.checkpoint_every
    jax.block_until_ready(state.agent_state)
    state.phase_time[state.phase.name] += time.perf_counter() - state.t_phase
    save_checkpoint(run, state)
    state.t_phase = time.perf_counter()
    return state


def stop_here(run: Run, state: LoopState, signal_name: str | None) -> None:
    """End a run stopped early: a checkpoint at the last completed agent step, its files
    closed; raise TrainingStopped when a signal asked for the stop."""
    run_dir = resolved(run.cfg.run_dir)
    maybe_checkpoint(run, state, force=True)
    _close(run)
    if signal_name is not None:
        raise TrainingStopped(
            f"stopped by {signal_name} after agent step {state.step} ({state.step * run.action_repeat} env steps), "
            f"with a checkpoint there in {run_dir}; to continue, run the same command with this run folder "
            f"(experiments/run.py --resume {run_dir})",
            state.step,
        )
    run.logger.message(f"stopped after agent step {state.step}; resume with --resume {run_dir}")


def finish(run: Run, state: LoopState) -> dict[str, Any]:
    """The end of a run (after :func:`final_evaluation`): the last checkpoint, each seed's
    ``summary.json`` (and the seeds' together), the closing line."""
    jax.block_until_ready(state.agent_state)
    state.phase_time[state.phase.name] += time.perf_counter() - state.t_phase
    if run.cfg.checkpoint_every and state.step not in run.seeds[0].checkpointer.steps():
        save_checkpoint(run, state)
    summaries = [_seed_summary(run, state, r) for r in run.seeds]
    for s in summaries:
        with open(os.path.join(s["run_dir"], "summary.json"), "w") as f:
            json.dump(s, f, indent=2)
    summary = summaries[0] if not run.axis.many else _seeds_summary(run, state, summaries)
    if run.traffic.check:
        with open(os.path.join(resolved(run.cfg.run_dir), "transfers.json"), "w") as f:
            json.dump(run.traffic.records, f)
    run.logger.message(_done_line(run, summary, summaries))
    _close(run)
    return summary


# ----------------------------------------------------------------------------- set-up


def remove_unfinished_saves(cfg: TrainConfig) -> list[str]:
    """Delete the checkpoint saves a killed process left half-written in the seeds'
    ``checkpoints/`` folders; returns them as ``seedS/checkpoints/NAME`` (or
    ``checkpoints/NAME``)."""
    found = []
    for c in seed_configs(cfg):
        directory = os.path.join(resolved(c.run_dir), "checkpoints")
        rel = os.path.relpath(directory, resolved(cfg.run_dir))
        found += [os.path.join(rel, name) for name in run_folder.remove_unfinished_saves(directory)]
    return found


def finished_summary(cfg: TrainConfig) -> dict[str, Any] | None:
    """The summary of a run folder whose every seed has finished (after checking that it
    holds this configuration), or None."""
    run_dir = resolved(cfg.run_dir)
    summary_path = os.path.join(run_dir, "summary.json")
    seed_cfgs = seed_configs(cfg)
    if not os.path.exists(summary_path) or not all(
        os.path.exists(os.path.join(resolved(c.run_dir), "summary.json")) for c in seed_cfgs
    ):
        return None
    for c in seed_cfgs:
        check_resumable(c)
    with open(summary_path) as f:
        summary = json.load(f)
    print(
        f"seer_jax: {run_dir} is a finished run (eval return {summary['final_eval_return_mean']:.1f}); nothing to do."
    )
    return summary


def build_run(cfg: TrainConfig) -> Run:
    """Everything a run holds fixed: per seed its folder, environment, checkpointer and
    keys; the agent (an equal agent of a recent run is reused, with its jits); the image
    buffer sized by the budget; the seed axis and its host traffic."""
    t_start = time.perf_counter()
    seed_cfgs = seed_configs(cfg)
    if len(seed_cfgs) > 1:  # the parent folder: the whole configuration, then one folder per seed
        check_resumable(cfg)
        os.makedirs(resolved(cfg.run_dir), exist_ok=True)
        with open(os.path.join(resolved(cfg.run_dir), "config.json"), "w") as f:
            json.dump(dataclasses.asdict(cfg), f, indent=2, sort_keys=True, default=str)
    setting = cfg.setting
    seeds = []
    for c in seed_cfgs:
        checkpointer = RunCheckpointer(resolved(c.run_dir), c.keep_checkpoints)
        if checkpointer.steps():
            check_resumable(c)
        env = setting.make_env(c, c.seed, True)
        keys = jax.random.split(jax.random.PRNGKey(c.seed), 5)
        seeds.append(SeedRun(c, resolved(c.run_dir), env, checkpointer, keys))
    agent = setting.make_agent(cfg, seeds[0].env)
    agent = cached_jit(agent_key(agent), lambda: agent)  # an equal agent of a recent run: its jits
    axis = SeedAxis(len(seeds))
    return Run(
        cfg=cfg,
        setting=setting,
        seeds=seeds,
        agent=agent,
        axis=axis,
        traffic=HostTraffic(sharding=axis.sharding),
        image_replay=_replay(cfg, agent, agent.frame_spec, stack=agent.obs_shape[0]),
        keys=tuple(axis.stack([r.keys[j] for r in seeds]) for j in range(5)),
        act=cached_jit(("act", type(agent).act, agent_key(agent)), lambda: jax.jit(agent.act, static_argnums=3)),
        probe=cached_jit(("probe", agent_key(agent)), lambda: jax.jit(agent.probe_latents)),
        rule=cfg.auto_freeze_rule(),
        t_start=t_start,
    )


def _replay(cfg: TrainConfig, agent: Any, item_spec: Any, stack: int) -> replay_lib.Replay:
    """A buffer of ``item_spec`` items sized by the replay budget (at least one batch)."""
    min_cap = resolved(cfg.batch_size) + agent.obs_shape[0] + 1
    capacity = replay_lib.capacity_for_budget(
        int(resolved(cfg.replay_budget_mb) * MB),
        item_spec,
        agent.action_spec,
        min_capacity=min_cap,
        max_capacity=cfg.setting.max_slots(cfg),
    )
    return replay_lib.Replay(
        item_spec=item_spec,
        action_spec=agent.action_spec,
        capacity=capacity,
        stack=stack,
        zero_pad=cfg.setting.zero_pad_stacks,
    )


def fresh_state(run: Run) -> LoopState:
    """The loop's state at step 0: initial agents, empty buffers, each environment reset
    and its first observation stored."""
    # Under jit: one compiled program instead of hundreds of op-by-op initialisers.
    agent = run.agent
    init = cached_jit(("init", type(agent).init, agent_key(agent)), lambda: jax.jit(agent.init))
    phase = run.phase("images")
    state = LoopState(
        step=0,
        phase=phase,
        agent_state=run.axis.stack([init(r.keys[0]) for r in run.seeds]),
        replay_state=run.axis.init_replay(phase.replay),
        policy_action=None,
        monitor=Monitor(),
        capacity={"images": run.image_replay.capacity, "latents": None},
    )
    first = []
    for r in run.seeds:
        r.np_rng = np.random.default_rng(r.cfg.seed)
        r.next_eval = run.cfg.eval_every if run.cfg.eval_every else None
        first.append((r.env.reset().observation, run.zero_action, 0.0, 1.0, True, r.n_obs))
    state.replay_state, state.policy_action = run.store(state, first)
    return state


def open_logs(run: Run, state: LoopState) -> None:
    """Open each seed's logs (a resumed run's are cut back to its checkpoint), say what
    runs where, and start the clocks."""
    cfg, many, resumed = run.cfg, run.axis.many, state.resumed
    for i, r in enumerate(run.seeds):
        r.logger = RunLogger(
            r.run_dir,
            dataclasses.asdict(r.cfg),
            run.total * run.action_repeat,
            cfg.progress and i == 0,
            resume_env_steps=state.step * run.action_repeat if resumed else None,
            label=f"seed {r.cfg.seed}" if many else "",
        )
    device = jax.devices()[0]
    mesh = run.axis.mesh
    run.logger.message(
        f"seer_jax: {cfg.task} ({run.setting.name}) on {device.platform.upper()} ({device.device_kind}"
        + (f", seed axis over {len(mesh.devices)} devices" if mesh is not None else "")
        + (", one core: bit-for-bit repeatable" if device.platform == "cpu" and platform_lib.on_one_cpu() else "")
        + f"); {run.total} agent steps x action repeat {run.action_repeat}; "
        + (f"seeds {', '.join(str(r.cfg.seed) for r in run.seeds)}; " if many else "")
        + f"freeze {freeze_words(cfg)}; run folder {cfg.run_dir}"
    )
    if hasattr(run.seeds[0].env, "renderer"):
        run.logger.message(f"seer_jax: MuJoCo renders with {run.seeds[0].env.renderer()}")
    replay = run.image_replay
    if not resumed:
        run.logger.message(
            f"replay: {replay.capacity} image transitions ({replay.bytes_per_slot} B each, {replay.nbytes / MB:.0f} MB "
            f"of a {resolved(cfg.replay_budget_mb):.0f} MB budget)" + (" per seed" if many else "")
        )
    else:
        run.logger.message(
            f"resumed from the checkpoint at agent step {state.step} ({state.step * run.action_repeat} env steps, "
            f"phase {state.phase.name}, {int(run.axis.take(state.replay_state.size, 0))} stored observations)"
        )
    if cfg.checkpoint_every:
        state.next_checkpoint = (state.step * run.action_repeat // cfg.checkpoint_every + 1) * cfg.checkpoint_every
    state.t_phase = time.perf_counter()


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(run: Run, state: LoopState) -> None:
    """Each seed's checkpoint at ``state.step``: its agent, buffer, next action, environment
    and auto-freeze arrays, and the loop's counters as metadata. A diverged agent is never
    saved over good checkpoints (TrainingDiverged)."""
    bad = _non_finite_leaves(state.agent_state)
    if bad:
        raise TrainingDiverged(
            f"non-finite parameters at agent step {state.step} ({state.step * run.action_repeat} env steps): "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. " + _last_good_checkpoint(run.seeds[0].checkpointer)
        )
    take = run.axis.take
    monitor_arrays = state.monitor.arrays()
    for i, r in enumerate(run.seeds):
        env_state = {k: np.asarray(v) for k, v in r.env.get_state().items()}
        arrays = {
            "agent": take(state.agent_state, i),
            "replay": take(state.replay_state, i),
            "policy_action": np.asarray(take(state.policy_action, i)),
            "env": env_state,
            "auto_freeze": {k: v[i] for k, v in monitor_arrays.items()},
        }
        r.checkpointer.save(state.step, arrays, _checkpoint_meta(run, state, r, env_state))


def _checkpoint_meta(run: Run, state: LoopState, r: SeedRun, env_state: dict[str, np.ndarray]) -> dict[str, Any]:
    i, take = run.seeds.index(r), run.axis.take
    return {
        "phase": state.phase.name,
        "n_obs": r.n_obs,
        "episode_count": r.episode_count,
        "episode_return": r.episode_return,
        "last_return": None if r.last_return != r.last_return else r.last_return,
        "np_rng": r.np_rng.bit_generator.state,
        "metrics": _floats(None if state.metrics is None else take(state.metrics, i)),
        "prev_metrics": _floats(None if state.prev_metrics is None else take(state.prev_metrics, i)),
        "phase_time": state.phase_time,
        "phase_steps": state.phase_steps,
        "wall_clock_s": state.earlier["wall_clock_s"] + time.perf_counter() - run.t_start,
        "peak_rss_mb": max(state.earlier["peak_rss_mb"], peak_rss_mb()),
        "capacity": state.capacity,
        "eval_rows": r.eval_rows,
        "next_eval": r.next_eval,
        "best_return": r.best_return,
        "env_shapes": {k: [list(v.shape), v.dtype.name] for k, v in env_state.items()},
        "env_steps": state.step * run.action_repeat,
        "auto_freeze": state.monitor.meta(),
        "auto_freeze_shapes": {k: [list(v.shape[1:]), v.dtype.name] for k, v in state.monitor.arrays().items()},
    }


def restore_state(run: Run) -> LoopState | None:
    """The loop's state from the newest checkpoint every seed has (None: no checkpoint;
    the seeds' environments and host counters are restored too)."""
    restored = _restore_arrays(run)
    if restored is None:
        return None
    step, metas = restored[0][0], [x[2] for x in restored]
    axis, many = run.axis, run.axis.many
    for r, (_, arrays, meta) in zip(run.seeds, restored, strict=True):
        _restore_seed(r, arrays["env"], meta)
    seed_arrays = [x[1].get("auto_freeze", {}) for x in restored]
    return LoopState(
        step=step,
        phase=run.phase(metas[0]["phase"]),
        agent_state=axis.stack([x[1]["agent"] for x in restored]),
        replay_state=axis.stack([x[1]["replay"] for x in restored]),
        policy_action=axis.stack([x[1]["policy_action"] for x in restored]),
        monitor=Monitor.restore(
            metas[0].get("auto_freeze", Monitor().meta()),
            {k: np.stack([a[k] for a in seed_arrays]) for k in seed_arrays[0]},
        ),
        metrics=_stack_floats([m["metrics"] for m in metas], many),
        prev_metrics=_stack_floats([m["prev_metrics"] for m in metas], many),
        phase_time=metas[0]["phase_time"],
        phase_steps=metas[0]["phase_steps"],
        capacity=metas[0]["capacity"],
        # Processes before this one, up to the checkpoint (older checkpoints lack it).
        earlier={k: float(metas[0].get(k, 0.0)) for k in ("wall_clock_s", "peak_rss_mb")},
        resumed=True,
    )


def _restore_arrays(run: Run) -> list[tuple[int, Any, dict[str, Any]]] | None:
    """Each seed's (step, arrays, meta) of their newest common checkpoint, or None."""
    agent, zero_action = run.agent, run.zero_action

    def template(meta):
        """The structure of a checkpoint's arrays (its phase decides the state's shape)."""
        fresh = jax.eval_shape(agent.init, run.seeds[0].keys[0])
        latents = meta["phase"] == "latents"
        return {
            "agent": jax.eval_shape(agent.freeze, fresh) if latents else fresh,
            "replay": jax.eval_shape((run.latent_replay() if latents else run.image_replay).init),
            "policy_action": np.asarray(zero_action),
            "env": {k: np.zeros(shape, dtype) for k, (shape, dtype) in meta["env_shapes"].items()},
            "auto_freeze": {
                k: np.zeros(shape, dtype) for k, (shape, dtype) in meta.get("auto_freeze_shapes", {}).items()
            },
        }

    run_dir = run.cfg.run_dir
    restored = [r.checkpointer.restore_latest(template) for r in run.seeds]
    if all(x is None for x in restored):
        return None
    if any(x is None for x in restored):
        raise CheckpointError(
            f"Some seed folders of {run_dir} have checkpoints and some do not; resume the seeds one by one "
            "(--resume RUN_DIR/seedS) or delete the folder to start again."
        )
    steps = [x[0] for x in restored if x is not None]
    if len(set(steps)) > 1:  # killed while saving one seed: all go back to a common step
        common = min(steps)
        restored = [r.checkpointer.restore_latest(template, max_step=common) for r in run.seeds]
        if any(x is None or x[0] != common for x in restored):
            raise CheckpointError(
                f"The seeds' checkpoints in {run_dir} have no common step; delete the seed folders to start again."
            )
    return [x for x in restored if x is not None]


def _restore_seed(r: SeedRun, env_arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    """One seed's environment (an Atari game is replayed) and host counters."""
    if "history" in env_arrays:
        print(
            f"seer_jax: restoring the environment by replaying {len(env_arrays['history'])} recorded steps ...",
            flush=True,
        )
        r.env.set_state(env_arrays, report=_replay_reporter())
    else:
        r.env.set_state(env_arrays)
    r.np_rng = np.random.default_rng()
    r.np_rng.bit_generator.state = meta["np_rng"]
    r.n_obs, r.episode_count, r.episode_return = meta["n_obs"], meta["episode_count"], meta["episode_return"]
    r.last_return = float("nan") if meta["last_return"] is None else meta["last_return"]
    r.eval_rows, r.next_eval = meta["eval_rows"], meta["next_eval"]
    r.best_return = meta.get("best_return")


# ----------------------------------------------------------------------------- summaries


def _seed_summary(run: Run, state: LoopState, r: SeedRun) -> dict[str, Any]:
    cfg, total = run.cfg, run.total
    final = r.eval_rows[-1]
    times, steps = state.phase_time, state.phase_steps
    summary = {
        "task": cfg.task,
        "setting": run.setting.name,
        "seed": r.cfg.seed,
        "env_steps": total * run.action_repeat,
        "agent_steps": total,
        "freeze_step": state.monitor.chosen_step if run.rule is not None else cfg.freeze_step,
        "freeze_rule": "auto" if run.rule is not None else ("fixed" if cfg.freeze_step is not None else "none"),
        "final_eval_return_mean": final["return_mean"],
        "final_eval_return_std": final["return_std"],
        "eval": r.eval_rows,
        "capacity_images": state.capacity["images"],
        "capacity_latents": state.capacity["latents"],
        "hours_images": times["images"] / 3600,
        "hours_latents": times["latents"] / 3600,
        "agent_steps_per_s_images": steps["images"] / max(times["images"], 1e-9),
        "agent_steps_per_s_latents": (steps["latents"] / times["latents"]) if times["latents"] else None,
        **_clocks(run, state),
        "wall_clock_s_this_process": time.perf_counter() - run.t_start,
        "resumed": state.resumed,
        "run_dir": r.run_dir,
    }
    if run.axis.many:
        summary["seeds_in_process"] = run.axis.n
    return summary


def _seeds_summary(run: Run, state: LoopState, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The run folder's summary of several seeds (each seed's is in its own folder)."""
    finals = [s["final_eval_return_mean"] for s in summaries]
    summary = {
        "task": run.cfg.task,
        "seeds": [r.cfg.seed for r in run.seeds],
        "final_eval_return_mean": float(np.mean(finals)),
        "final_eval_return_std_over_seeds": float(np.std(finals)),
        "runs": summaries,
        **_clocks(run, state),
        "run_dir": run.cfg.run_dir,
    }
    with open(os.path.join(resolved(run.cfg.run_dir), "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _clocks(run: Run, state: LoopState) -> dict[str, float]:
    return {
        "wall_clock_s": state.earlier["wall_clock_s"] + time.perf_counter() - run.t_start,
        "peak_rss_mb": max(state.earlier["peak_rss_mb"], peak_rss_mb()),
    }


def _done_line(run: Run, summary: dict[str, Any], summaries: list[dict[str, Any]]) -> str:
    many = run.axis.many
    returns = (
        ", ".join(f"{s['final_eval_return_mean']:.1f}" for s in summaries)
        if many
        else f"{summary['final_eval_return_mean']:.1f} ± {summary['final_eval_return_std']:.1f}"
    )
    capacity = summaries[0]
    return (
        f"done: {run.cfg.task} seed{'s' if many else ''} {', '.join(str(r.cfg.seed) for r in run.seeds)}, "
        f"{run.total * run.action_repeat} env steps, eval return {returns}, {summary['wall_clock_s'] / 60:.1f} min, "
        f"replay {capacity['capacity_images']} images -> {capacity['capacity_latents']} latents; "
        f"results in {run.cfg.run_dir}"
    )


# ----------------------------------------------------------------------------- helpers


def _close(run: Run) -> None:
    for r in run.seeds:
        r.logger.close()
        r.env.close()


def _last_good_checkpoint(checkpointer: RunCheckpointer, advice: str | None = None) -> str:
    good = checkpointer.steps()
    if good:
        return f"The last good checkpoint (agent step {good[-1]}) is kept in {checkpointer.directory}" + (
            f"; {advice} before resuming." if advice else "."
        )
    return "No checkpoint was written yet" + (f"; {advice}." if advice else ".")


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
