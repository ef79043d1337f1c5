"""How a run stops: on request (SIGTERM / Ctrl-C, :class:`StopSignals`), with a
checkpoint at the step it stopped after (:class:`TrainingStopped`), or on divergence
(:class:`TrainingDiverged`).
"""

from __future__ import annotations

from typing import Any


class TrainingDiverged(RuntimeError):
    """A loss or parameter became NaN or infinite; the message names the step and quantity."""


class TrainingStopped(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM or Ctrl-C) and did so at the end of an agent
    step, after writing a checkpoint there: running the same command again continues
    exactly from it. A subclass of ``KeyboardInterrupt``, so callers that do not catch
    it stop as they would on Ctrl-C. ``step``: the agent steps done."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class StopSignals:
    """While active, the first SIGTERM or SIGINT asks the training loop to stop after the
    current agent step (with a checkpoint); a second one stops at once
    (``KeyboardInterrupt``; the last periodic checkpoint stays). Installs nothing outside
    the main thread, where Python cannot receive signals."""

    SIGNALS = ("SIGTERM", "SIGINT")

    def __init__(self, message: Any):
        self.message = message
        self.received: str | None = None
        self._previous: dict[Any, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self.received is not None:
            self.__exit__()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        self.message(
            f"{self.received} received: stopping after this agent step, once its checkpoint is written "
            "(send it again to stop at once, from the last periodic checkpoint)"
        )

    def __enter__(self) -> StopSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
