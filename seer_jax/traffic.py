"""The per-agent-step traffic between host and device, in one place.

Owns: what crosses per step (the new observation and its transition up, the next action
down) and the check that nothing else does (``SEER_JAX_CHECK_TRANSFERS=1``).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np


class HostTraffic:
    """The per-agent-step traffic between host and device, made explicit.

    Per step, :meth:`up` sends the new observation and the transition that led to it
    (action, reward, discount, episode start, observation counter) in one
    ``jax.device_put``, and :meth:`down` fetches the next action with ``jax.device_get``;
    buffers, sampling, updates and keys stay on the device. With
    ``SEER_JAX_CHECK_TRANSFERS=1`` the per-step work runs under
    ``jax.transfer_guard("disallow")`` (any other, implicit, transfer raises) and every
    transfer's shape and dtype is written to ``RUN_DIR/transfers.json``.
    """

    def __init__(self, check: bool | None = None, sharding: Any = None):
        """``sharding``: where stacked per-seed inputs go (the seed axis's sharding)."""
        self.check = os.environ.get("SEER_JAX_CHECK_TRANSFERS") == "1" if check is None else check
        self.sharding = sharding
        self.records: list[dict[str, Any]] = []

    def guard(self):
        """Context for the per-step work: disallows implicit transfers when checking."""
        import contextlib

        return jax.transfer_guard("disallow") if self.check else contextlib.nullcontext()

    def _record(self, direction: str, tree: Any) -> None:
        if self.check and len(self.records) < 10_000:
            leaves = jax.tree_util.tree_leaves(tree)
            self.records.append(
                {"dir": direction, "arrays": [[list(np.shape(x)), str(np.asarray(x).dtype)] for x in leaves]}
            )

    def up(self, obs: Any, action: Any, reward: float, discount: float, first: bool, count: int) -> tuple:
        host = (obs, np.asarray(action), np.float32(reward), np.float32(discount), np.bool_(first), np.int32(count))
        self._record("up", host)
        return jax.device_put(host)

    def up_many(self, rows: list[tuple], write: np.ndarray) -> tuple:
        """:meth:`up` for N seeds at once (each row as :meth:`up`'s arguments), stacked
        along the seed axis, with each seed's ``write`` flag; one transfer."""
        cols = list(zip(*rows, strict=True))
        dtypes = (None, None, np.float32, np.float32, np.bool_, np.int32)
        host = tuple(np.stack([np.asarray(x, d) for x in col]) for col, d in zip(cols, dtypes, strict=True))
        host = (*host, np.asarray(write, np.bool_))
        self._record("up", host)
        return jax.device_put(host, self.sharding)

    def store(
        self, observe_fn: Any, replay_state: Any, agent_state: Any, rows: list[tuple], key: Any, write: Any = None
    ) -> tuple[Any, jax.Array]:
        """Upload each seed's new observation (``rows``: per seed the arguments of
        :meth:`up`) and run the jitted store-and-act step on it: one seed through
        :func:`make_observe`'s signature, several through ``seeds.make_observe``'s (with
        each seed's ``write`` flag, all True when None). Returns its outputs."""
        if len(rows) == 1:
            return observe_fn(replay_state, agent_state, *self.up(*rows[0]), key)
        mask = np.ones(len(rows), bool) if write is None else np.asarray(write)
        *inputs, write_dev = self.up_many(rows, mask)
        return observe_fn(replay_state, agent_state, *inputs, key, write_dev)

    def put(self, x: np.ndarray) -> jax.Array:
        """One explicit upload (placed on the seed axis's sharding)."""
        self._record("up", x)
        return jax.device_put(x, self.sharding)

    def down(self, action: jax.Array) -> np.ndarray:
        host = np.asarray(jax.device_get(action))
        self._record("down", host)
        return host

    def step_index(self, step: int) -> jax.Array:
        """The update's step counter as a device scalar (for its key)."""
        self._record("up", np.int32(step))
        return jax.device_put(np.int32(step))
