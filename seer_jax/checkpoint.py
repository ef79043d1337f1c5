"""Checkpoints of a training run with orbax: a pytree of arrays plus JSON metadata.

A run folder keeps its checkpoints in ``RUN_DIR/checkpoints/<agent step>/``. Orbax
writes each one to a temporary folder and renames it when complete, so a process
killed during a save leaves the previous checkpoints untouched; the newest ``keep``
are kept. A checkpoint that cannot be read (truncated, corrupt) is reported and the
next older one is used.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from typing import Any

import jax

VERSION = 1  # the layout of what train() saves; bump when it changes


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or no usable checkpoint can be read."""


class CheckpointMismatch(CheckpointError):
    """A readable checkpoint holds arrays of other shapes than the run resuming it builds
    (another task's action set, another network): it belongs to another configuration."""


def _leaf_name(path) -> str:
    """``agent.opt.1.inner_states...``: a pytree path as orbax names the saved array."""
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return ".".join(parts)


class RunCheckpointer:
    """Save and restore ``(arrays, meta)`` pairs keyed by agent step."""

    def __init__(self, run_dir: str, keep: int = 2):
        self.directory = os.path.join(os.path.abspath(run_dir), "checkpoints")
        self.keep = keep
        self._manager = None

    @property
    def manager(self):
        if self._manager is None:
            import orbax.checkpoint as ocp

            # orbax logs every save at INFO level; keep the training output readable.
            logging.getLogger("absl").setLevel(logging.WARNING)
            self._manager = ocp.CheckpointManager(
                self.directory,
                # named handlers: the arrays' shapes can be read without restoring them
                item_handlers={"arrays": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()},
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=self.keep, enable_async_checkpointing=False, create=True
                ),
            )
        return self._manager

    def steps(self) -> list[int]:
        """Agent steps of the complete checkpoints on disk, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        return sorted(int(d) for d in os.listdir(self.directory) if d.isdigit())

    def save(self, step: int, arrays: Any, meta: dict[str, Any]) -> None:
        import orbax.checkpoint as ocp

        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave({**meta, "version": VERSION})
                ),
                force=True,
            )
            self.manager.wait_until_finished()
        except Exception as e:  # orbax wraps I/O errors in several types
            text = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            full = f"{e} {getattr(e, '__cause__', '')}"
            no_space = getattr(e, "errno", None) == errno.ENOSPC or "No space left" in full or "ENOSPC" in full
            raise CheckpointError(
                f"Could not write the checkpoint at agent step {step} to {self.directory} ({text}). "
                + (
                    "The disk is full: free space (or move the run folder to a disk with room) and resume; "
                    if no_space
                    else "Check that the folder is writable and resume; "
                )
                + "the previous checkpoint is intact."
            ) from None

    def _meta(self, step: int) -> dict[str, Any]:
        """The JSON metadata of the checkpoint at ``step`` (raises if it cannot be read)."""
        import orbax.checkpoint as ocp

        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def latest_meta(self) -> tuple[int, dict[str, Any]] | None:
        """The newest readable checkpoint's JSON metadata as ``(step, meta)``, without
        reading its arrays; None when the run has no readable checkpoint. For reports on a
        run (finished or not) from outside the training process."""
        for step in reversed(self.steps()):
            try:
                return step, self._meta(step)
            except Exception:  # a damaged checkpoint: report from the next older one
                continue
        return None

    def restore_latest(
        self, template_for: Callable[[dict[str, Any]], Any], max_step: int | None = None
    ) -> tuple[int, Any, dict[str, Any]] | None:
        """The newest readable checkpoint (at most ``max_step``) as ``(step, arrays,
        meta)``, or None when the run has none. ``template_for(meta)`` gives the arrays' structure (shapes and
        dtypes) for that checkpoint's phase. Unreadable checkpoints are skipped with a
        message; if none is readable, raises :class:`CheckpointError`."""
        import orbax.checkpoint as ocp

        steps = [s for s in self.steps() if max_step is None or s <= max_step]
        if not steps:
            return None
        problems: list[str] = []
        for step in reversed(steps):
            try:
                meta = self._meta(step)
                if meta.get("version") != VERSION:
                    raise CheckpointError(
                        f"it was written by another version of seer_jax (layout {meta.get('version')}, this one reads {VERSION})"
                    )
                template = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), template_for(meta))
                self._check_shapes(step, template)
                arrays = self.manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(template)))[
                    "arrays"
                ]
                for p in problems:
                    print(f"seer_jax: skipped an unreadable checkpoint: {p}")
                return step, arrays, meta
            except CheckpointMismatch:
                raise  # the older checkpoints belong to the same other configuration
            except CheckpointError as e:
                problems.append(f"step {step}: {e}")
            except Exception as e:  # orbax/tensorstore raise many kinds on damaged files
                problems.append(f"step {step}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
        raise CheckpointError(
            f"No readable checkpoint in {self.directory} ({'; '.join(problems)}). Delete the folder "
            "to start the run afresh, or restore the files from a backup."
        )

    def _check_shapes(self, step: int, template: Any) -> None:
        """Raise :class:`CheckpointMismatch` if the checkpoint at ``step`` stores an array
        of another shape or dtype than ``template`` has at the same place. A checkpoint
        whose metadata cannot be read is left to the restore (which reports it damaged)."""
        try:
            stored_tree = self.manager.item_metadata(step)["arrays"]
            stored = {
                _leaf_name(p): (tuple(m.shape), str(m.dtype))
                for p, m in jax.tree_util.tree_leaves_with_path(stored_tree)
            }
        except Exception:
            return
        wanted = {
            _leaf_name(p): (tuple(x.shape), str(x.dtype)) for p, x in jax.tree_util.tree_leaves_with_path(template)
        }
        differ = [
            f"{name}: stored {stored[name][1]}{list(stored[name][0])}, this run has {want[1]}{list(want[0])}"
            for name, want in wanted.items()
            if name in stored and stored[name] != want
        ]
        if differ:
            raise CheckpointMismatch(
                f"The checkpoint at agent step {step} in {self.directory} was written for another network than "
                f"this run builds ({len(differ)} arrays differ; {'; '.join(differ[:3])}): another task or agent "
                "configuration, or a seer_jax whose agent differs. Resume it with the settings it was trained "
                "with, or train this configuration in a new run folder; the checkpoints are left as they are."
            )
