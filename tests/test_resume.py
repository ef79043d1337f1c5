"""Checkpoints and exact resume: a run stopped at agent step k and resumed ends with the
same parameters, buffer and logs as the run that never stopped (on CPU)."""

import os
import shutil
import signal

import jax
import numpy as np
import pytest
from same_run import assert_same_run, dmc_cfg, final_arrays

from seer_jax.checkpoint import CheckpointError, RunCheckpointer
from seer_jax.logging import RunLogger
from seer_jax.train import ConfigError, StopSignals, TrainingStopped, train


@pytest.fixture(scope="module")
def dmc_full(tmp_path_factory):
    """One uninterrupted tiny DMC run, the reference for the resumed ones."""
    run_dir = tmp_path_factory.mktemp("dmc") / "full"
    return run_dir, train(dmc_cfg(run_dir))


def _stopped(tmp_path_factory, stop):
    run_dir = tmp_path_factory.mktemp(f"stopped{stop}") / "cut"
    assert train(dmc_cfg(run_dir), stop_after=stop) is None
    return run_dir


@pytest.fixture(scope="module")
def dmc_stopped(tmp_path_factory):
    """Run folders of the tiny DMC run stopped at agent steps 15, 20 and 45 (made once;
    each test works on its own copy)."""
    made = {}

    def copy(stop, to):
        if stop not in made:
            made[stop] = _stopped(tmp_path_factory, stop)
        shutil.copytree(made[stop], to)
        return to

    return copy


@pytest.mark.parametrize("stop", [20, 45])  # before the freeze (30) and after it
def test_dmc_resume_is_exact(tmp_path, dmc_full, dmc_stopped, stop):
    full_dir, full = dmc_full
    dmc_stopped(stop, tmp_path / "cut")
    resumed = train(dmc_cfg(tmp_path / "cut"))
    assert resumed["resumed"] and resumed["final_eval_return_mean"] == full["final_eval_return_mean"]
    assert_same_run(full_dir, tmp_path / "cut")
    # Wall-clock and peak memory count the process before the stop too.
    assert resumed["wall_clock_s"] > resumed["wall_clock_s_this_process"] > 0
    assert resumed["peak_rss_mb"] >= full["peak_rss_mb"] * 0.5 > 0


