"""What a run shows while it runs: an evaluation's progress line (and its stop), and the
learning-curve picture drawn from a run folder's CSVs."""

import csv
import os

import pytest

from seer_jax.evaluation import EvalProgress, EvaluationStopped
from seer_jax.plots import learning_curve, seeds_learning_curve


def test_eval_progress_shows_episodes_steps_and_time_left_and_stops_on_request():
    shown, stop = [], []
    progress = EvalProgress(shown.append, episodes=3, expected_steps=100, should_stop=lambda: bool(stop), every_s=0)
    progress(10, 0)
    progress(50, 1)
    assert shown[0].startswith("evaluating: 0/3 episodes done, step 10/100, ~") and shown[0].endswith("left")
    assert "1/3 episodes done, step 50/100" in shown[1]
    unknown = EvalProgress(shown.append, episodes=2, every_s=0)  # no expected length: no time left
    unknown(7, 0)
    assert shown[-1] == "evaluating: 0/2 episodes done, step 7"
    stop.append(True)
    with pytest.raises(EvaluationStopped):
        progress(51, 1)
    assert progress.steps == 51


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_learning_curves_from_a_run_folder_and_across_seeds(tmp_path):
    assert learning_curve(str(tmp_path)) is None  # no evaluation yet: no picture
    seeds = {}
    for seed in (0, 1):
        d = tmp_path / f"seed{seed}"
        d.mkdir()
        _write(d / "eval.csv", [dict(env_steps=s, return_mean=s / 10 + seed, return_std=1.0, phase="images")
                                for s in (100, 200, 300)])  # fmt: skip
        _write(d / "train.csv", [dict(env_steps=s, episode_return=s / 20, phase="images" if s < 150 else "latents")
                                 for s in range(50, 301, 50)])  # fmt: skip
        path = learning_curve(str(d), "cartpole, seed 0")
        assert path == str(d / "learning_curve.png") and os.path.getsize(path) > 10_000
        seeds[seed] = str(d)
    both = seeds_learning_curve(str(tmp_path), seeds, "cartpole")
    assert both == str(tmp_path / "learning_curve.png") and os.path.getsize(both) > 10_000
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp.png")]
