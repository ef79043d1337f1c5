"""Run folder output: config, CSV metrics, TensorBoard events and a progress bar.

Kept apart from the math: the training loop hands plain floats to :class:`RunLogger`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from tqdm import tqdm


class CsvLog:
    """Append-only CSV whose columns are fixed by the first row written."""

    def __init__(self, path: str):
        self.path = path
        self._fields: list[str] | None = None
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, newline="") as f:
                self._fields = next(csv.reader(f))

    def write(self, row: Mapping[str, Any]) -> None:
        new = self._fields is None
        if self._fields is None:
            self._fields = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def truncate_csv(path: str, keep_up_to: int | None) -> None:
    """Drop every row (all rows when ``keep_up_to`` is None) logged after ``keep_up_to``
    env steps; the rewrite goes through a temporary file, so it is atomic."""
    if not os.path.exists(path):
        return
    if keep_up_to is None:
        os.remove(path)
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and float(r[0]) <= keep_up_to]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)


def read_eval(run_dir: str) -> list[dict[str, Any]]:
    """The evaluation rows a run folder's ``eval.csv`` holds so far (``[]`` when none):
    ``env_steps`` as int, ``phase`` as text, every other column as float."""
    path = os.path.join(run_dir, "eval.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [
            {
                k: int(float(v)) if k == "env_steps" else v if k == "phase" else float(v)
                for k, v in row.items()
                if v not in (None, "")
            }
            for row in csv.DictReader(f)
        ]


class RunLogger:
    """Writes ``config.json``, ``train.csv``, ``eval.csv`` and TensorBoard events to
    ``run_dir`` and drives a progress bar over environment steps."""

    def __init__(
        self,
        run_dir: str,
        config: Mapping[str, Any],
        total_env_steps: int,
        progress: bool = True,
        resume_env_steps: int | None = None,
        label: str = "",
    ):
        """``resume_env_steps``: continue a run from a checkpoint taken at that many env
        steps (rows logged after it are dropped, TensorBoard events after it purged);
        None starts the logs afresh. ``label`` prefixes the printed evaluation lines
        (e.g. ``"seed 3"`` when several seeds share a terminal)."""
        os.makedirs(run_dir, exist_ok=True)
        self.run_dir = run_dir
        self.label = f" {label}" if label else ""
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(dict(config), f, indent=2, sort_keys=True, default=str)
        for name in ("train.csv", "eval.csv"):
            truncate_csv(os.path.join(run_dir, name), resume_env_steps)
        self.train_csv = CsvLog(os.path.join(run_dir, "train.csv"))
        self.eval_csv = CsvLog(os.path.join(run_dir, "eval.csv"))
        try:
            from tensorboardX import SummaryWriter

            purge = None if resume_env_steps is None else resume_env_steps + 1
            self.tb = SummaryWriter(os.path.join(run_dir, "tb"), purge_step=purge)
        except ImportError:  # pragma: no cover - tensorboardX is a requirement
            self.tb = None
        self.bar = tqdm(
            total=total_env_steps,
            initial=resume_env_steps or 0,
            unit="env step",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not progress,
            file=sys.stderr,
            smoothing=0.05,
        )
        self._last_finite: dict[str, float] = {}

    def _scalars(self, prefix: str, step: int, row: Mapping[str, Any]) -> None:
        if self.tb is None:
            return
        for k, v in row.items():
            if isinstance(v, (int, float)) and math.isfinite(v) and k != "env_steps":
                self.tb.add_scalar(f"{prefix}/{k}", v, step)

    def train(self, env_steps: int, metrics: Mapping[str, float]) -> None:
        # Metrics of updates that skip a component (NaN) keep that component's last value.
        row: dict[str, Any] = {"env_steps": env_steps}
        for k, v in metrics.items():
            if not isinstance(v, (int, float)):
                row[k] = v
                continue
            v = float(v)
            if math.isfinite(v):
                self._last_finite[k] = v
            row[k] = self._last_finite.get(k, v)
        self.train_csv.write(row)
        self._scalars("train", env_steps, row)

    def eval(self, env_steps: int, row: Mapping[str, float], seconds: float | None = None) -> None:
        """Log an evaluation's row (``seconds``: how long it took, printed, not logged)."""
        self.eval_csv.write({"env_steps": env_steps, **row})
        self._scalars("eval", env_steps, row)
        took = "" if seconds is None else f" ({row.get('episodes', '?')} episodes, {seconds:.0f} s)"
        self.bar.write(
            f"[eval{self.label}] env_steps={env_steps} return={row['return_mean']:.1f}±{row['return_std']:.1f}{took}"
        )

    def progress(self, env_steps_done: int, **postfix: Any) -> None:
        self.bar.update(env_steps_done)
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def message(self, text: str) -> None:
        self.bar.write(text)

    def status(self, text: str) -> None:
        """Show ``text`` after the progress bar (e.g. a running evaluation's progress)
        until the next :meth:`progress` call replaces it."""
        self.bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        self.bar.close()
        if self.tb is not None:
            self.tb.close()


class RateMeter:
    """Events per second over a sliding window of wall-clock time."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self._t0 = time.perf_counter()
        self._n = 0
        self.rate = 0.0

    def tick(self, n: int = 1) -> float:
        self._n += n
        dt = time.perf_counter() - self._t0
        if dt >= self.window_s or (self.rate == 0.0 and dt >= 1.0):
            self.rate = self._n / dt
            self._t0, self._n = time.perf_counter(), 0
        return self.rate
