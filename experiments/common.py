"""Helpers shared by the experiment scripts: Atari experiment groups and their run folders
(``reproduce_atari.py``, ``studies/learn_atari.py``). Every results file's machine/date/command
block comes from ``seer_jax.platform.provenance()``.

A group is one (game, variant) trained for several seeds in one process (a vmapped seed
axis): its folder is ``RUNS/GAME-VARIANT`` with one ``seedS`` folder per seed (just the
group folder when there is one seed, unless ``seed_folders`` asks for ``seedS`` then too,
so that seeds trained one process at a time and together share one layout). A finished seed has ``summary.json``; an
interrupted group resumes from its last common checkpoint when trained again.
"""

from __future__ import annotations

import os
from typing import Any

from seer_jax.logging import read_eval

# The two variants every Atari experiment compares.
VARIANTS: dict[str, dict[str, Any]] = {"seer": dict(freeze_step=50_004), "der": dict(no_freeze=True)}
LABELS = {"seer": "DER + SEER", "der": "DER"}


def group_dir(runs: str, game: str, variant: str) -> str:
    return os.path.join(runs, f"{game}-{variant}")


def seed_dir(runs: str, game: str, variant: str, seed: int, seeds: list[int], seed_folders: bool = False) -> str:
    """Where ``train()`` writes ``seed`` of a group trained with ``seeds``."""
    g = group_dir(runs, game, variant)
    return os.path.join(g, f"seed{seed}") if len(seeds) > 1 or seed_folders else g


def finished(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, "summary.json"))


def train_group(
    runs: str,
    game: str,
    variant: str,
    seeds: list[int],
    freeze_step: int | None = None,
    seed_folders: bool = False,
    **config: Any,
) -> bool:
    """Train (or resume) one group unless every seed has finished; True when it trained.

    ``freeze_step``: the SEER variant's freeze (default 50,004 agent steps);
    ``seed_folders``: a single seed trains in ``seedS`` too (see :func:`seed_dir`);
    ``config``: further :class:`seer_jax.train.TrainConfig` fields (env_steps, ...)."""
    variant_config = dict(VARIANTS[variant])
    if variant == "seer" and freeze_step is not None:
        variant_config["freeze_step"] = freeze_step
    from seer_jax.train import TrainConfig, train

    if all(finished(seed_dir(runs, game, variant, s, seeds, seed_folders)) for s in seeds):
        return False
    run_dir = (
        group_dir(runs, game, variant)
        if len(seeds) > 1
        else seed_dir(runs, game, variant, seeds[0], seeds, seed_folders)
    )
    print(f"== {game} {LABELS[variant]} seeds {seeds} -> {run_dir}", flush=True)
    train(
        TrainConfig(
            task=game,
            seed=seeds[0],
            seeds=list(seeds) if len(seeds) > 1 else None,
            run_dir=run_dir,
            progress=False,
            **variant_config,
            **config,
        )
    )
    return True


def seed_result(run_dir: str) -> dict[str, Any]:
    """A seed's evaluation curve, whether it finished, and its summary (``{}`` if not)."""
    import json

    summary: dict[str, Any] = {}
    if finished(run_dir):
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    return {"curve": read_eval(run_dir), "finished": bool(summary), "summary": summary}


def score_at(curve: list[dict[str, Any]], env_steps: int) -> float | None:
    """The evaluation score logged at exactly ``env_steps`` (None when there is none)."""
    return next((r["return_mean"] for r in curve if r["env_steps"] == env_steps), None)


