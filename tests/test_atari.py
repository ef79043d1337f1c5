"""Atari through envpool, and an end-to-end tiny DER + SEER run on a real game."""

import csv

import numpy as np
import pytest
from transfers import check_per_step_traffic

from seer_jax.envs.atari import ATARI_100K, AtariEnv, atari_games, envpool_id, human_normalized
from seer_jax.settings import ATARI_IMAGE_TRANSITION_BYTES
from seer_jax.train import ConfigError, TrainConfig, train


def test_all_atari_100k_games_and_snake_case_names():
    games = atari_games()
    assert all(g in games for g in ATARI_100K)
    assert envpool_id("crazy_climber") == "CrazyClimber-v5"
    assert envpool_id("jamesbond") == "Jamesbond-v5"
    with pytest.raises(ValueError, match="Unknown Atari game 'road_runer'.*road_runner"):
        envpool_id("road_runer")


def test_train_env_life_loss_terminal_clipped_rewards_and_game_score():
    env = AtariEnv("alien", seed=0, train=True)
    ts = env.reset()
    assert ts.observation.shape == (4, 84, 84, 1) and ts.observation.dtype == np.uint8
    assert (
        not ts.observation[:3].any() and ts.observation[3].any()
    )  # a new game: zero-padded (tests/test_atari_frames.py)
    rng = np.random.default_rng(0)
    lives_lost, clipped = 0, []
    while env.last_game_score is None:
        prev = ts.observation
        ts = env.step(rng.integers(env.num_actions))
        clipped.append(ts.reward)
        assert np.array_equal(ts.observation[:3], prev[1:])
        if ts.last():
            assert ts.discount == 0.0  # life loss is a terminal in training
            lives_lost += 1
            ts = env.reset()  # continues the same game
    assert lives_lost >= 2  # alien has 3 lives
    assert set(np.unique(clipped)) <= {0.0, 1.0}
    assert env.last_game_score >= sum(clipped)  # raw score is unclipped (alien: 10 per dot)


def test_eval_env_plays_whole_games_with_raw_rewards():
    env = AtariEnv("alien", seed=1, train=False)
    env.reset()
    rng = np.random.default_rng(1)
    total = 0.0
    while True:
        ts = env.step(rng.integers(env.num_actions))
        total += ts.reward
        if ts.last():
            break
    assert env.last_game_score == total and total > 10


def test_state_replay_restores_the_emulator_and_reports_progress():
    env = AtariEnv("alien", seed=3, train=True)
    env.reset()
    rng = np.random.default_rng(3)
    for _ in range(700):  # crosses life losses (reset after LAST)
        env.step(rng.integers(env.num_actions))
    state = env.get_state()
    assert (state["history"] == -1).sum() >= 2
    copy, calls = AtariEnv("alien", seed=3, train=True), []
    copy.set_state(state, report=lambda done, total: calls.append((done, total)), report_every=300)
    n = len(state["history"])
    assert calls == [(300, n), (600, n), (n, n)]
    for _ in range(50):  # the same emulator: the same frames and rewards from here on
        a = rng.integers(env.num_actions)
        ts, ts_copy = env.step(a), copy.step(a)
        assert np.array_equal(ts.observation, ts_copy.observation) and ts.reward == ts_copy.reward
    with pytest.raises(RuntimeError, match="freshly built"):
        copy.set_state(state)


def test_human_normalized():
    refs = {"alien": {"random": 227.8, "human": 7127.7}}
    assert human_normalized("alien", 227.8, refs) == 0.0
    assert np.isclose(human_normalized("alien", 7127.7, refs), 1.0)


def test_tiny_der_run_crosses_freeze_and_evaluates(tmp_path, monkeypatch):
    # also checks device residency: the per-step work runs under a transfer guard
    monkeypatch.setenv("SEER_JAX_CHECK_TRANSFERS", "1")
    cfg = TrainConfig(
        task="alien",
        env_steps=260,
        batch_size=8,
        init_steps=60,
        freeze_step=140,
        eval_every=200,
        eval_episodes=1,
        log_every=20,
        replay_budget_mb=0.5,
        run_dir=str(tmp_path / "run"),
        progress=False,
        migrate_chunk=32,
    )
    summary = train(cfg)
    # Each frame is stored once: the image capacity is the budget over one frame's bytes.
    assert summary["capacity_images"] == int(0.5 * 2**20) // ATARI_IMAGE_TRANSITION_BYTES
    assert summary["capacity_latents"] > summary["capacity_images"]
    with open(tmp_path / "run" / "eval.csv") as f:
        evals = list(csv.DictReader(f))
    assert [int(r["env_steps"]) for r in evals] == [200, 260]
    assert all(r["phase"] == "latents" for r in evals)
    assert "human_normalized" in evals[0]
    with open(tmp_path / "run" / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"images", "latents"} <= {r["phase"] for r in rows}
    # the game score is a column from the first row on, before any game has ended
    assert "game_score" in rows[0] and rows[0]["game_score"] == "nan"
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    check_per_step_traffic(tmp_path / "run", cfg, obs=([4, 84, 84, 1], "uint8"), action=([], "int32"))


