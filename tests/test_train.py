"""End to end: a tiny real training run that crosses the freeze step and evaluates, and
the command line's answers to bad input."""

import csv
import json
import os
import subprocess
import sys

import pytest
from transfers import check_per_step_traffic

from seer_jax.train import TrainConfig, train

ROOT = os.path.join(os.path.dirname(__file__), "..")
RUN = [sys.executable, os.path.join(ROOT, "experiments", "run.py")]


def test_tiny_run_crosses_freeze_and_evaluates(tmp_path, monkeypatch):
    # also checks device residency: the per-step work runs under a transfer guard
    monkeypatch.setenv("SEER_JAX_CHECK_TRANSFERS", "1")
    cfg = TrainConfig(
        task="cartpole_swingup",
        env_steps=8 * 60,
        batch_size=8,
        init_steps=10,
        freeze_step=30,
        eval_every=8 * 40,
        eval_episodes=1,
        log_every=5,
        episode_length=8 * 12,
        replay_budget_mb=1.5,
        run_dir=str(tmp_path / "run"),
        progress=False,
        migrate_chunk=16,
    )
    summary = train(cfg)
    # The budget holds few images but many more latents (clamped to what the run writes).
    assert summary["capacity_images"] == int(1.5 * 2**20) // 30013
    assert summary["capacity_latents"] > summary["capacity_images"]
    with open(tmp_path / "run" / "eval.csv") as f:
        evals = list(csv.DictReader(f))
    assert [int(r["env_steps"]) for r in evals] == [320, 480]
    assert evals[0]["phase"] == "latents"
    with open(tmp_path / "run" / "train.csv") as f:
        rows = list(csv.DictReader(f))
    phases = [r["phase"] for r in rows]
    assert "images" in phases and "latents" in phases
    assert all(r["critic_loss"] not in ("", "nan") for r in rows)
    assert (
        json.loads((tmp_path / "run" / "summary.json").read_text())["final_eval_return_mean"]
        == summary["final_eval_return_mean"]
    )
    assert os.listdir(tmp_path / "run" / "tb")
    check_per_step_traffic(tmp_path / "run", cfg, obs=([3, 100, 100, 3], "uint8"), action=([1], "float32"))


def run_cli(*args):
    env = dict(os.environ, SEER_JAX_NO_REEXEC="1")
    return subprocess.run(RUN + list(args), capture_output=True, text=True, env=env, timeout=300)


