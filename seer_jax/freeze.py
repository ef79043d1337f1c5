"""SEER's freeze, as an optimizer transformation.

Parameters are labelled ``"encoder"`` or ``"heads"`` by their top-level key. Before the
freeze every label gets its own optimizer; from the freeze on the ``"encoder"`` label
maps to :func:`optax.set_to_zero`, so its updates are exactly zero and its optimizer
state is dropped. (``optax.masked`` alone is not a freeze: masked-out leaves pass
their raw gradients through.)

Works on any parameter tree whose top level is a dict::

    labels = freeze.label_params(params, encoder_keys=("conv", "proj"))
    tx = freeze.freezable(labels, encoder=optax.adam(1e-3), heads=optax.adam(1e-3))
    opt_state = tx.init(params)                 # training everything
    ...
    frozen_tx = freeze.freezable(labels, encoder=optax.adam(1e-3), heads=optax.adam(1e-3), frozen=True)
    opt_state = freeze.freeze_opt_state(opt_state, frozen_tx, params)   # at the freeze step
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import optax

ENCODER = "encoder"
HEADS = "heads"


def label_params(params: Mapping[str, Any], encoder_keys: Iterable[str]) -> dict[str, Any]:
    """A label tree for ``params``: ``"encoder"`` under the given top-level keys,
    ``"heads"`` everywhere else."""
    encoder_keys = set(encoder_keys)
    unknown = encoder_keys - set(params)
    if unknown:
        raise KeyError(f"encoder keys {sorted(unknown)} are not in the parameters {sorted(params)}")
    return {
        k: jax.tree_util.tree_map(lambda _, lab=(ENCODER if k in encoder_keys else HEADS): lab, v)
        for k, v in params.items()
    }


def freezable(
    labels: Any,
    *,
    encoder: optax.GradientTransformation,
    heads: optax.GradientTransformation,
    frozen: bool = False,
    max_grad_norm: float | None = None,
) -> optax.GradientTransformation:
    """``optax.multi_transform`` that trains both labels, or only the heads when frozen.

    With ``max_grad_norm`` the gradients are first clipped by their global norm over
    all parameters (``optax.chain(clip_by_global_norm, multi_transform)``).
    """
    tx = optax.multi_transform({ENCODER: optax.set_to_zero() if frozen else encoder, HEADS: heads}, labels)
    if max_grad_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)
    return tx


def apply_updates(params: Any, updates: Any, labels: Any, frozen: bool) -> Any:
    """``optax.apply_updates``, except that when ``frozen`` the encoder's leaves are
    returned as they are (the same arrays). Their updates are exactly zero
    (``set_to_zero``); not rewriting them keeps them bit-identical and saves the memory
    traffic of re-adding zeros to large tensors every update. ``labels`` is a label tree
    or a function of ``params`` returning one (as for :func:`freezable`)."""
    if not frozen:
        return optax.apply_updates(params, updates)
    label_tree = labels(params) if callable(labels) else labels
    return jax.tree_util.tree_map(
        lambda p, u, lab: p if lab == ENCODER else (p + u).astype(p.dtype), params, updates, label_tree
    )


def update_encoder(
    encoder_tx: optax.GradientTransformation, opt_state: Any, grads: Any, labels: Any
) -> tuple[Any, Any]:
    """Step only the ``"encoder"`` label's optimizer inside an unfrozen :func:`freezable`
    state, leaving the heads' state untouched: for an encoder optimizer that one loss
    shares with another (SEER's DMC release steps ``encoder_optimizer_critic`` on the
    critic loss and again on the CURL loss, while ``critic_optimizer`` steps once).

    ``encoder_tx`` must be the transform the state was built with for that label and
    ``grads`` a full gradient tree (the heads' leaves are ignored). Returns ``(updates,
    new_opt_state)``; only the encoder's leaves of ``updates`` are meaningful."""
    if not isinstance(opt_state, optax.MultiTransformState):
        raise TypeError("update_encoder takes the state of an unchained freezable() transform")
    if is_frozen(opt_state):
        raise ValueError("the encoder is frozen: its optimizer has no state to step")
    label_tree = labels(grads) if callable(labels) else labels
    mask = jax.tree_util.tree_map(lambda lab: lab == ENCODER, label_tree)
    # multi_transform keeps each label's state as that of optax.masked(tx, label mask).
    updates, inner = optax.masked(encoder_tx, mask).update(grads, opt_state.inner_states[ENCODER])
    return updates, opt_state._replace(inner_states={**opt_state.inner_states, ENCODER: inner})


def zero_encoder_grads(grads: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Complete a gradient tree that covers only some top-level keys with zeros for the
    rest (after the freeze the loss does not touch the encoder at all)."""
    return {k: grads[k] if k in grads else jax.tree_util.tree_map(jax.numpy.zeros_like, v) for k, v in params.items()}


def freeze_opt_state(opt_state: Any, frozen_tx: optax.GradientTransformation, params: Any) -> Any:
    """Turn the optimizer state of a :func:`freezable` transform into that of its frozen
    twin: the heads keep their state (moments, counts), the encoder's state is dropped."""
    fresh = frozen_tx.init(params)
    if isinstance(fresh, optax.MultiTransformState):
        inner = dict(fresh.inner_states)
        inner[HEADS] = opt_state.inner_states[HEADS]
        return fresh._replace(inner_states=inner)
    # a chain: the multi_transform is one of its elements
    return tuple(
        freeze_opt_state(old, _Fixed(new), params) if isinstance(new, optax.MultiTransformState) else old
        for old, new in zip(opt_state, fresh)
    )


class _Fixed:
    """Stands in for a transform whose initial state is already known."""

    def __init__(self, state):
        self._state = state

    def init(self, params):
        return self._state


def is_frozen(opt_state: Any) -> bool:
    """Whether a :func:`freezable` optimizer state belongs to the frozen transform."""
    if not isinstance(opt_state, optax.MultiTransformState):
        return any(is_frozen(s) for s in opt_state if isinstance(s, optax.MultiTransformState))
    enc = opt_state.inner_states[ENCODER]
    return not jax.tree_util.tree_leaves(enc)
