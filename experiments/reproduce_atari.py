#!/usr/bin/env python
"""Reproduce the SEER paper's Atari table: Rainbow (DER) + SEER at 500k agent steps.

    python experiments/reproduce_atari.py                         # all 8 games, SEER, then the baseline
    python experiments/reproduce_atari.py --games alien krull     # train some games (the table keeps all)
    python experiments/reproduce_atari.py --variants seer         # SEER only
    python experiments/reproduce_atari.py --collect-only          # rewrite the results from the runs

Per game: DER + SEER for 500k agent steps (2M frames), freeze at agent step 50,004,
seeds 0, 1, 2, with the paper's constrained memory: the bytes of 10k image transitions,
which hold ~30k latent transitions after the freeze; then the same without SEER (plain
DER in the same memory), the paper's comparison. All SEER games run before the first
baseline. Seeds train one process at a time by default (``--seeds-per-process 3`` trains
a game's seeds together on a vmapped seed axis): on two CPU cores both give the same
summed throughput (``docs/results/bench_seeds.json``), and one SEER seed finishes in
about 2 h (1.8-2.5 h measured on a 2-core AMD EPYC) where three together take ~6 h, longer
than a working session. A baseline seed updates the encoder at every one of its 500k
agent steps and takes ~2-3.3 h (2.08 h measured on a 2-core AMD EPYC, 3.06 and 3.30 h
on a 2-core Intel Xeon).

Each seed trains in ``runs/atari_500k/GAME-VARIANT/seedS``. A finished seed is skipped
and an interrupted one resumes from its last checkpoint (every 50k agent steps), so the
script can be stopped and started again at any time. Finished seeds are also recorded in
``docs/results/atari_500k.json`` (summary and curve): a fresh checkout without
``runs/`` keeps them and trains only the seeds that are not there. After each finished
seed the results are rewritten:

* ``docs/results/atari_500k.csv``: game, variant, seed, final score, score at 100k,
  human-normalised final score, wall-clock hours, replay capacity before/after the freeze;
* ``docs/results/atari_500k.json``: the same plus every evaluation curve;
* ``docs/results/atari_500k.png`` (curves) and ``docs/atari_500k.md`` (the table beside
  the paper's numbers, the games that remain).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from experiments.common import VARIANTS, plot_games, score_at, seed_dir, seed_result, train_group
from seer_jax import platform
from seer_jax.envs.atari import human_normalized, reference_scores
from seer_jax.settings import ATARI_IMAGE_TRANSITION_BYTES, CONV_INITS, DEFAULT_CONV_INIT

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# The paper's table: the games the reference table gives a Rainbow + SEER score for, in its order.
GAMES = [g for g, r in reference_scores().items() if "rainbow_seer_paper" in r]
# The paper's constrained buffer: the memory of 10k image transitions.
CONSTRAINED_MB = 10_000 * ATARI_IMAGE_TRANSITION_BYTES / 2**20
CSV_FIELDS = [
    "game",
    "variant",
    "seed",
    "finished",
    "final_score",
    "score_100k",
    "human_normalized_final",
    "wall_clock_h",
    "capacity_before_freeze",
    "capacity_after_freeze",
    "seeds_in_process",
    "finished_utc",
]


# The settings a recorded table must share with this start to be continued by it:
# the table's key -> (the flag, its argparse name).
SETTINGS = {
    "agent_steps": ("--agent-steps", "agent_steps"),
    "freeze_step": ("--freeze-step", "freeze_step"),
    "replay_budget_mb": ("--budget-mb", "budget_mb"),
    "eval_every": ("--eval-every", "eval_every"),
    "eval_episodes": ("--eval-episodes", "eval_episodes"),
}


def recorded(path: str, args) -> dict:
    """The finished seeds of an earlier ``atari_500k.json``: ``{"game/variant/seed": (row,
    curve)}`` (empty when there is none). Raises ``SystemExit`` with what to do when that
    table was made with other settings (continuing it would mix them, rewriting it would
    drop its rows)."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        old = json.load(f)
    differ = [
        f"{flag} {old[key]} (now {getattr(args, name)})"
        for key, (flag, name) in SETTINGS.items()
        if old.get(key) is not None and not math.isclose(float(old[key]), float(getattr(args, name)))
    ]
    # The encoder's initialisation (a table from before the option used the default).
    if old.get("conv_init", DEFAULT_CONV_INIT) != args.conv_init:
        differ.append(f"--conv-init {old.get('conv_init', DEFAULT_CONV_INIT)} (now {args.conv_init})")
    if differ:
        raise SystemExit(
            f"error: {path} was made with {', '.join(differ)}; run with those settings to continue it, "
            "or give another --out (and --runs) for a table with these."
        )
    out = {}
    for row in old.get("rows", []):
        if row.get("finished"):
            key = f"{row['game']}/{row['variant']}/{row['seed']}"
            out[key] = (row, old.get("curves", {}).get(key, []))
    return out


