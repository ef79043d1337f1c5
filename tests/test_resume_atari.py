"""Exact resume of a tiny Atari run stopped after the freeze (the DMC cases are in
test_resume.py; a file of its own so that the two run on different test workers)."""

from same_run import assert_same_run

from seer_jax.train import TrainConfig, compiled_programs, train


def atari_cfg(run_dir, **kw):
    base = dict(
        task="pong",
        env_steps=160,
        batch_size=4,
        init_steps=20,
        freeze_step=90,
        eval_every=0,
        eval_episodes=1,
        log_every=10,
        replay_budget_mb=2.0,
        run_dir=str(run_dir),
        progress=False,
        migrate_chunk=32,
        checkpoint_every=40,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_atari_resume_is_exact(tmp_path):
    full = train(atari_cfg(tmp_path / "full"))
    programs = compiled_programs()
    assert train(atari_cfg(tmp_path / "cut"), stop_after=110) is None  # after the freeze
    resumed = train(atari_cfg(tmp_path / "cut"))
    assert resumed["final_eval_return_mean"] == full["final_eval_return_mean"]
    assert_same_run(tmp_path / "full", tmp_path / "cut")
    # The resumed run ran the uninterrupted run's compiled programs, not recompiled
    # variants (restored arrays are committed to a device; jit specialises on that).
    assert compiled_programs() == programs and len(programs) >= 4
