"""A run folder, claimed by one run at a time.

Owns: checking that a run folder can be one (not a file, not under a file, creatable and
writable) before anything heavy starts, and the lock that keeps a second process out of a
folder a run is writing (an ``fcntl`` lock on ``RUN_DIR/.lock``: the operating system
drops it when the process ends, however it ends). Imports nothing heavy.
"""

from __future__ import annotations

import errno
import os
import shutil
from typing import Any

from seer_jax.config import ConfigError

LOCK_NAME = ".lock"


class RunFolderError(ConfigError):
    """The run folder cannot be used; the message names the path and what to do."""


def check_path(run_dir: str, flag: str = "--run-dir", create: bool = True) -> None:
    """Raise RunFolderError when ``run_dir`` cannot be a run folder: an existing file, a
    path under a file, or (``create``) a folder that cannot be created or written. Creates
    nothing: a folder made to try is removed again."""
    path = os.path.abspath(run_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunFolderError(f"{flag} {run_dir}: this is a file, not a folder; choose another {flag}.")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise RunFolderError(
            f"{flag} {run_dir}: {parent} is a file, so no folder can be made under it; choose another {flag}."
        )
    if not create:
        return
    made = None
    if parent != path:  # the first folder that does not exist yet, made to try and removed
        made = path
        while os.path.dirname(made) != parent:
            made = os.path.dirname(made)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise RunFolderError(
            f"{flag} {run_dir}: cannot create or write this folder ({e.strerror}); choose another {flag}."
        ) from None
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


class RunFolderLock:
    """Hold ``run_dir`` for this process (a context manager). Entering creates the folder
    (after :func:`check_path`) and takes an exclusive, non-blocking lock; a folder another
    live process holds raises RunFolderError naming that process."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_NAME)
        self._fd: int | None = None

    def __enter__(self) -> RunFolderLock:
        import fcntl

        check_path(self.run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise RunFolderError(
                f"{self.run_dir} is in use by another run ({holder}); wait for it to finish or stop it "
                "(kill -TERM PID saves a checkpoint), or choose another --run-dir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not written its id yet"


def remove_unfinished_saves(checkpoint_dir: str) -> list[str]:
    """Delete the checkpoint saves a killed process left unfinished (orbax's
    ``*.orbax-checkpoint-tmp*`` folders) in ``checkpoint_dir``; returns their names."""
    if not os.path.isdir(checkpoint_dir):
        return []
    found = sorted(d for d in os.listdir(checkpoint_dir) if ".orbax-checkpoint-tmp" in d)
    for name in found:
        shutil.rmtree(os.path.join(checkpoint_dir, name), ignore_errors=True)
    return found