def collect(args, earlier: dict) -> dict:
    """The table from the seeds' run folders; a seed finished in ``earlier`` (see
    :func:`recorded`) whose folder is gone or unfinished keeps its recorded row. The table
    always covers every game and variant (and every recorded seed), whatever ``--games``,
    ``--variants`` and ``--seeds`` selected for training, so that no rewrite drops a row."""
    import datetime

    import numpy as np

    refs = reference_scores()
    rows, curves, games = [], {}, {}
    seeds = sorted(set(args.seeds) | {int(key.rsplit("/", 1)[1]) for key in earlier})
    for game in GAMES:
        g = games[game] = {"paper_rainbow_seer": refs[game].get("rainbow_seer_paper"), "variants": {}}
        g["paper_human_normalized"] = (
            human_normalized(game, g["paper_rainbow_seer"], refs) if g["paper_rainbow_seer"] is not None else None
        )
        for variant in VARIANTS:
            finals = []
            for seed in seeds:
                key = f"{game}/{variant}/{seed}"
                run_dir = seed_dir(args.runs, game, variant, seed, seeds, seed_folders=True)
                r = seed_result(run_dir)
                if not r["finished"] and key in earlier:
                    row, curve = earlier[key]
                    rows.append(row)
                    curves[key] = curve
                    finals.append(row["final_score"])
                    continue
                s = r["summary"]
                final = s.get("final_eval_return_mean") if r["finished"] else None
                if final is not None:
                    finals.append(final)
                curves[key] = [{"env_steps": c["env_steps"], "return_mean": c["return_mean"]} for c in r["curve"]]
                done_at = None
                if r["finished"]:
                    mtime = os.path.getmtime(os.path.join(run_dir, "summary.json"))
                    done_at = datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%d %H:%M")
                rows.append(
                    {
                        "game": game,
                        "variant": variant,
                        "seed": seed,
                        "finished": r["finished"],
                        "final_score": final,
                        "score_100k": score_at(r["curve"], 100_000),
                        "human_normalized_final": None if final is None else human_normalized(game, final, refs),
                        "wall_clock_h": None if not s else s["wall_clock_s"] / 3600,
                        "capacity_before_freeze": s.get("capacity_images"),
                        "capacity_after_freeze": s.get("capacity_latents"),
                        "seeds_in_process": s.get("seeds_in_process", 1) if s else None,
                        "finished_utc": done_at,
                    }
                )
            g["variants"][variant] = {
                "seeds_finished": len(finals),
                "mean": float(np.mean(finals)) if finals else None,
                "std": float(np.std(finals)) if finals else None,
                "human_normalized_mean": human_normalized(game, float(np.mean(finals)), refs) if finals else None,
            }
    return {
        "agent_steps": args.agent_steps,
        "freeze_step": args.freeze_step,
        "replay_budget_mb": args.budget_mb,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "conv_init": args.conv_init,
        "seeds": seeds,
        "games": games,
        "rows": rows,
        "curves": curves,
        **platform.provenance(),
    }


