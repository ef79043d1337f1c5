"""Many seeds in one process: a leading seed axis, ``vmap`` over it, sharding across devices.

N independent agents train as one program: their agent states and replay buffers are
stacked along a leading axis of size N (:func:`stack`), and the per-step functions --
store-and-act (:func:`make_observe`), sample-and-update (:func:`make_learn`) and SEER's
migration (:func:`migrate`) -- are ``jax.vmap``-ed over it. Seed ``i`` of the stack
computes what a run of that seed alone computes (same keys, same data; equal to float
precision on CPU, ``tests/test_seeds.py``).

Where several devices exist, :func:`seed_mesh` and :func:`shard` place the seed axis
across them with ``jax.sharding.NamedSharding``; the jitted functions then run each
device's seeds on that device with no change to the code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from seer_jax import replay as replay_lib

PyTree = Any
AXIS = "seeds"


def stack(trees: Sequence[PyTree]) -> PyTree:
    """Stack equally-shaped pytrees along a new leading seed axis (leaves ``(N, ...)``)."""
    if not trees:
        raise ValueError("stack needs at least one tree.")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def take(tree: PyTree, i: int) -> PyTree:
    """Seed ``i``'s slice of a stacked pytree (leaves ``(N, ...)`` -> ``(...)``)."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def init(replay: replay_lib.Replay, n: int) -> replay_lib.ReplayState:
    """N empty buffers stacked (leaves ``(N, capacity, ...)``), allocated once."""
    return jax.jit(jax.vmap(lambda _: replay.init()), static_argnums=())(jnp.arange(n))


def seed_mesh(n_seeds: int, devices: Sequence[jax.Device] | None = None) -> Mesh | None:
    """A 1-D mesh named ``"seeds"`` over as many devices as evenly divide ``n_seeds``
    (all of them when they do); ``None`` with a single device or a single seed."""
    devices = list(jax.devices() if devices is None else devices)
    n_dev = max(d for d in range(1, min(len(devices), n_seeds) + 1) if n_seeds % d == 0)
    if n_dev == 1:
        return None
    return Mesh(np.asarray(devices[:n_dev]), (AXIS,))


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding of stacked arrays on ``mesh``: the leading seed axis split across it."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def shard(tree: PyTree, mesh: Mesh | None) -> PyTree:
    """Place a stacked pytree with its seed axis split across ``mesh`` (each device holds
    ``N / devices`` seeds); the identity when ``mesh`` is None."""
    if mesh is None:
        return tree
    return jax.device_put(tree, seed_sharding(mesh))


def make_learn(
    replay: replay_lib.Replay, update_fn: Callable, batch_size: int, n_step: int, gamma: float | None
) -> Callable:
    """``learn(agent_states, replay_states, keys, step)`` for N seeds at once: each seed
    samples its own batch and updates with ``fold_in(keys[i], step)``, as
    ``seer_jax.steps.make_learn`` does for one (agent states donated)."""

    def learn(agent_state, replay_state, key, step):
        k_sample, k_upd = jax.random.split(jax.random.fold_in(key, step))
        batch = replay.sample(replay_state, k_sample, batch_size, n_step, gamma)
        return update_fn(agent_state, batch, k_upd)

    return jax.jit(jax.vmap(learn, in_axes=(0, 0, 0, None)), donate_argnums=0)


def make_observe(replay: replay_lib.Replay, agent: Any, frozen: bool) -> Callable:
    """``observe(replay_states, agent_states, obs, action, reward, discount, first, count,
    keys, write)`` for N seeds at once (every argument with a leading seed axis; replay
    states donated). Seeds whose ``write`` is False keep their buffer unchanged (their
    environment produced no new observation this call); every seed's exploration action
    is returned."""

    def observe(replay_state, agent_state, obs, action, reward, discount, first, count, key, write):
        item, next_action = agent.observe(agent_state, obs, jax.random.fold_in(key, count), frozen)
        return replay.add(replay_state, item, action, reward, discount, first, write=write), next_action

    return jax.jit(jax.vmap(observe), donate_argnums=0)


def migrate(
    old: replay_lib.Replay,
    old_states: replay_lib.ReplayState,
    new: replay_lib.Replay,
    encode_fn: Callable[[Any, PyTree, jax.Array], PyTree],
    aux: Any,
    keys: jax.Array,
    chunk_size: int = 256,
) -> replay_lib.ReplayState:
    """SEER's migration for N stacked buffers: :func:`seer_jax.replay.migrate` per seed,
    with ``encode_fn(aux_i, stacks, key)`` (``aux``: e.g. the stacked frozen agent
    states) and chunk keys ``fold_in(keys[i], chunk)``. Buffers may hold different
    numbers of observations."""
    fill = jax.jit(
        jax.vmap(replay_lib.migrate_chunk_fn(old, new, encode_fn, chunk_size), in_axes=(0, 0, 0, None, 0)),
        donate_argnums=0,
    )
    new_states = init(new, int(old_states.size.shape[0]))
    keep = min(int(np.max(np.asarray(old_states.size))), new.capacity)
    for i, r0 in enumerate(range(0, keep, chunk_size)):
        chunk_keys = jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(keys)
        new_states = fill(new_states, old_states, aux, jnp.asarray(r0, jnp.int32), chunk_keys)
    return jax.vmap(lambda s, size: replay_lib.migrate_finish(new, s, size))(new_states, old_states.size)
