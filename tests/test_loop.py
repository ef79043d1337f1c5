"""The loop's pieces called on their own (docs/architecture.md): build a run, take agent
steps, freeze, evaluate, checkpoint and restore, without `train()`."""

import jax
import numpy as np
from same_run import dmc_cfg

from seer_jax import train as loop


def test_loop_pieces_run_alone_and_the_freeze_swaps_the_phase(tmp_path):
    cfg = dmc_cfg(tmp_path / "run", freeze_step=25, eval_episodes=1).resolved()
    run = loop.build_run(cfg)
    state = loop.fresh_state(run)
    loop.open_logs(run, state)
    assert state.step == 0 and state.phase.name == "images"
    assert int(state.replay_state.size) == 1  # the first observation is stored
    for _ in range(12):
        state = loop.agent_step(run, state)
    assert state.step == 12 and state.metrics is not None  # updates start after init_steps (10)
    assert int(state.replay_state.size) == 14  # the first, 12 steps, the reset after the 12-step episode
    images = state.phase
    state.step = 25
    state = loop.freeze(run, state)
    assert state.phase.name == "latents" and state.phase is not images
    assert state.phase.replay.capacity > images.replay.capacity  # latents take less room
    assert int(state.replay_state.size) == 14  # every stored observation migrated
    state = loop.agent_step(run, state)
    assert all(np.isfinite(float(v)) for v in state.metrics.values())
    row = loop._evaluate_seed(run, state, run.seeds[0], 26 * 8)
    assert row["episodes"] == 1 and np.isfinite(row["return_mean"])
    loop.save_checkpoint(run, state)
    loop._close(run)

    again = loop.build_run(cfg)
    restored = loop.restore_state(again)
    assert restored is not None and restored.resumed and restored.step == state.step
    assert restored.phase.name == "latents" and int(restored.replay_state.size) == 15
    for a, b in zip(jax.tree_util.tree_leaves(restored.agent_state), jax.tree_util.tree_leaves(state.agent_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for r in again.seeds:
        r.env.close()