def test_sigterm_stops_with_a_checkpoint_at_that_step(tmp_path, monkeypatch):
    """A SIGTERM (or Ctrl-C) in the training loop finishes the agent step, writes a
    checkpoint there (not a periodic one: nothing is lost) and raises TrainingStopped.
    The checkpoint is written by the same code as ``stop_after``'s, whose exact resume
    from any step is tested above."""
    calls = []

    def progress(self, *args, **kw):  # called once per agent step
        calls.append(1)
        if len(calls) == 23:
            signal.raise_signal(signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(RunLogger, "progress", progress)
    with pytest.raises(TrainingStopped, match="SIGTERM after agent step 23") as stopped:
        train(dmc_cfg(tmp_path / "cut", checkpoint_every=0))  # checkpoints only at the end...
    assert stopped.value.step == 23 and isinstance(stopped.value, KeyboardInterrupt)
    assert RunCheckpointer(str(tmp_path / "cut")).steps() == [23]  # ...and at the stop
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    step, arrays = final_arrays(tmp_path / "cut")
    assert (
        step == 23 and int(np.asarray(arrays["replay"]["size"])) == 23 + 2
    )  # 23 steps, 2 episode starts (12 steps each)


@pytest.mark.parametrize("where", ["evaluation", "migration"])
def test_a_stop_during_an_evaluation_or_the_migration_checkpoints_and_resumes_exactly(
    tmp_path, dmc_full, monkeypatch, where
):
    """A SIGTERM while an evaluation runs abandons it (it is still due in the checkpoint,
    so the resumed run evaluates there first); one during the freeze's migration lets the
    migration finish and stops after that agent step. Either way: a checkpoint at the last
    completed agent step, TrainingStopped, and a resume that ends as the unbroken run."""
    import seer_jax.steps
    import seer_jax.train

    full_dir, full = dmc_full
    sent = []
    if where == "evaluation":  # the evaluation after agent step 20 (eval_every: 160 env steps)
        original = seer_jax.train.evaluate_and_log

        def evaluate_and_log(*args, **kw):
            if not sent:
                sent.append(signal.raise_signal(signal.SIGTERM))
            return original(*args, **kw)

        monkeypatch.setattr(seer_jax.train, "evaluate_and_log", evaluate_and_log)
        stop_step = 20
    else:  # the freeze at agent step 30
        migrate = seer_jax.steps.SeedAxis.freeze_and_migrate

        def freeze_and_migrate(self, *args, **kw):
            sent.append(signal.raise_signal(signal.SIGTERM))
            return migrate(self, *args, **kw)

        monkeypatch.setattr(seer_jax.steps.SeedAxis, "freeze_and_migrate", freeze_and_migrate)
        stop_step = 30
    with pytest.raises(TrainingStopped, match=f"SIGTERM after agent step {stop_step}"):
        train(dmc_cfg(tmp_path / "cut"))
    monkeypatch.undo()
    assert RunCheckpointer(str(tmp_path / "cut")).steps()[-1] == stop_step
    step, meta = RunCheckpointer(str(tmp_path / "cut")).latest_meta()
    assert meta["phase"] == ("latents" if where == "migration" else "images")
    # No evaluation row (the abandoned one wrote nothing); at the freeze, the one at 20.
    eval_csv = tmp_path / "cut" / "eval.csv"
    rows = eval_csv.read_text().count("\n") - 1 if eval_csv.exists() else 0
    assert rows == (0 if where == "evaluation" else 1)
    resumed = train(dmc_cfg(tmp_path / "cut"))
    assert resumed["resumed"] and resumed["final_eval_return_mean"] == full["final_eval_return_mean"]
    assert_same_run(full_dir, tmp_path / "cut")


def test_a_second_signal_stops_at_once_and_restores_the_handlers():
    messages = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as info, StopSignals(messages.append) as signals:
        signal.raise_signal(signal.SIGINT)
        assert signals.received == "SIGINT" and "stopping after this agent step" in messages[0]
        signal.raise_signal(signal.SIGINT)
    assert not isinstance(info.value, TrainingStopped)
    assert signal.getsignal(signal.SIGINT) is before


def test_damaged_newest_checkpoint_falls_back_to_previous(tmp_path, dmc_full, dmc_stopped, capsys):
    full_dir, full = dmc_full
    dmc_stopped(45, tmp_path / "cut")
    ck = RunCheckpointer(str(tmp_path / "cut"))
    steps = ck.steps()
    assert steps[-1] == 45 and len(steps) == 2  # the last K=2 are kept
    # A save killed half-way never becomes a checkpoint (orbax writes to a temporary
    # folder and renames it when complete); files cut short by a failing disk must make
    # the newest checkpoint unreadable, and the one before it is used.
    newest = os.path.join(ck.directory, str(steps[-1]), "arrays")
    for root, _, files in os.walk(newest):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "r+b") as fh:
                fh.truncate(os.path.getsize(p) // 3)
    resumed = train(dmc_cfg(tmp_path / "cut"))
    assert "skipped an unreadable checkpoint" in capsys.readouterr().out
    assert resumed["final_eval_return_mean"] == full["final_eval_return_mean"]
    assert_same_run(full_dir, tmp_path / "cut")


def test_no_readable_checkpoint_is_a_clear_error(tmp_path, dmc_stopped):
    dmc_stopped(15, tmp_path / "cut")
    ck = RunCheckpointer(str(tmp_path / "cut"))
    for s in ck.steps():
        shutil.rmtree(os.path.join(ck.directory, str(s), "arrays"))
    with pytest.raises(CheckpointError, match="No readable checkpoint"):
        train(dmc_cfg(tmp_path / "cut"))


def test_resume_with_other_config_is_refused(tmp_path, dmc_stopped):
    assert RunCheckpointer(str(tmp_path / "empty")).latest_meta() is None  # no run yet
    dmc_stopped(15, tmp_path / "cut")
    # The latest checkpoint's metadata is readable on its own (the reports use it).
    step, meta = RunCheckpointer(str(tmp_path / "cut")).latest_meta()
    assert step == 15 and sum(meta["phase_steps"].values()) == 15
    assert meta["env_steps"] == 15 * 8  # cartpole_swingup repeats each action 8 times
    with pytest.raises(ConfigError, match="different configuration.*batch_size"):
        train(dmc_cfg(tmp_path / "cut", batch_size=16))


def test_checkpoint_of_another_network_is_refused_and_kept(tmp_path, dmc_stopped, monkeypatch):
    # Same config, another network (as a game with another action set would give): the
    # shapes are compared before restoring, every array is named, and nothing is deleted.
    from seer_jax.agents.curl_sac import CurlSac
    from seer_jax.checkpoint import CheckpointMismatch
    from seer_jax.networks import QHead

    dmc_stopped(15, tmp_path / "cut")
    before = RunCheckpointer(str(tmp_path / "cut")).steps()
    original = CurlSac.__init__

    def wider_critic(self, *a, **k):
        original(self, *a, **k)
        self.q = QHead(2 * self.config.hidden_dim, self.config.matmul_dtype)

    monkeypatch.setattr(CurlSac, "__init__", wider_critic)
    with pytest.raises(CheckpointMismatch, match=r"another network.*agent\.critic\.q\.q1\.") as err:
        train(dmc_cfg(tmp_path / "cut"))

    # every critic array whose shape the width changes is reported four times: the
    # parameters, their target copy and both Adam moments (inside optax's named tuples)
    def shapes(width):
        z, a = jax.ShapeDtypeStruct((1, 50), "float32"), jax.ShapeDtypeStruct((1, 1), "float32")
        return [
            x.shape for x in jax.tree_util.tree_leaves(jax.eval_shape(QHead(width).init, jax.random.PRNGKey(0), z, a))
        ]

    changed = sum(a != b for a, b in zip(shapes(8), shapes(16)))
    assert changed == 10  # per twin: both hidden layers' kernels and biases, the output kernel
    assert f"({4 * changed} arrays differ;" in str(err.value)
    assert RunCheckpointer(str(tmp_path / "cut")).steps() == before


def test_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, dmc_stopped, monkeypatch):
    import errno

    dmc_stopped(15, tmp_path / "cut")
    before = RunCheckpointer(str(tmp_path / "cut")).steps()

    def no_space(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    import orbax.checkpoint as ocp

    monkeypatch.setattr(ocp.CheckpointManager, "save", no_space)
    with pytest.raises(CheckpointError, match="disk is full"):
        train(dmc_cfg(tmp_path / "cut"))
    assert RunCheckpointer(str(tmp_path / "cut")).steps() == before


def test_non_finite_parameters_stop_the_run_and_keep_the_checkpoint(tmp_path, monkeypatch):
    from seer_jax.agents.curl_sac import CurlSac
    from seer_jax.train import TrainingDiverged

    original = CurlSac.update_latent

    def poisoned(self, state, batch, key):  # a learning rate gone wrong, after the freeze
        state, metrics = original(self, state, batch, key)
        return state.replace(log_alpha=state.log_alpha * jnp.inf), metrics

    import jax.numpy as jnp

    monkeypatch.setattr(CurlSac, "update_latent", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite") as err:
        train(dmc_cfg(tmp_path / "run"))
    steps = RunCheckpointer(str(tmp_path / "run")).steps()
    assert steps and f"agent step {steps[-1]}" in str(err.value)


def test_checkpoint_from_another_version_is_refused(tmp_path, dmc_stopped):
    import json

    dmc_stopped(15, tmp_path / "cut")
    ck = RunCheckpointer(str(tmp_path / "cut"))
    for s in ck.steps():
        path = os.path.join(ck.directory, str(s), "meta", "metadata")
        with open(path) as f:
            meta = json.load(f)
        meta["version"] = -1
        with open(path, "w") as f:
            json.dump(meta, f)
    with pytest.raises(CheckpointError, match="another version of seer_jax"):
        train(dmc_cfg(tmp_path / "cut"))


def test_fork_before_the_freeze_equals_the_run_from_scratch(tmp_path, dmc_full):
    """experiments/fork_run.py: a no-freeze run's checkpoint, forked with a freeze step,
    trains into exactly the run that froze from the start."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "experiments"))
    from fork_run import fork

    full_dir, full = dmc_full
    assert train(dmc_cfg(tmp_path / "plain", no_freeze=True, keep_checkpoints=10), stop_after=35) is None
    fork(str(tmp_path / "plain"), 20, str(tmp_path / "fork"), freeze_step=30)  # 10 pixel steps, then freeze
    forked = train(dmc_cfg(tmp_path / "fork"))
    assert forked["final_eval_return_mean"] == full["final_eval_return_mean"]
    assert_same_run(full_dir, tmp_path / "fork")
    # Forked exactly at the freeze step: it freezes as soon as it starts. Same numbers; only
    # the phase label of the row logged at step 30 differs (written before the fork).
    fork(str(tmp_path / "plain"), 30, str(tmp_path / "at"), freeze_step=30)
    at = train(dmc_cfg(tmp_path / "at"))
    assert at["final_eval_return_mean"] == full["final_eval_return_mean"]
    assert_same_run(full_dir, tmp_path / "at", ignore_columns=("phase",))


def test_kill_during_a_save_leaves_the_previous_checkpoint_usable(tmp_path, dmc_full):
    """What a kill in the middle of a save leaves behind: orbax writes into a temporary
    folder that is renamed only when complete. Resuming ignores it and continues from
    the previous checkpoint, exactly."""
    full_dir, full = dmc_full
    assert train(dmc_cfg(tmp_path / "cut"), stop_after=25) is None
    ck = RunCheckpointer(str(tmp_path / "cut"))
    last = ck.steps()[-1]
    partial = os.path.join(ck.directory, f"{last + 5}.orbax-checkpoint-tmp-1234567")
    shutil.copytree(os.path.join(ck.directory, str(last)), partial)
    for root, _, files in os.walk(partial):
        for f in files:
            with open(os.path.join(root, f), "r+b") as fh:
                fh.truncate(0)
    resumed = train(dmc_cfg(tmp_path / "cut"))
    assert resumed["final_eval_return_mean"] == full["final_eval_return_mean"]
    assert_same_run(full_dir, tmp_path / "cut")
