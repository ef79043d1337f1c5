"""--freeze-step auto: the rule on its own, and in tiny real runs (the step it picks, the
curve in the run folder, and an exact resume across a check)."""

import json

import numpy as np
import pytest
from same_run import assert_same_run, dmc_cfg

from seer_jax import auto_freeze
from seer_jax.train import ConfigError, train


def test_drift_and_probe_positions():
    z = np.ones((4, 3), np.float32)
    assert auto_freeze.drift(z, z) == 0.0
    assert auto_freeze.drift(z, 1.1 * z) == pytest.approx(0.1)
    pos = auto_freeze.probe_positions(1000, 5)
    np.testing.assert_array_equal(pos, [0, 250, 500, 749, 999])
    assert len(auto_freeze.probe_positions(3, 256)) == 3  # fewer stored than asked: each once


def test_rule_waits_for_patience_within_min_and_max():
    rule = auto_freeze.AutoFreeze(every=10, threshold=0.1, patience=2, min_step=30, max_step=80)
    assert not rule.decide(20, [0.01, 0.01])  # settled, but before min_step
    assert rule.decide(30, [0.5, 0.01, 0.01])
    assert not rule.decide(40, [0.01, 0.2])  # the last check moved again
    assert not rule.decide(40, [0.05])  # fewer checks than patience
    assert rule.decide(80, [1.0, 1.0])  # max_step freezes whatever the drift
    with pytest.raises(ValueError, match="min_step"):
        auto_freeze.AutoFreeze(min_step=10, max_step=5)


def test_check_records_the_largest_seed_drift():
    rule = auto_freeze.AutoFreeze(every=1, threshold=0.1, patience=1, min_step=1, max_step=100)
    z = np.ones((2, 4, 3), np.float32)
    mon, freeze = auto_freeze.check(rule, auto_freeze.Monitor(), 1, z)
    assert not freeze and mon.steps == []  # the first check only records
    moved = z.copy()
    moved[1] *= 1.5  # seed 1 still moves
    mon, freeze = auto_freeze.check(rule, mon, 2, moved)
    assert not freeze and mon.steps == [2] and mon.drifts[0] == pytest.approx([0.0, 0.5])
    mon, freeze = auto_freeze.check(rule, mon, 3, moved)
    assert freeze and mon.chosen_step == 3


def cfg(run_dir, **kw):
    """The resume tests' tiny cartpole run with the rule instead of a fixed step."""
    auto = dict(
        freeze_step="auto",
        freeze_auto_every=5,
        freeze_auto_patience=2,
        freeze_auto_min=20,
        freeze_auto_max=40,
        freeze_auto_threshold=10.0,
        eval_every=8 * 60,
    )
    return dmc_cfg(run_dir, **{**auto, **kw}).resolved()


def test_auto_freeze_picks_its_step_and_logs_the_curve(tmp_path):
    summary = train(cfg(tmp_path / "settled"))
    # every drift is under a threshold of 10: the first step allowed with 2 checks behind it
    assert summary["freeze_step"] == 20 and summary["freeze_rule"] == "auto"
    curve = json.loads((tmp_path / "settled" / "freeze_auto.json").read_text())
    assert curve["steps"] == [10, 15, 20] and curve["chosen_step"] == 20
    # no update before agent step 10 (init_steps): the encoder has not moved; then it trains
    assert curve["drift"][0] == 0.0 and all(0 < d < 10 for d in curve["drift"][1:])
    # a threshold nothing reaches: the rule freezes at its maximum
    strict = train(cfg(tmp_path / "strict", freeze_auto_threshold=1e-9))
    assert strict["freeze_step"] == 40
    assert json.loads((tmp_path / "strict" / "freeze_auto.json").read_text())["steps"][-1] == 40


def test_auto_freeze_resumes_exactly_across_a_check(tmp_path):
    train(cfg(tmp_path / "full"))
    assert train(cfg(tmp_path / "cut"), stop_after=12) is None  # after the checks at 5 and 10
    resumed = train(cfg(tmp_path / "cut"))
    assert resumed["resumed"] and resumed["freeze_step"] == 20
    assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_auto_freeze_settings_are_checked():
    with pytest.raises(ConfigError, match="--freeze-step auto"):
        cfg("unused", freeze_auto_patience=0)
    short = cfg("unused", freeze_auto_max=None, freeze_auto_min=None)
    assert short.freeze_auto_max == short.agent_steps - 1 and short.freeze_auto_min <= short.freeze_auto_max
