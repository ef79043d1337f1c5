"""Device residency: per agent step only the new observation (with the transition that led
to it) goes to the device and only the action comes back; everything else stays there.

The runs below execute the training loop's per-step work under
``jax.transfer_guard("disallow")`` (``SEER_JAX_CHECK_TRANSFERS=1``), so any implicit
transfer raises, across the freeze; the explicit transfers are recorded and checked."""

import json

import pytest

from seer_jax.train import TrainConfig, train

DMC = dict(task="cartpole_swingup", env_steps=8 * 40, batch_size=8, init_steps=10, freeze_step=20,
           episode_length=8 * 12, replay_budget_mb=1.5, migrate_chunk=16)  # fmt: skip
ATARI = dict(task="pong", env_steps=120, batch_size=8, init_steps=40, freeze_step=70, replay_budget_mb=0.5,
             migrate_chunk=32)  # fmt: skip


@pytest.mark.parametrize(
    "config, obs, action",
    [
        (DMC, ([3, 100, 100, 3], "uint8"), ([1], "float32")),
        (ATARI, ([4, 84, 84, 1], "uint8"), ([], "int32")),
    ],
    ids=["dmc", "atari"],
)
def test_per_step_traffic_is_the_observation_up_and_the_action_down(tmp_path, monkeypatch, config, obs, action):
    monkeypatch.setenv("SEER_JAX_CHECK_TRANSFERS", "1")
    cfg = TrainConfig(**config, eval_every=0, eval_episodes=1, log_every=10, run_dir=str(tmp_path), progress=False)
    summary = train(cfg)  # would raise on any implicit transfer in the per-step work
    assert summary["capacity_latents"] is not None  # it crossed the freeze
    with open(tmp_path / "transfers.json") as f:
        records = json.load(f)
    transition = [list(obs), list(action), [[], "float32"], [[], "float32"], [[], "bool"], [[], "int32"]]
    ups = [r["arrays"] for r in records if r["dir"] == "up"]
    downs = [r["arrays"] for r in records if r["dir"] == "down"]
    observations = [u for u in ups if u == transition]
    step_counters = [u for u in ups if u == [[[], "int32"]]]
    assert len(observations) + len(step_counters) == len(ups), "an unexpected upload"
    agent_steps = cfg.resolved().agent_steps
    # one observation per agent step plus the first of each episode
    assert agent_steps < len(observations) <= agent_steps + 1 + agent_steps // 10
    # one step counter per update (for its key); no batch, parameter or buffer crosses
    assert 0 < len(step_counters) <= agent_steps
    # the policy's action comes back once per agent step after the random warm-up (DMC)
    # or from the first step (Atari, where the noisy network acts during warm-up)
    assert all(d == [list(action)] for d in downs)
    assert agent_steps - cfg.resolved().init_steps <= len(downs) <= agent_steps
