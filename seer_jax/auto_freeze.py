"""A freeze step chosen by the encoder itself (``--freeze-step auto``).

SEER assumes the encoder has converged when it is frozen; a fixed agent step cannot know
that for every task. :class:`AutoFreeze` watches a fixed *probe batch* of stored
observations: every ``every`` agent steps it encodes the probe with the current encoder
(the critic's latent of the centre crop, what the heads will see after the freeze) and
measures the *drift*, the relative change of those latents since the previous check::

    drift_t = ||Z_t - Z_{t-1}||_F / ||Z_{t-1}||_F         (Z: probe_size x latent_dim)

It freezes once the drift has stayed below ``threshold`` for ``patience`` consecutive
checks, not before ``min_step`` and at ``max_step`` at the latest. With several seeds in
one process the seeds freeze together, on the largest drift among them.

Everything here is host-side and cheap (one forward pass of ``probe_size`` observations
per check); the state is a :class:`Monitor` of numpy arrays, saved in checkpoints, so a
resumed run takes the decision the uninterrupted run takes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class AutoFreeze:
    """The rule (all steps are agent steps)."""

    every: int = 1000
    threshold: float = 0.05
    patience: int = 3
    min_step: int = 5000
    max_step: int = 50000
    probe_size: int = 256

    def __post_init__(self):
        for name in ("every", "patience", "min_step", "max_step", "probe_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"auto freeze: {name} must be a positive integer, got {v!r}")
        if not self.threshold > 0:
            raise ValueError(f"auto freeze: threshold must be positive, got {self.threshold!r}")
        if self.min_step > self.max_step:
            raise ValueError(f"auto freeze: min_step {self.min_step} is after max_step {self.max_step}")

    def is_check_step(self, step: int) -> bool:
        """Whether the encoder is probed after ``step`` agent steps."""
        return step % self.every == 0 or step == self.max_step

    def decide(self, step: int, drifts: list[float]) -> bool:
        """Freeze after ``step`` agent steps, given the drift curve so far?"""
        if step >= self.max_step:
            return True
        recent = drifts[-self.patience :]
        return step >= self.min_step and len(recent) == self.patience and max(recent) < self.threshold


@dataclasses.dataclass
class Monitor:
    """What the rule has seen: the probe (per seed, uint8 stacks), the latents of the last
    check (per seed), and the curve ``(step, drift per seed)``."""

    probe: np.ndarray | None = None  # (seeds, probe_size, *obs_shape) uint8
    latents: np.ndarray | None = None  # (seeds, probe_size, latent_dim) float32
    steps: list[int] = dataclasses.field(default_factory=list)
    drifts: list[list[float]] = dataclasses.field(default_factory=list)  # per check, per seed
    chosen_step: int | None = None

    def meta(self) -> dict[str, Any]:
        """The JSON part of a checkpoint (the arrays go with :meth:`arrays`)."""
        return {"steps": self.steps, "drifts": self.drifts, "chosen_step": self.chosen_step}

    def arrays(self) -> dict[str, np.ndarray]:
        if self.probe is None or self.latents is None:
            return {}
        return {"probe": self.probe, "latents": self.latents}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Monitor:
        return cls(
            probe=arrays.get("probe"),
            latents=arrays.get("latents"),
            steps=list(meta["steps"]),
            drifts=[list(d) for d in meta["drifts"]],
            chosen_step=meta["chosen_step"],
        )


def drift(previous: np.ndarray, current: np.ndarray) -> float:
    """Relative change ``||current - previous||_F / ||previous||_F`` of a probe's latents."""
    previous, current = np.asarray(previous, np.float64), np.asarray(current, np.float64)
    return float(np.linalg.norm(current - previous)) / max(float(np.linalg.norm(previous)), 1e-12)


def probe_positions(num_stored: int, probe_size: int) -> np.ndarray:
    """Head-relative positions (0 = oldest) of a probe spread evenly over what is stored."""
    return np.unique(np.linspace(0, num_stored - 1, probe_size).round().astype(np.int32))


def check(rule: AutoFreeze, monitor: Monitor, step: int, latents: np.ndarray) -> tuple[Monitor, bool]:
    """Record the probe's ``latents`` ``(seeds, probe_size, latent_dim)`` after ``step``
    agent steps; returns the new monitor and whether to freeze now (on the largest
    drift among the seeds)."""
    latents = np.asarray(latents, np.float32)
    steps, drifts = list(monitor.steps), [list(d) for d in monitor.drifts]
    if monitor.latents is not None:
        steps.append(step)
        drifts.append([drift(p, c) for p, c in zip(monitor.latents, latents)])
    freeze = rule.decide(step, [max(d) for d in drifts])
    new = dataclasses.replace(
        monitor, latents=latents, steps=steps, drifts=drifts, chosen_step=step if freeze else None
    )
    return new, freeze
