"""The loop's jitted per-step functions and the seed axis they run on.

Owns: :func:`make_learn` (sample + update) and :func:`make_observe` (store + act) for one
agent; :class:`Phase`, the record of everything that changes at SEER's freeze (the buffer
and those two functions), built once per phase; :class:`SeedAxis`, which runs N seeds as
one program (N = 1 is its plain case); and the cache that lets a later run in the same
process reuse compiled functions.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seer_jax import replay as replay_lib
from seer_jax import seeds as seeds_lib


def make_learn(replay: replay_lib.Replay, update_fn, batch_size: int, n_step: int, gamma):
    """One jitted training step ``learn(agent_state, replay_state, key, step)``: sample a
    batch from the buffer and update the agent with ``fold_in(key, step)`` (agent state
    donated; ``step`` a device scalar, so nothing crosses from the host)."""

    def learn(agent_state, replay_state, key, step):
        k_sample, k_upd = jax.random.split(jax.random.fold_in(key, step))
        batch = replay.sample(replay_state, k_sample, batch_size, n_step, gamma)
        return update_fn(agent_state, batch, k_upd)

    return jax.jit(learn, donate_argnums=0)


def make_observe(replay: replay_lib.Replay, agent, frozen: bool):
    """One jitted step per observation ``observe(replay_state, agent_state, obs, action,
    reward, discount, first, count, key)``: compute what to store (frame or latent) and
    the exploration action (with ``fold_in(key, count)``), and write the slot (replay
    state donated)."""

    def observe(replay_state, agent_state, obs, action, reward, discount, first, count, key):
        item, next_action = agent.observe(agent_state, obs, jax.random.fold_in(key, count), frozen)
        return replay.add(replay_state, item, action, reward, discount, first), next_action

    return jax.jit(observe, donate_argnums=0)


# The jitted per-step functions of recent runs, reused by a later `train` call in the same
# process whose agent and buffer are the same (a sweep, a resumed run, the test suite):
# jax keeps compiled programs per function object, so building new closures for every run
# would trace and lower them again. Keys are the agents' and buffers' full descriptions.
_JIT_CACHE: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
_JIT_CACHE_SIZE = 16


def cached_jit(key: tuple, build: Callable[[], Any]) -> Any:
    """``build()``, or what it returned for the same ``key`` in a recent run."""
    if key in _JIT_CACHE:
        _JIT_CACHE.move_to_end(key)
        return _JIT_CACHE[key]
    value = _JIT_CACHE[key] = build()
    while len(_JIT_CACHE) > _JIT_CACHE_SIZE:
        _JIT_CACHE.popitem(last=False)
    return value


def compiled_programs() -> dict[tuple, int]:
    """How many compiled programs jit holds for each per-step function kept for reuse
    (a resumed run must add none: it runs the uninterrupted run's programs)."""
    return {k: f._cache_size() for k, f in _JIT_CACHE.items() if hasattr(f, "_cache_size")}


def agent_key(agent) -> tuple:
    """What makes two agents compute different things: the class, the specs, and every
    setting or network the agent holds (the config, and attributes such as ``Der``'s number
    of actions, which its action spec does not show). Agents with equal keys share jits."""
    import flax.linen as nn

    held = tuple(
        (name, repr(value))
        for name, value in sorted(vars(agent).items())
        if isinstance(value, (bool, int, float, str, nn.Module)) or dataclasses.is_dataclass(value)
    )
    return ("agent", type(agent), repr(agent.action_spec), repr(agent.obs_shape), held)


@dataclasses.dataclass(frozen=True)
class Phase:
    """What changes at the freeze, chosen once per phase: the buffer and the jitted
    ``learn`` / ``observe`` steps that read and write it."""

    name: str  # "images" (before the freeze) or "latents" (after it)
    replay: replay_lib.Replay
    learn: Callable
    observe: Callable


@jax.jit
def _select(mask, a, b):
    """Per seed: ``a`` where ``mask``, else ``b`` (mask broadcast over trailing axes)."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


class SeedAxis:
    """N seeds trained as one program: state stacked along a leading seed axis, the
    per-step functions vmapped over it and the axis sharded across the devices there are
    (:mod:`seer_jax.seeds`). The loop only calls these methods, so one seed and many run
    the same loop.

    N = 1 is the axis's plain case: state without the leading axis and the unbatched
    functions, which compile to the programs a single agent has always run (a vmap over
    an axis of one compiles different programs, equal only to float precision).
    """

    def __init__(self, n: int, devices: Sequence[jax.Device] | None = None):
        self.n = n
        self.many = n > 1
        self.mesh = seeds_lib.seed_mesh(n, devices) if self.many else None
        self.sharding = None if self.mesh is None else seeds_lib.seed_sharding(self.mesh)

    def place(self, tree: Any) -> Any:
        """Put loop state where it lives: the seed axis's devices, or the default device.
        Every state array is committed to its device, whether built fresh or restored
        from a checkpoint (restored arrays come back committed): jit compiles a separate
        program per commitment, and a resumed run must run the very programs the
        uninterrupted run runs, to compute the same bits."""
        return seeds_lib.shard(tree, self.mesh) if self.mesh is not None else jax.device_put(tree, jax.devices()[0])

    def stack(self, trees: list) -> Any:
        """One tree per seed -> the axis's state, placed."""
        return self.place(seeds_lib.stack(trees) if self.many else trees[0])

    def take(self, tree: Any, i: int) -> Any:
        """Seed ``i``'s part of the axis's state."""
        return seeds_lib.take(tree, i) if self.many else tree

    def init_replay(self, replay: replay_lib.Replay) -> replay_lib.ReplayState:
        return self.place(seeds_lib.init(replay, self.n) if self.many else replay.init())

    def make_phase(self, name: str, agent: Any, replay: replay_lib.Replay, batch_size: int) -> Phase:
        """The phase's jitted steps (reused from a recent run with the same agent and buffer)."""
        update = agent.update if name == "images" else agent.update_latent
        make_learn_fn, make_observe_fn = (
            (seeds_lib.make_learn, seeds_lib.make_observe) if self.many else (make_learn, make_observe)
        )
        # The methods' functions are in the keys: a method replaced on the class is traced anew.
        key = (agent_key(agent), name, repr(replay), batch_size, self.many)
        learn = cached_jit(
            ("learn", update.__func__, *key),
            lambda: make_learn_fn(replay, update, batch_size, agent.n_step, agent.gamma),
        )
        observe = cached_jit(
            ("observe", type(agent).observe, *key), lambda: make_observe_fn(replay, agent, frozen=name == "latents")
        )
        return Phase(name, replay, learn, observe)

    def freeze_and_migrate(
        self, agent: Any, agent_state: Any, old: Phase, new: Phase, replay_state: Any, keys: Any, chunk: int
    ) -> tuple[Any, Any]:
        """SEER's freeze on every seed: the frozen agent states and the buffers migrated
        from ``old``'s frames to ``new``'s latents."""
        if self.many:
            agent_state = jax.vmap(agent.freeze)(agent_state)
            migrated = seeds_lib.migrate(old.replay, replay_state, new.replay, agent.encode, agent_state, keys, chunk)
            return agent_state, self.place(migrated)
        frozen = agent.freeze(agent_state)
        migrated = replay_lib.migrate(
            old.replay, replay_state, new.replay, lambda stacks, k: agent.encode(frozen, stacks, k), keys, chunk
        )
        return frozen, migrated

    def select(self, traffic: Any, mask: np.ndarray, a: Any, b: Any) -> Any:
        """Per seed ``a`` where ``mask`` (uploaded through ``traffic``), else ``b``; with
        one seed the mask is all True and ``a`` is returned."""
        return _select(traffic.put(np.asarray(mask)), a, b) if self.many else a
