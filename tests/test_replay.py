"""Replay buffer: capacity from a budget, wrap-around, stacks never crossing an episode
boundary or the write head, migration order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seer_jax import replay as replay_lib

FRAME = jax.ShapeDtypeStruct((2,), jnp.int32)  # [episode id, global write counter]
ACTION = jax.ShapeDtypeStruct((1,), jnp.float32)


def fill(replay, episode_lengths):
    """Write episodes of the given lengths (in transitions); frame = [episode, counter]."""
    add = jax.jit(replay.add)
    state = replay.init()
    counter = 0
    for ep, length in enumerate(episode_lengths):
        for t in range(length + 1):
            first = t == 0
            state = add(
                state,
                jnp.array([ep, counter], jnp.int32),
                jnp.array([counter], jnp.float32),
                float(counter),
                1.0,
                first,
            )
            counter += 1
    return state, counter


def test_capacity_from_budget():
    per_slot = replay_lib.bytes_per_slot(FRAME, ACTION)
    assert per_slot == 8 + 4 + 4 + 4 + 1
    assert replay_lib.capacity_for_budget(per_slot * 100 + 5, FRAME, ACTION) == 100
    assert replay_lib.capacity_for_budget(per_slot * 100, FRAME, ACTION, max_capacity=40) == 40
    dmc_frame = jax.ShapeDtypeStruct((100, 100, 3), jnp.uint8)
    assert replay_lib.bytes_per_slot(dmc_frame, ACTION) == 30000 + 13


def test_budget_too_small_states_minimum():
    with pytest.raises(replay_lib.ReplayBudgetError, match=r"at least 132 are needed.*at least [0-9.]+ MB"):
        replay_lib.capacity_for_budget(1000, FRAME, ACTION, min_capacity=132)


def test_wrap_around_overwrites_oldest():
    replay = replay_lib.Replay(FRAME, ACTION, capacity=10, stack=3)
    state, n = fill(replay, [6, 7])  # 15 slots written into 10
    assert int(state.size) == 10
    assert int(state.cursor) == n % 10
    counters = np.asarray(state.items[:, 1])
    # The ring holds exactly the newest 10 writes, each at counter % capacity.
    assert sorted(counters.tolist()) == list(range(n - 10, n))
    assert all(c % 10 == i for i, c in enumerate(counters))
    assert int(replay.oldest(state)) == (n - 10) % 10


@pytest.mark.parametrize("jit", [False, True])
def test_samples_never_cross_episode_or_write_head(jit):
    replay = replay_lib.Replay(FRAME, ACTION, capacity=23, stack=3)
    state, n = fill(replay, [4, 1, 9, 2, 6, 3, 5])
    oldest_counter = n - int(state.size)
    sample = jax.jit(replay.sample, static_argnums=2) if jit else replay.sample
    seen = set()
    for i in range(30):
        b = sample(state, jax.random.PRNGKey(i), 16)
        obs, nxt = np.asarray(b["obs"]), np.asarray(b["next_obs"])
        action = np.asarray(b["action"])[:, 0]
        for o, x, a in zip(obs, nxt, action):
            # next obs is the newest frame; the action stored with it is its counter
            assert x[-1, 1] == a
            seen.add(int(a))
            for stack in (o, x):
                assert np.all(stack[:, 0] == stack[-1, 0]), "stack crosses an episode boundary"
                assert np.all(stack[:, 1] >= oldest_counter), "stack reaches past the write head"
                assert np.all(np.diff(stack[:, 1]) >= 0) and np.all(np.diff(stack[:, 1]) <= 1)
            np.testing.assert_array_equal(x[:-1], o[1:])
            assert o[-1, 1] == x[-1, 1] - 1
    # every valid transition is reachable
    valid = int(replay.num_valid(state))
    assert len(seen) == valid


def test_sample_jit_matches_eager():
    replay = replay_lib.Replay(FRAME, ACTION, capacity=30, stack=3)
    state, _ = fill(replay, [5, 8, 3])
    key = jax.random.PRNGKey(3)
    eager = replay.sample(state, key, 8)
    jitted = jax.jit(replay.sample, static_argnums=2)(state, key, 8)
    jax.tree_util.tree_map(np.testing.assert_array_equal, eager, jitted)


def test_add_donated_in_place_keeps_values():
    replay = replay_lib.Replay(FRAME, ACTION, capacity=8, stack=1)
    add = jax.jit(replay.add, donate_argnums=0)
    state = replay.init()
    for i in range(12):
        state = add(state, jnp.array([0, i], jnp.int32), jnp.zeros(1), 0.0, 1.0, i == 0)
    assert sorted(np.asarray(state.items[:, 1]).tolist()) == list(range(4, 12))


def test_migrate_head_relative_order_and_incomplete_stacks():
    old = replay_lib.Replay(FRAME, ACTION, capacity=12, stack=3)
    state, n = fill(old, [5, 9])  # 16 writes: wrapped, oldest episode's start overwritten
    new_spec = {"sum": jax.ShapeDtypeStruct((), jnp.int32), "newest": jax.ShapeDtypeStruct((), jnp.int32)}
    new = replay_lib.Replay(new_spec, ACTION, capacity=40, stack=1)

    def encode(stacks, key):  # stacks (N, 3, 2)
        return {"sum": stacks[:, :, 1].sum(-1), "newest": stacks[:, -1, 1]}

    migrated = replay_lib.migrate(old, state, new, encode, jax.random.PRNGKey(0), chunk_size=5)
    assert int(migrated.size) == 12 and int(migrated.cursor) == 12
    newest = np.asarray(migrated.items["newest"][:12])
    np.testing.assert_array_equal(newest, np.arange(n - 12, n))  # oldest first
    # Actions/rewards moved with their observations.
    np.testing.assert_array_equal(np.asarray(migrated.action[:12, 0]), newest.astype(np.float32))
    first = np.asarray(migrated.first[:12])
    # The first `stack` kept observations of a wrapped buffer are never sampled.
    assert first[:3].all()
    # Episode 2 starts at counter 6 -> position 6 - (n - 12) = 2 (already first); later ones follow.
    for pos in range(3, 12):
        c = newest[pos]
        expected_stack = [max(c - 2, 6), max(c - 1, 6), c]
        assert migrated.items["sum"][pos] == sum(expected_stack)
        assert not first[pos]
    # Sampling the latent buffer only yields transitions inside one episode.
    b = new.sample(migrated, jax.random.PRNGKey(1), 64)
    assert np.all(np.asarray(b["next_obs"]["newest"]) - np.asarray(b["obs"]["newest"]) == 1)
    assert np.all(np.asarray(b["obs"]["newest"]) >= n - 12 + 2)


def test_n_step_returns_cut_at_terminal_episode_end_and_write_head():
    replay = replay_lib.Replay(FRAME, ACTION, capacity=40, stack=2)
    add = jax.jit(replay.add)
    state = replay.init()
    # episode A: 5 transitions, the last one terminal (discount 0); episode B: 4
    # transitions still running (the write head is after its last one).
    rewards, counter = {}, 0
    for ep, (length, terminal) in enumerate([(5, True), (4, False)]):
        for t in range(length + 1):
            r = float(counter) if t else 0.0
            d = 0.0 if (terminal and t == length) else 1.0
            state = add(state, jnp.array([ep, counter], jnp.int32), jnp.zeros(1), r, d, t == 0)
            rewards[counter] = r
            counter += 1
    gamma, n = 0.5, 3
    slots = jnp.arange(counter)
    valid = np.asarray(replay.is_valid(state, slots))
    b = replay.gather(state, slots, n_step=n, gamma=gamma)
    ends = {0: 5, 1: 10}  # last slot of each episode
    for j in np.nonzero(valid)[0]:
        ep = 0 if j <= 5 else 1
        m = min(n, ends[ep] - j + 1)
        expected = sum(gamma**k * rewards[j + k] for k in range(m))
        assert np.isclose(float(b["reward"][j]), expected), j
        terminal_hit = ep == 0 and j + m - 1 == 5
        assert np.isclose(float(b["discount"][j]), 0.0 if terminal_hit else gamma**m), j
        assert int(b["next_obs"][j, -1, 1]) == j + m - 1
        assert int(b["obs"][j, -1, 1]) == j - 1
    # one-step with gamma equals the plain one-step transition (times gamma)
    one = replay.gather(state, slots, n_step=1, gamma=gamma)
    plain = replay.gather(state, slots)
    np.testing.assert_allclose(np.asarray(one["discount"])[valid], gamma * np.asarray(plain["discount"])[valid])
    np.testing.assert_array_equal(np.asarray(one["next_obs"])[valid], np.asarray(plain["next_obs"])[valid])


@pytest.mark.parametrize("zero_pad", [False, True])
def test_stacks_before_an_episode_start_repeat_its_first_item_or_hold_zeros(zero_pad):
    """DMC (CURL's frame stack) repeats an episode's first frame; Atari (the released SEER
    code's replay memory) pads with zeros, in sampled batches (one-step and n-step) and in
    the stacks the freeze migrates."""
    replay = replay_lib.Replay(FRAME, ACTION, capacity=32, stack=4, zero_pad=zero_pad)
    state, _ = fill(replay, [5, 6])  # episode 0: slots 0-5, episode 1: slots 6-12
    pad = [0, 0] if zero_pad else [1, 6]
    # The first transition of episode 1: obs = stack ending at slot 6, next_obs at 7.
    one = replay.gather(state, jnp.array([7]))
    np.testing.assert_array_equal(one["obs"][0], [pad, pad, pad, [1, 6]])
    np.testing.assert_array_equal(one["next_obs"][0], [pad, pad, [1, 6], [1, 7]])
    n3 = replay.gather(state, jnp.array([7]), n_step=3, gamma=0.9)
    np.testing.assert_array_equal(n3["obs"][0], [pad, pad, pad, [1, 6]])
    np.testing.assert_array_equal(n3["next_obs"][0], [[1, 6], [1, 7], [1, 8], [1, 9]])
    migrated = replay.ordered_stacks(state, jnp.array([7]))  # head-relative 7 = slot 7
    np.testing.assert_array_equal(migrated[0], [pad, pad, [1, 6], [1, 7]])
    deep = replay.gather(state, jnp.array([10]))  # far enough in: no padding either way
    np.testing.assert_array_equal(deep["obs"][0], [[1, 6], [1, 7], [1, 8], [1, 9]])
