"""DeepMind Control from pixels as dm_env environments."""

import dm_env
import numpy as np
import pytest

from seer_jax.envs import DMCPixels, default_action_repeat, dmc_task_names

PLANET = ["cartpole_swingup", "reacher_easy", "cheetah_run", "finger_spin", "ball_in_cup_catch", "walker_walk"]


def test_planet_tasks_are_known_with_their_action_repeat():
    names = dmc_task_names()
    for t in PLANET:
        assert t in names
    assert [default_action_repeat(t) for t in PLANET] == [8, 4, 4, 2, 4, 2]
    assert "quadruped_walk" in names and "point_mass_easy" in names


def test_unknown_task_lists_valid_ones():
    with pytest.raises(ValueError) as e:
        DMCPixels("walker_wakl")
    msg = str(e.value)
    assert "Unknown task 'walker_wakl'" in msg and "walker_walk" in msg and "cartpole_swingup" in msg


def test_pixels_stack_and_action_repeat():
    env = DMCPixels("cartpole_swingup", seed=1, episode_length=80)
    assert isinstance(env, dm_env.Environment)
    assert env.action_repeat == 8
    spec = env.observation_spec()
    assert spec.shape == (3, 100, 100, 3) and spec.dtype == np.uint8
    ts = env.reset()
    assert ts.first() and ts.observation.shape == (3, 100, 100, 3)
    # On reset the stack repeats the first frame.
    assert np.array_equal(ts.observation[0], ts.observation[2])
    steps, prev = 0, ts.observation
    while True:
        ts = env.step(np.ones(env.action_spec().shape, np.float32))
        steps += 1
        # Frames shift by one each agent step.
        assert np.array_equal(ts.observation[:2], prev[1:])
        prev = ts.observation
        if ts.last():
            break
    assert steps == 10  # 80 env steps / action repeat 8
    assert ts.discount == 1.0  # time limit: the critic bootstraps
    assert prev[-1].std() > 0  # a real rendered image


def test_quadruped_uses_tracking_camera():
    env = DMCPixels("quadruped_walk", seed=0)
    assert env.camera_id == 2
    assert DMCPixels("walker_walk", seed=0).camera_id == 0


def test_same_seed_same_frames():
    a, b = DMCPixels("walker_walk", seed=3), DMCPixels("walker_walk", seed=3)
    np.testing.assert_array_equal(a.reset().observation, b.reset().observation)


@pytest.mark.parametrize("task", ["walker_walk", "quadruped_walk"])
def test_frames_are_the_suites_standard_renders(task):
    # DMCPixels sizes MuJoCo's offscreen buffer to its frames; the pixels must stay those
    # the suite renders with its default buffer.
    from dm_control import suite

    env = DMCPixels(task, seed=4)
    domain, name = task.split("_", 1)
    ref = suite.load(domain, name, task_kwargs={"random": 4})
    assert ref.physics.model.vis.global_.offwidth == 640
    env.reset()
    ref.reset()
    np.testing.assert_array_equal(env._render(), ref.physics.render(height=100, width=100, camera_id=env.camera_id))
    action = np.full(env.action_spec().shape, 0.3, np.float32)
    for _ in range(3):
        ts = env.step(action)
        for _ in range(env.action_repeat):
            ref.step(action)
    np.testing.assert_array_equal(
        ts.observation[-1], ref.physics.render(height=100, width=100, camera_id=env.camera_id)
    )