def plot_games(
    path: str,
    curves: dict[str, dict[str, dict[int, list[dict[str, Any]]]]],
    references: dict[str, tuple[float | None, str]],
    freeze_step: int,
    agent_steps: int,
    cols: int = 4,
) -> None:
    """Evaluation curves, one panel per game: ``curves[game][variant][seed]`` (rows with
    ``env_steps`` and ``return_mean``), a dotted line at ``references[game] = (score,
    label)``, a dashed one at the freeze; every x axis spans 0 to ``agent_steps``, so a
    game with no curve yet shows the same range as the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = list(curves)
    cols = max(1, min(cols, len(games)))
    nrows = max(1, (len(games) + cols - 1) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.4 * cols, 3.3 * nrows), squeeze=False)
    for ax in axes.flat[len(games) :]:
        ax.axis("off")
    for ax, game in zip(axes.flat, games, strict=False):
        for variant, color in (("seer", "C0"), ("der", "C1")):
            for i, curve in enumerate(c for c in curves[game].get(variant, {}).values() if c):
                ax.plot(
                    [r["env_steps"] for r in curve],
                    [r["return_mean"] for r in curve],
                    color=color,
                    alpha=0.6,
                    label=LABELS[variant] if i == 0 else None,
                )
        score, label = references.get(game, (None, ""))
        if score is not None:
            ax.axhline(score, color="k", ls=":", label=label)
        ax.axvline(freeze_step, color="r", ls="--", lw=0.8)
        ax.set_xlim(0, agent_steps)
        ax.set_title(game)
        ax.set_xlabel("agent steps")
        ax.set_ylabel("evaluation score")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


STATISTICS = "statistics.json"


def game_statistics(run_dir: str, games: int = 100, chunk: int = 20) -> dict[str, Any]:
    """The paper's statistics of a finished seed, computed once and kept in
    ``RUN_DIR/statistics.json``: ``final_100`` (the final agent over ``games`` fresh
    evaluation games), ``best_100`` (the agent of the best periodic evaluation, kept by
    ``--keep-best``, over the same games) and ``final_10`` (the run's own final
    evaluation). Games are played ``chunk`` at a time, seeded apart from the periodic
    evaluations' environments."""
    import json
    import time

    import jax
    import numpy as np

    path = os.path.join(run_dir, STATISTICS)
    if os.path.exists(path):
        with open(path) as f:
            kept = json.load(f)
        if kept.get("games") == games:
            return kept
    import orbax.checkpoint as ocp

    from seer_jax.checkpoint import RunCheckpointer, _leaf_name
    from seer_jax.evaluation import evaluate
    from seer_jax.train import TrainConfig, load_best_agent

    cfg = TrainConfig.from_run_dir(run_dir).resolved()
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    probe_env = cfg.setting.make_env(cfg, 0, False)
    agent = cfg.setting.make_agent(cfg, probe_env)
    probe_env.close()
    key = jax.random.PRNGKey(cfg.seed)
    ck = RunCheckpointer(run_dir)
    arrays = ck.manager.restore(ck.steps()[-1], args=ocp.args.Composite(arrays=ocp.args.StandardRestore()))["arrays"]
    template = agent.init(key)
    if summary.get("freeze_step") is not None:
        template = agent.freeze(template)
    stored = {_leaf_name(p): x for p, x in jax.tree_util.tree_leaves_with_path(arrays["agent"])}
    final = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(template),
        [stored[_leaf_name(p)] for p, _ in jax.tree_util.tree_leaves_with_path(template)],
    )
    best, record = load_best_agent(run_dir, agent, key)
    act = jax.jit(agent.act, static_argnums=3)
    out: dict[str, Any] = {"games": games, "best_agent": record, "final_10": summary["final_eval_return_mean"]}
    for name, state in (("final", final), ("best", best)):
        t0, returns = time.perf_counter(), []
        for start in range(0, games, chunk):
            base = (cfg.seed + 7_000_000 + start) % (2**31 - 2**20)
            envs = [cfg.setting.make_env(cfg, base + i, False) for i in range(min(chunk, games - start))]
            try:
                k = jax.random.fold_in(jax.random.PRNGKey(cfg.seed + 99), start)
                row = evaluate(act, state, envs, k, per_episode=True)
            finally:
                for e in envs:
                    e.close()
            returns += row["returns"]
        out[f"{name}_{games}"] = float(np.mean(returns))
        out[f"{name}_{games}_std_over_games"] = float(np.std(returns))
        out[f"{name}_{games}_seconds"] = time.perf_counter() - t0
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(path + ".tmp", path)
    return out
