"""A device-resident circular replay buffer: a pytree state plus pure functions.

Layout. The buffer is a ring of *slots*. Slot ``j`` holds one observation item (an
image frame before the freeze, a latent after it) together with the transition that
*led to* it: the action taken in the previous slot's observation, the reward and the
discount received, and ``first`` (the slot starts an episode, so nothing led to it).
A transition is therefore identified by its *next* slot ``j``::

    obs      = stack of ``stack`` items ending at slot j-1
    action   = action[j],  reward = reward[j],  discount = discount[j]
    next_obs = stack of ``stack`` items ending at slot j

Each frame is written once; frame stacks and next observations are rebuilt by index.
A stack never reaches back past the start of its episode and never past the oldest slot
still in the buffer, so no sample crosses an episode boundary or the write head. Before an
episode's start a stack holds the episode's first item repeated (``zero_pad=False``, as
CURL's frame-stacking environment does on reset) or zeros (``zero_pad=True``, as the
released SEER / Rainbow Atari code's replay memory does).

Every function is pure and jit-friendly; :class:`Replay` carries only static
configuration (capacity, shapes), :class:`ReplayState` carries the arrays. Update the
state under ``jax.jit(..., donate_argnums=0)`` to write in place.

Capacity comes from a byte budget: :func:`capacity_for_budget`. At SEER's freeze,
:func:`migrate` re-encodes every stored observation, in head-relative order, into a new
buffer (typically many times larger) sized from the same budget.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

PyTree = Any


class ReplayState(struct.PyTreeNode):
    """Arrays of a replay buffer. Leading axis of every array is the slot index."""

    items: PyTree  # leaves (capacity, *item_shape): frames or latents
    action: jax.Array  # (capacity, *action_shape)
    reward: jax.Array  # (capacity,) float32
    discount: jax.Array  # (capacity,) float32, gamma-free env discount (0 at a terminal)
    first: jax.Array  # (capacity,) bool, slot starts an episode
    cursor: jax.Array  # () int32, next slot to write
    size: jax.Array  # () int32, number of valid slots


def _spec_bytes(spec: PyTree) -> int:
    leaves = jax.tree_util.tree_leaves(spec)
    return int(sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves))


def bytes_per_slot(item_spec: PyTree, action_spec: jax.ShapeDtypeStruct) -> int:
    """Bytes one stored transition costs: its item, action, reward, discount and flag."""
    return _spec_bytes(item_spec) + _spec_bytes(action_spec) + 4 + 4 + 1


class ReplayBudgetError(ValueError):
    """The replay memory budget cannot hold the minimum number of transitions."""


def capacity_for_budget(
    budget_bytes: int,
    item_spec: PyTree,
    action_spec: jax.ShapeDtypeStruct,
    *,
    min_capacity: int = 1,
    max_capacity: int | None = None,
) -> int:
    """Number of slots that fit into ``budget_bytes``.

    Args:
      budget_bytes: replay memory budget in bytes.
      item_spec: pytree of ``jax.ShapeDtypeStruct``, one stored observation item.
      action_spec: ``jax.ShapeDtypeStruct`` of one action.
      min_capacity: the least useful capacity (e.g. batch size plus frame stack); a
        budget below it raises :class:`ReplayBudgetError` stating the minimum.
      max_capacity: upper bound (SEER: never more slots than the run will write).

    Returns:
      ``min(budget_bytes // bytes_per_slot, max_capacity)``.
    """
    per_slot = bytes_per_slot(item_spec, action_spec)
    capacity = int(budget_bytes // per_slot)
    if capacity < min_capacity:
        need_mb = math.ceil(min_capacity * per_slot / 2**20 * 100) / 100
        raise ReplayBudgetError(
            f"A replay budget of {budget_bytes / 2**20:.2f} MB holds {capacity} transitions of "
            f"{per_slot} bytes, but at least {min_capacity} are needed (batch size plus frame "
            f"stack). Raise the budget to at least {need_mb} MB (--replay-budget-mb {need_mb})."
        )
    if max_capacity is not None:
        capacity = min(capacity, int(max_capacity))
    return capacity


@dataclasses.dataclass(frozen=True)
class Replay:
    """Static description of a buffer; its methods are pure functions of a ReplayState.

    Attributes:
      item_spec: pytree of ``jax.ShapeDtypeStruct`` for one stored item (no slot axis).
      action_spec: ``jax.ShapeDtypeStruct`` for one action.
      capacity: number of slots.
      stack: how many consecutive items make one observation (3 frames on DMC, 4 on
        Atari, 1 for latents that already encode a whole stack).
      zero_pad: a stack reaching back before its episode's start holds zeros there
        (Atari) instead of the episode's first item repeated (DMC).
    """

    item_spec: PyTree
    action_spec: jax.ShapeDtypeStruct
    capacity: int
    stack: int = 1
    zero_pad: bool = False

    def __post_init__(self):
        if self.capacity < self.stack + 1:
            raise ReplayBudgetError(f"capacity {self.capacity} is below the minimum of {self.stack + 1}.")

    @property
    def bytes_per_slot(self) -> int:
        return bytes_per_slot(self.item_spec, self.action_spec)

    @property
    def nbytes(self) -> int:
        return self.capacity * self.bytes_per_slot

    # ------------------------------------------------------------------ init / add
    def init(self) -> ReplayState:
        """An empty buffer (all arrays allocated at full capacity)."""
        cap = self.capacity
        zeros = lambda s: jnp.zeros((cap, *s.shape), s.dtype)
        return ReplayState(
            items=jax.tree_util.tree_map(zeros, self.item_spec),
            action=zeros(self.action_spec),
            reward=jnp.zeros((cap,), jnp.float32),
            discount=jnp.zeros((cap,), jnp.float32),
            first=jnp.zeros((cap,), jnp.bool_),
            cursor=jnp.zeros((), jnp.int32),
            size=jnp.zeros((), jnp.int32),
        )

    def add(
        self,
        state: ReplayState,
        item: PyTree,
        action: jax.typing.ArrayLike,
        reward: jax.typing.ArrayLike,
        discount: jax.typing.ArrayLike,
        first: jax.typing.ArrayLike,
        write: jax.typing.ArrayLike = True,
    ) -> ReplayState:
        """Write one slot at the cursor and advance it (overwriting the oldest when full).

        Args:
          item: the newest observation item (one frame, or one latent item).
          action, reward, discount: the transition that led to ``item``; ignored
            (stored as given, typically zeros) when ``first`` is True.
          first: True when ``item`` is the first observation of an episode.
          write: a boolean scalar; when False the state is returned unchanged (the slot
            at the cursor is rewritten with its own contents). For batches of buffers
            under ``vmap`` where only some receive an item this step.
        """
        chex.assert_trees_all_equal_shapes_and_dtypes(
            item, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), self.item_spec)
        )
        c = state.cursor
        if write is True:
            put = lambda buf, x: buf.at[c].set(jnp.asarray(x, buf.dtype))
            step: jax.typing.ArrayLike = 1
        else:
            w = jnp.asarray(write, jnp.bool_)
            put = lambda buf, x: buf.at[c].set(jnp.where(w, jnp.asarray(x, buf.dtype), buf[c]))
            step = w.astype(jnp.int32)
        return ReplayState(
            items=jax.tree_util.tree_map(put, state.items, item),
            action=put(state.action, action),
            reward=put(state.reward, reward),
            discount=put(state.discount, discount),
            first=put(state.first, first),
            cursor=(c + step) % self.capacity,
            size=jnp.minimum(state.size + step, self.capacity),
        )

    # ------------------------------------------------------------------ sampling
    def oldest(self, state: ReplayState) -> jax.Array:
        """The slot index ``()`` int32 of the oldest stored item."""
        return (state.cursor - state.size) % self.capacity

    def is_valid(self, state: ReplayState, slot: jax.Array) -> jax.Array:
        """Whether ``slot`` is the next-observation slot of a complete transition."""
        rel = (slot - self.oldest(state)) % self.capacity
        return (~state.first[slot]) & (rel >= self.stack) & (rel < state.size)

    def num_valid(self, state: ReplayState) -> jax.Array:
        """How many stored slots ``()`` can be sampled as a transition's next observation."""
        return jnp.sum(self.is_valid(state, jnp.arange(self.capacity)))

    def stack_slots(self, state: ReplayState, end: jax.Array) -> jax.Array:
        """Slots of the ``stack`` items ending at ``end`` (oldest first), clamped at the
        episode's first slot. ``end`` has any shape; a trailing stack axis is added."""
        return self._stack(state, end)[0]

    def _stack(self, state: ReplayState, end: jax.Array) -> tuple[jax.Array, jax.Array]:
        """:meth:`stack_slots` and, beside them, whether each lies in ``end``'s episode
        (False where the stack reaches back before the episode's start)."""
        slots, inside = [end], [jnp.ones(jnp.shape(end), jnp.bool_)]
        cur, ok = end, inside[0]
        for _ in range(self.stack - 1):
            at_first = state.first[cur]
            ok = ok & ~at_first
            cur = jnp.where(at_first, cur, (cur - 1) % self.capacity)
            slots.append(cur)
            inside.append(ok)
        return jnp.stack(slots[::-1], axis=-1), jnp.stack(inside[::-1], axis=-1)

    def _items(self, state: ReplayState, slots: jax.Array, inside: jax.Array) -> PyTree:
        """The items at ``slots``; with ``zero_pad``, zeros where ``inside`` is False."""

        def take(x):
            v = x[slots]
            if not self.zero_pad:
                return v
            mask = inside.reshape(inside.shape + (1,) * (v.ndim - inside.ndim))
            return jnp.where(mask, v, jnp.zeros((), v.dtype))

        return jax.tree_util.tree_map(take, state.items)

    def sample_slots(self, state: ReplayState, key: jax.Array, batch_size: int, max_redraws: int = 64) -> jax.Array:
        """Uniformly sample ``batch_size`` valid next-observation slots.

        Invalid draws (episode starts) are redrawn until every slot is valid (at most
        ``max_redraws`` rounds; with episodes longer than a few steps the chance that any
        draw is still invalid then is negligible). The caller must make sure valid
        transitions exist (:meth:`num_valid`).
        """
        oldest = self.oldest(state)
        hi = jnp.maximum(state.size, self.stack + 1)

        def draw(k):
            rel = jax.random.randint(k, (batch_size,), self.stack, hi)
            return (oldest + rel) % self.capacity

        def cond(carry):
            _, slots, i = carry
            return (i < max_redraws) & ~jnp.all(self.is_valid(state, slots))

        def body(carry):
            k, slots, i = carry
            k, sub = jax.random.split(k)
            return k, jnp.where(self.is_valid(state, slots), slots, draw(sub)), i + 1

        key, sub = jax.random.split(key)
        _, slots, _ = jax.lax.while_loop(cond, body, (key, draw(sub), jnp.zeros((), jnp.int32)))
        return slots

    def gather(
        self, state: ReplayState, slots: jax.Array, n_step: int = 1, gamma: float | None = None
    ) -> dict[str, Any]:
        """The transitions whose first next observations sit at ``slots`` (shape (B,)).

        Returns a dict with ``obs`` and ``next_obs`` (leaves ``(B, stack, *item)``, or
        ``(B, *item)`` when ``stack == 1``), ``action``, ``reward`` and ``discount``.

        With ``gamma=None`` (one-step, the default) ``reward`` and ``discount`` are the
        stored ones (the environment's discount, without gamma). With ``gamma`` given,
        the transition spans up to ``n_step`` steps: ``reward`` is the discounted sum of
        the next m <= n_step rewards, cut at the end of the episode and at the newest
        slot, ``next_obs`` is the observation m steps on, and ``discount`` is
        ``gamma**m`` times the product of the environment discounts (0 after a terminal),
        i.e. the factor on the bootstrap value.
        """
        prev = (slots - 1) % self.capacity
        obs_slots, obs_inside = self._stack(state, prev)  # (B, stack)
        squeeze = (lambda x: x[:, 0]) if self.stack == 1 else (lambda x: x)
        if gamma is None:
            if n_step != 1:
                raise ValueError("n-step transitions need gamma.")
            # The next observation's stack is the obs stack shifted by one: slot j is never
            # an episode start, so walking back from j goes through j-1's stack.
            all_slots = jnp.concatenate([obs_slots, slots[:, None]], axis=1)  # (B, stack+1)
            all_inside = jnp.concatenate([obs_inside, jnp.ones_like(slots[:, None], jnp.bool_)], axis=1)
            frames = self._items(state, all_slots, all_inside)
            return dict(
                obs=jax.tree_util.tree_map(lambda x: squeeze(x[:, :-1]), frames),
                next_obs=jax.tree_util.tree_map(lambda x: squeeze(x[:, 1:]), frames),
                action=state.action[slots],
                reward=state.reward[slots],
                discount=state.discount[slots],
            )
        rel0 = (slots - self.oldest(state)) % self.capacity
        ret = jnp.zeros(slots.shape, jnp.float32)
        factor = jnp.ones(slots.shape, jnp.float32)  # gamma^k * prod of discounts so far
        alive = jnp.ones(slots.shape, jnp.bool_)
        last = slots
        for k in range(n_step):
            s = (slots + k) % self.capacity
            if k > 0:
                alive = alive & (rel0 + k < state.size) & ~state.first[s]
            ret = ret + jnp.where(alive, factor * state.reward[s], 0.0)
            factor = jnp.where(alive, factor * gamma * state.discount[s], factor)
            last = jnp.where(alive, s, last)
        obs = jax.tree_util.tree_map(squeeze, self._items(state, obs_slots, obs_inside))
        next_obs = jax.tree_util.tree_map(squeeze, self._items(state, *self._stack(state, last)))
        return dict(obs=obs, next_obs=next_obs, action=state.action[slots], reward=ret, discount=factor)

    def sample(
        self, state: ReplayState, key: jax.Array, batch_size: int, n_step: int = 1, gamma: float | None = None
    ) -> dict[str, Any]:
        """Sample a batch of transitions uniformly; see :meth:`gather` for its layout."""
        return self.gather(state, self.sample_slots(state, key, batch_size), n_step, gamma)

    # ------------------------------------------------------------------ migration
    def ordered_stacks(self, state: ReplayState, rel: jax.Array) -> PyTree:
        """Stacks of items ending at head-relative positions ``rel`` (0 = oldest), clamped
        at episode starts and never reaching before the oldest slot."""
        oldest = self.oldest(state)
        rels, inside = [rel], [jnp.ones(jnp.shape(rel), jnp.bool_)]
        cur, ok = rel, inside[0]
        for _ in range(self.stack - 1):
            at_first = state.first[(oldest + cur) % self.capacity]
            ok = ok & ~at_first  # before the episode's start (the oldest slot's clamp repeats)
            cur = jnp.where(at_first | (cur == 0), cur, cur - 1)
            rels.append(cur)
            inside.append(ok)
        slots = (oldest + jnp.stack(rels[::-1], axis=-1)) % self.capacity
        return self._items(state, slots, jnp.stack(inside[::-1], axis=-1))


def migrate(
    old: Replay,
    old_state: ReplayState,
    new: Replay,
    encode_fn: Callable[[PyTree, jax.Array], PyTree],
    key: jax.Array,
    chunk_size: int = 256,
) -> ReplayState:
    """Re-encode every stored observation into a new buffer (SEER's freeze step).

    Observations are read in head-relative order (oldest first) in fixed-size chunks;
    each chunk's stacks go through one jitted ``encode_fn(stacks, key) -> items`` call,
    where ``stacks`` has leaves ``(chunk_size, old.stack, *old_item)``. Actions, rewards,
    discounts and episode starts move across unchanged. The newest
    ``min(size, new.capacity)`` observations are kept. Where the old buffer had already
    overwritten the start of the oldest episode, the first observations whose frame
    stacks are incomplete are marked as episode starts so they are never sampled.

    Returns the new buffer's state; ``old_state`` may be deleted afterwards.
    """
    keep = min(int(old_state.size), new.capacity)
    fill = jax.jit(migrate_chunk_fn(old, new, lambda _, stacks, k: encode_fn(stacks, k), chunk_size), donate_argnums=0)
    new_state = new.init()
    for i, r0 in enumerate(range(0, keep, chunk_size)):
        new_state = fill(new_state, old_state, None, jnp.asarray(r0, jnp.int32), jax.random.fold_in(key, i))
    return migrate_finish(new, new_state, old_state.size)


def migrate_finish(new: Replay, new_state: ReplayState, old_size: jax.Array) -> ReplayState:
    """Set the cursor and size of a buffer filled by :func:`migrate_chunk_fn` chunks."""
    keep = jnp.minimum(jnp.asarray(old_size, jnp.int32), new.capacity)
    return new_state.replace(cursor=keep % new.capacity, size=keep)


def migrate_chunk_fn(
    old: Replay, new: Replay, encode_fn: Callable[[Any, PyTree, jax.Array], PyTree], chunk_size: int
) -> Callable[[ReplayState, ReplayState, Any, jax.Array, jax.Array], ReplayState]:
    """The pure step of :func:`migrate`: ``fill(new_state, old_state, aux, r0, key)``
    re-encodes the kept observations ``r0 .. r0 + chunk_size - 1`` (counted from the
    first kept one) with ``encode_fn(aux, stacks, key)`` and writes them. The buffer's
    size is read from ``old_state`` on the device, so ``fill`` can be ``vmap``-ed over
    buffers of different sizes (``aux``: e.g. each one's frozen agent state)."""

    def fill(new_state: ReplayState, old_state: ReplayState, aux: Any, r0: jax.Array, key: jax.Array) -> ReplayState:
        size = old_state.size
        keep = jnp.minimum(size, new.capacity)
        start = size - keep  # head-relative index of the first kept observation
        # Once the ring has wrapped, the oldest episode's start may be overwritten: the
        # stacks of its first `stack - 1` observations are incomplete, so the transitions
        # that touch them are dropped by marking them as episode starts.
        wrapped = size == old.capacity
        rel = start + r0 + jnp.arange(chunk_size)
        in_range = rel < size
        rel = jnp.minimum(rel, size - 1)
        stacks = old.ordered_stacks(old_state, rel)
        items = encode_fn(aux, stacks, key)
        slots = (old.oldest(old_state) + rel) % old.capacity
        pos = jnp.where(in_range, rel - start, new.capacity)  # out of range -> dropped
        first = old_state.first[slots] | (rel == start) | (wrapped & (rel < old.stack))
        put = lambda buf, x: buf.at[pos].set(x.astype(buf.dtype), mode="drop")
        return new_state.replace(
            items=jax.tree_util.tree_map(put, new_state.items, items),
            action=put(new_state.action, old_state.action[slots]),
            reward=put(new_state.reward, old_state.reward[slots]),
            discount=put(new_state.discount, old_state.discount[slots]),
            first=put(new_state.first, first),
        )

    return fill
