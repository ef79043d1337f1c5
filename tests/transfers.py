"""Device residency check shared by the end-to-end tests: per agent step only the new
observation (with the transition that led to it) goes to the device and only the action
comes back.

The runs execute the training loop's per-step work under ``jax.transfer_guard("disallow")``
(``SEER_JAX_CHECK_TRANSFERS=1``), so any implicit transfer raises, across the freeze; the
explicit transfers are recorded in ``RUN_DIR/transfers.json`` and checked here."""

import json


def check_per_step_traffic(run_dir, cfg, obs, action):
    """``obs`` and ``action``: ``([shape], dtype)`` of one observation and one action."""
    with open(run_dir / "transfers.json") as f:
        records = json.load(f)
    transition = [list(obs), list(action), [[], "float32"], [[], "float32"], [[], "bool"], [[], "int32"]]
    ups = [r["arrays"] for r in records if r["dir"] == "up"]
    downs = [r["arrays"] for r in records if r["dir"] == "down"]
    observations = [u for u in ups if u == transition]
    step_counters = [u for u in ups if u == [[[], "int32"]]]
    assert len(observations) + len(step_counters) == len(ups), "an unexpected upload"
    resolved = cfg.resolved()
    agent_steps = resolved.agent_steps
    # one observation per agent step plus the first of each episode
    assert agent_steps < len(observations) <= agent_steps + 1 + agent_steps // 10
    # one step counter per update (for its key); no batch, parameter or buffer crosses
    assert 0 < len(step_counters) <= agent_steps
    # the policy's action comes back once per agent step after the random warm-up (DMC)
    # or from the first step (Atari, where the noisy network acts during warm-up)
    assert all(d == [list(action)] for d in downs)
    assert agent_steps - resolved.init_steps <= len(downs) <= agent_steps