def test_cli_unknown_task_lists_valid_ones():
    r = run_cli("--task", "walker_wakl")
    assert r.returncode == 2
    assert "Unknown task 'walker_wakl'" in r.stderr and "walker_walk" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_budget_too_small_states_minimum(tmp_path):
    r = run_cli("--task", "cartpole_swingup", "--replay-budget-mb", "1", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 2
    assert "at least 132 are needed" in r.stderr and "MB" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("value", ["0", "-5", "2.5", "abc"])
def test_cli_freeze_step_must_be_positive_integer(value):
    r = run_cli("--task", "cartpole_swingup", "--freeze-step", value)
    assert r.returncode == 2
    assert "--freeze-step" in r.stderr and "positive integer" in r.stderr


def test_cli_freeze_step_beyond_run_refused():
    r = run_cli("--task", "cartpole_swingup", "--env-steps", "8000", "--freeze-step", "5000")
    assert r.returncode == 2 and "not inside the run" in r.stderr


def test_cli_seeds_must_be_a_count_or_distinct_seeds():
    r = run_cli("--task", "cartpole_swingup", "--seeds", "0")
    assert r.returncode == 2 and "--seeds N needs N >= 1" in r.stderr
    r = run_cli("--task", "cartpole_swingup", "--seeds", "3", "3")
    assert r.returncode == 2 and "--seeds must be distinct" in r.stderr and "Traceback" not in r.stderr


def test_cli_help_documents_flags():
    r = run_cli("--help")
    assert r.returncode == 0
    for flag in (
        "--task",
        "--replay-budget-mb",
        "--freeze-step",
        "--no-freeze",
        "--num-copies",
        "--eval-every",
        "--preset",
        "--seeds",
        "--deterministic",
    ):
        assert flag in r.stdout


def test_cli_resume_of_missing_folder_is_clear(tmp_path):
    r = run_cli("--resume", str(tmp_path / "nothing"))
    assert r.returncode == 2
    assert "no config.json" in r.stderr and "Traceback" not in r.stderr


def test_cli_interrupted_run_resumes(tmp_path):
    args = [
        "--task",
        "cartpole_swingup",
        "--env-steps",
        "400",
        "--batch-size",
        "8",
        "--init-steps",
        "10",
        "--freeze-step",
        "30",
        "--eval-every",
        "0",
        "--eval-episodes",
        "1",
        "--episode-length",
        "96",
        "--replay-budget-mb",
        "1.5",
        "--checkpoint-every",
        "160",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    env = dict(os.environ, SEER_JAX_NO_REEXEC="1")
    p = subprocess.Popen(RUN + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    ck = tmp_path / "r" / "checkpoints"
    import time

    deadline = time.time() + 240
    while time.time() < deadline and not (ck.exists() and any(d.isdigit() for d in os.listdir(ck))):
        time.sleep(0.2)
    p.kill()  # a hard kill, as a preempted machine would
    p.wait()
    assert not (tmp_path / "r" / "summary.json").exists()
    r = run_cli("--resume", str(tmp_path / "r"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resumed from the checkpoint at agent step" in r.stdout + r.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["resumed"] is True


def test_cli_rendering_unavailable_is_clear(tmp_path):
    env = dict(os.environ, SEER_JAX_NO_REEXEC="1", MUJOCO_GL="osmesa")  # no OSMesa installed
    r = subprocess.run(
        RUN + ["--task", "cartpole_swingup", "--run-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 2
    assert "cannot render" in r.stderr and "libegl1" in r.stderr
    assert "Traceback" not in r.stderr


def test_evaluate_plays_one_episode_per_env_in_lockstep():
    import jax
    import numpy as np

    from seer_jax.envs import DMCPixels
    from seer_jax.envs.atari import AtariEnv
    from seer_jax.train import evaluate

    def sequential_return(env, action):
        ts, total = env.reset(), 0.0
        while not ts.last():
            ts = env.step(action)
            total += ts.reward
        return total

    # Episodes of different lengths (2 and 4 agent steps): each env plays exactly one.
    lengths = [16, 32, 16]
    calls = []

    def act(state, obs, key, explore):
        calls.append(obs.shape)
        assert explore is False
        return np.full((obs.shape[0], 1), 0.5, np.float32)

    envs = [DMCPixels("cartpole_swingup", seed=i, episode_length=n) for i, n in enumerate(lengths)]
    key = jax.random.PRNGKey(0)
    row = evaluate(act, None, envs, key)
    want = [
        sequential_return(DMCPixels("cartpole_swingup", seed=i, episode_length=n), np.full(1, 0.5, np.float32))
        for i, n in enumerate(lengths)
    ]
    assert row["episodes"] == 3
    assert row["return_mean"] == pytest.approx(np.mean(want)) and row["return_std"] == pytest.approx(np.std(want))
    assert calls == [(3, 3, 100, 100, 3)] * 4  # the longest episode's agent steps, one batched act each

    # Atari: whole games (no life-loss terminals), raw scores.
    games = [AtariEnv("pong", seed=s, train=False, max_episode_frames=400) for s in (0, 1)]
    row = evaluate(lambda st, obs, k, e: np.zeros(obs.shape[0], np.int32), None, games, key)
    solo = [sequential_return(AtariEnv("pong", seed=s, train=False, max_episode_frames=400), 0) for s in (0, 1)]
    assert row["return_mean"] == pytest.approx(np.mean(solo))