def test_default_freeze_step_scaled_for_short_runs_and_explicit_one_refused():
    cfg = TrainConfig(task="pong", env_steps=1000).resolved()
    assert cfg.freeze_step == 500
    with pytest.raises(ConfigError, match="not inside the run"):
        TrainConfig(task="pong", env_steps=1000, freeze_step=5000).resolved()


def test_runs_on_games_with_different_action_sets_in_one_process(tmp_path):
    # train() reuses the jitted functions of an equal agent from an earlier run in the
    # process; DER agents of games with different action sets have the same action spec
    # but are not equal, so each run's network must have its own game's outputs.
    import orbax.checkpoint as ocp

    from seer_jax.checkpoint import RunCheckpointer

    for game in ("alien", "amidar", "alien"):  # 18, 10, 18 actions
        run_dir = tmp_path / f"{game}-{len(list(tmp_path.iterdir()))}"
        cfg = TrainConfig(
            task=game,
            env_steps=40,
            batch_size=8,
            init_steps=20,
            freeze_step=30,
            eval_every=40,
            eval_episodes=1,
            log_every=10,
            replay_budget_mb=0.5,
            run_dir=str(run_dir),
            progress=False,
        )
        assert train(cfg, stop_after=25) is None
        checkpointer = RunCheckpointer(str(run_dir))
        (step,) = checkpointer.steps()
        arrays = checkpointer.manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore()))
        num_actions = AtariEnv(game, seed=0).num_actions
        assert arrays["arrays"]["agent"]["params"]["heads"]["fc_z_a"]["b_mu"].shape == (num_actions * 51,)


def test_keep_best_keeps_the_best_evaluations_agent_and_statistics_evaluate_both(tmp_path):
    """--keep-best writes the agent of the best periodic evaluation; the reproduction's
    statistics play fresh games with it and with the final agent (final_N, best_N) beside
    the run's own final evaluation (final_10)."""
    import json
    import os
    import sys

    import jax
    import orbax.checkpoint as ocp

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from experiments.common import game_statistics
    from seer_jax.checkpoint import RunCheckpointer, _leaf_name
    from seer_jax.train import load_best_agent

    run_dir = tmp_path / "run"
    cfg = TrainConfig(task="pong", env_steps=300, batch_size=8, init_steps=40, freeze_step=150, eval_every=100,
                      eval_episodes=1, log_every=20, replay_budget_mb=0.5, run_dir=str(run_dir), progress=False,
                      keep_best=True, checkpoint_every=100, keep_checkpoints=5)  # fmt: skip
    summary = train(cfg)
    with open(run_dir / "eval.csv") as f:
        evals = [(int(r["env_steps"]), float(r["return_mean"])) for r in csv.DictReader(f)]
    best_step, best_return = max(evals, key=lambda e: (e[1], -e[0]))  # the first of the best
    record = json.loads((run_dir / "best_agent.json").read_text())
    assert (record["env_steps"], record["return_mean"]) == (best_step, best_return)
    assert record["phase"] == ("latents" if best_step > 150 else "images")
    # The kept agent is the one the checkpoint at that step holds.
    agent = cfg.resolved().setting.make_agent(cfg.resolved(), AtariEnv("pong"))
    kept, _ = load_best_agent(str(run_dir), agent, jax.random.PRNGKey(0))
    ck = RunCheckpointer(str(run_dir))
    saved = ck.manager.restore(best_step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore()))["arrays"]
    stored = {_leaf_name(p): x for p, x in jax.tree_util.tree_leaves_with_path(saved["agent"])}
    for p, x in jax.tree_util.tree_leaves_with_path(kept):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(stored[_leaf_name(p)]))
    stats = game_statistics(str(run_dir), games=2, chunk=2)
    assert stats["final_10"] == summary["final_eval_return_mean"]
    assert {"final_2", "best_2"} <= set(stats) and stats["best_agent"] == record
    assert all(-21 <= stats[k] <= 21 for k in ("final_2", "best_2"))  # pong scores
    assert json.loads((run_dir / "statistics.json").read_text()) == stats  # kept: computed once
