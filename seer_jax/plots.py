"""Pictures of a run: the learning curve a run folder shows at every evaluation.

Owns: :func:`learning_curve` (one seed: evaluation return against env steps, training
episode returns beside it, the freeze marked) and :func:`seeds_learning_curve` (every seed
and their mean). Both read only the run folders' CSV files, so they also draw a finished
or stopped run: ``python -m seer_jax.plots RUN_DIR``.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

from seer_jax.logging import read_eval

PNG = "learning_curve.png"


def _read_train(run_dir: str) -> list[dict[str, Any]]:
    path = os.path.join(run_dir, "train.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _train_returns(rows: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in rows:
        try:
            x, y = int(float(row["env_steps"])), float(row.get("episode_return") or "nan")
        except (KeyError, ValueError):
            continue
        if math.isfinite(y):
            xs.append(x)
            ys.append(y)
    return xs, ys


def _freeze_env_steps(rows: list[dict[str, Any]]) -> int | None:
    """The first logged env step of the latent phase (the freeze, to within ``log_every``)."""
    for row in rows:
        if row.get("phase") == "latents":
            return int(float(row["env_steps"]))
    return None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve(run_dir: str, title: str = "", freeze_env_steps: int | None = None) -> str | None:
    """Write ``run_dir/learning_curve.png`` from the run folder's CSVs: the evaluation
    return (mean ± std over its episodes) against env steps, the training episodes' returns
    beside it, a dashed line at the freeze (``freeze_env_steps``, else where ``train.csv``'s
    phase turns to latents). Returns the path, or None when there is no evaluation yet."""
    evals = read_eval(run_dir)
    if not evals:
        return None
    rows = _read_train(run_dir)
    freeze = freeze_env_steps if freeze_env_steps is not None else _freeze_env_steps(rows)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    tx, ty = _train_returns(rows)
    if tx:
        ax.plot(tx, ty, color="0.6", lw=0.8, label="training episodes")
    x = [r["env_steps"] for r in evals]
    m = [r["return_mean"] for r in evals]
    s = [r.get("return_std", 0.0) for r in evals]
    ax.fill_between(x, [a - b for a, b in zip(m, s, strict=True)], [a + b for a, b in zip(m, s, strict=True)],
                    color="C0", alpha=0.2, lw=0)  # fmt: skip
    ax.plot(x, m, "o-", color="C0", ms=3, label="evaluation (mean ± std)")
    _finish(ax, freeze, title or os.path.basename(os.path.abspath(run_dir)))
    path = os.path.join(run_dir, PNG)
    _save(fig, path)
    plt.close(fig)
    return path


def seeds_learning_curve(run_dir: str, seed_dirs: dict[int, str], title: str = "") -> str | None:
    """Write ``run_dir/learning_curve.png`` for a run of several seeds: each seed's
    evaluation curve and their mean (at the env steps every seed has evaluated)."""
    curves = {seed: read_eval(d) for seed, d in seed_dirs.items()}
    curves = {seed: c for seed, c in curves.items() if c}
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (seed, c) in enumerate(sorted(curves.items())):
        ax.plot([r["env_steps"] for r in c], [r["return_mean"] for r in c], color=f"C{i % 10}", lw=0.9, alpha=0.7,
                label=f"seed {seed}")  # fmt: skip
    common = sorted(set.intersection(*({r["env_steps"] for r in c} for c in curves.values())))
    if common:
        by_step = [{r["env_steps"]: r["return_mean"] for r in c} for c in curves.values()]
        mean = [sum(b[x] for b in by_step) / len(by_step) for x in common]
        ax.plot(common, mean, "o-", color="k", lw=2, ms=3, label=f"mean of {len(curves)} seeds")
    freezes = [f for f in (_freeze_env_steps(_read_train(d)) for d in seed_dirs.values()) if f is not None]
    _finish(ax, min(freezes) if freezes else None, title or os.path.basename(os.path.abspath(run_dir)))
    path = os.path.join(run_dir, PNG)
    _save(fig, path)
    plt.close(fig)
    return path


def _finish(ax, freeze: int | None, title: str) -> None:
    if freeze is not None:
        ax.axvline(freeze, color="r", ls="--", lw=0.9, label=f"freeze ({freeze:,} env steps)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.figure.tight_layout()


def _save(fig, path: str) -> None:
    tmp = path + ".tmp.png"  # written whole, then moved: a viewer never sees half a file
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)


if __name__ == "__main__":
    import sys

    for d in sys.argv[1:] or ["."]:
        seeds = {int(n[4:]): os.path.join(d, n) for n in os.listdir(d) if n.startswith("seed") and n[4:].isdigit()}
        out = seeds_learning_curve(d, seeds) if seeds else learning_curve(d)
        print(out or f"{d}: no evaluation yet")