def write_csv(result: dict, path: str) -> None:
    # Scores are written in full to three decimals (an evaluation mean such as 4517.5 must
    # not print as 4518, nor 13920 as 1.392e+04); ratios and hours keep four significant digits.
    scores = ("final_score", "score_100k")

    def cell(k, v):
        if not isinstance(v, float):
            return "" if v is None else v
        return f"{v:.3f}".rstrip("0").rstrip(".") if k in scores else f"{v:.4g}"

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for row in result["rows"]:
            w.writerow({k: cell(k, row[k]) for k in CSV_FIELDS})


def plot(result: dict, path: str) -> None:
    games = result["games"]
    plot_games(
        path,
        {
            game: {v: {s: result["curves"].get(f"{game}/{v}/{s}", []) for s in result["seeds"]} for v in VARIANTS}
            for game in games
        },
        {game: (g["paper_rainbow_seer"], "Rainbow+SEER, paper") for game, g in games.items()},
        result["freeze_step"],
        result["agent_steps"],
    )


def write_page(result: dict, path: str) -> None:
    def f(x, d=1):
        return "—" if x is None else f"{x:,.{d}f}"

    n = len(result["seeds"])

    def score(v: dict) -> str:
        """A variant's cell: mean ± std over its finished seeds (the mean alone for one
        seed) and, until all n are in, how many there are."""
        k = v.get("seeds_finished", 0)
        if v.get("mean") is None:
            return "—"
        cell = f(v["mean"]) if k == 1 else f"{f(v['mean'])} ± {f(v['std'])}"
        return cell if k == n else f"{cell} ({k}/{n} seeds)"

    lines = [
        "# The SEER paper's Atari table at 500k agent steps",
        "",
        "Generated by `experiments/reproduce_atari.py` from the runs; numbers beside this page in",
        "`results/atari_500k.csv` (per seed) and `results/atari_500k.json` (with curves).",
        f"DER + SEER with the freeze at agent step {result['freeze_step']:,}, {result['agent_steps']:,} agent steps,",
        f"seeds {', '.join(map(str, result['seeds']))}, replay memory of "
        f"{result['replay_budget_mb'] * 2**20 / ATARI_IMAGE_TRANSITION_BYTES:,.0f} image transitions",
        f"({result['replay_budget_mb']:.1f} MB); the baseline is plain DER in the same memory. Scores are the",
        f"mean over each seed's final evaluation ({result['eval_episodes']} full games, noise-free network, epsilon 0.001),",
        "then the mean ± std over seeds; HNS = human-normalised score. The CSV gives each seed's",
        "wall-clock, the seeds its process trained together, and when it finished (UTC); the",
        "command, date and machine below are the latest rewrite's.",
        *(
            [f"The encoder starts from the `{result['conv_init']}` initialisation (see `--conv-init`)."]
            if result.get("conv_init", DEFAULT_CONV_INIT) != DEFAULT_CONV_INIT
            else []
        ),
        "",
        f"`{result['command']}`, {result['date']}, {result['machine']}.",
        "",
        "| game | paper: Rainbow + SEER | ours: DER + SEER | HNS (ours / paper) | ours: DER, same memory | at or above the paper |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    at_least, done, der_done, der_seeds = 0, 0, 0, 0
    remaining = []
    for game, g in result["games"].items():
        s = g["variants"].get("seer", {})
        d = g["variants"].get("der", {})
        paper = g["paper_rainbow_seer"]
        full = s.get("seeds_finished") == n
        done += full
        ok = full and paper is not None and s["mean"] >= paper
        at_least += ok
        if not full:
            remaining.append(game)
        der_seeds += d.get("seeds_finished", 0)
        der_done += d.get("seeds_finished") == n
        lines.append(
            f"| {game} | {f(paper)} | {score(s)} | {f(s.get('human_normalized_mean'), 3)} / "
            f"{f(g['paper_human_normalized'], 3)} | {score(d)} | {('yes' if ok else 'no') if full else '…'} |"
        )
    lines += [
        "",
        f"Games finished (all {n} SEER seed{'s' if n > 1 else ''}): {done} of {len(result['games'])}; "
        f"at or above the paper's mean: {at_least} (target: at least 6 of 8).",
        "SEER games remaining: " + (", ".join(remaining) if remaining else "none") + ".",
        f"Baseline (DER without SEER, same memory) games finished: {der_done} of {len(result['games'])} "
        f"({der_seeds} of {n * len(result['games'])} seeds).",
        "",
        "![learning curves](results/atari_500k.png)",
        "",
        "The reading of these numbers (what differs from the paper and what was checked) is in",
        "`docs/results/notes.md`.",
        "",
    ]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", nargs="+", choices=GAMES, default=GAMES, metavar="GAME", help=", ".join(GAMES))
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["seer", "der"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--seeds-per-process",
        type=int,
        default=1,
        help="seeds trained together in one process (a vmapped seed axis; default 1: one at a time)",
    )
    p.add_argument("--agent-steps", type=int, default=500_000)
    p.add_argument(
        "--freeze-step", type=int, default=VARIANTS["seer"]["freeze_step"], help="SEER's freeze (agent steps)"
    )
    p.add_argument("--eval-every", type=int, default=50_000, help="agent steps between evaluations (default 50000)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument(
        "--budget-mb", type=float, default=CONSTRAINED_MB, help="replay memory (default: 10k image transitions)"
    )
    p.add_argument(
        "--conv-init",
        choices=CONV_INITS,
        default=DEFAULT_CONV_INIT,
        help="the DER encoder's initialisation (default: Flax's LeCun-normal; pytorch: the released code's)",
    )
    p.add_argument("--checkpoint-every", type=int, default=50_000, help="agent steps between checkpoints")
    p.add_argument("--runs", default=os.path.join(ROOT, "runs", "atari_500k"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs"))
    p.add_argument("--collect-only", action="store_true")
    args = p.parse_args()
    if args.seeds_per_process < 1:
        p.error(f"--seeds-per-process must be at least 1, got {args.seeds_per_process}")
    results_dir = os.path.join(args.out, "results")
    os.makedirs(results_dir, exist_ok=True)
    table = os.path.join(results_dir, "atari_500k.json")
    earlier = recorded(table, args)

    def write() -> dict:
        result = collect(args, earlier)
        # The record of finished seeds: written whole or not at all (a stop mid-write
        # must not lose the seeds recorded before).
        with open(table + ".tmp", "w") as f:
            json.dump(result, f, indent=2)
        os.replace(table + ".tmp", table)
        write_csv(result, os.path.join(results_dir, "atari_500k.csv"))
        plot(result, os.path.join(results_dir, "atari_500k.png"))
        write_page(result, os.path.join(args.out, "atari_500k.md"))
        return result

    if not args.collect_only:
        # Every SEER game first: the table's target; the baselines as compute allows.
        k = args.seeds_per_process
        for variant in args.variants:
            for game in args.games:
                for chunk in [args.seeds[i : i + k] for i in range(0, len(args.seeds), k)]:
                    todo = [s for s in chunk if f"{game}/{variant}/{s}" not in earlier]
                    if not todo:
                        print(f"skipped: {game} {variant} seeds {chunk}, finished and recorded in {table}", flush=True)
                        continue
                    trained = train_group(
                        args.runs,
                        game,
                        variant,
                        todo,
                        seed_folders=True,
                        freeze_step=args.freeze_step,
                        env_steps=args.agent_steps,
                        replay_budget_mb=args.budget_mb,
                        eval_every=args.eval_every,
                        eval_episodes=args.eval_episodes,
                        checkpoint_every=args.checkpoint_every,
                        conv_init=None if args.conv_init == DEFAULT_CONV_INIT else args.conv_init,
                    )
                    if trained:
                        write()
    result = write()
    print(json.dumps({g: {v: d["mean"] for v, d in r["variants"].items()} for g, r in result["games"].items()}))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
