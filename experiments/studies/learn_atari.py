#!/usr/bin/env python
"""Learning check on Atari: DER + SEER (freeze at 50,004) and plain DER, 100k agent steps.

    python experiments/studies/learn_atari.py --games road_runner krull --seeds 0 1 2
    python experiments/studies/learn_atari.py --collect-only      # rewrite the results from the runs

The seeds of a (game, variant) train together in one process (a vmapped seed axis,
``--seeds``; ~15% more agent steps per second than one seed after another on a 2-core
CPU) in ``runs/learn_atari/GAME-VARIANT/seedS``; a finished run (summary.json) is
skipped, an interrupted one resumes from its last checkpoint, so the script can be
stopped and started again at any time. Results go to
``docs/results/learn_atari_100k.json`` (per game and variant: each seed's final
evaluation score and curve, beside DER's published 100k score) and
``docs/results/learn_atari_100k.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from experiments.common import VARIANTS, plot_games, seed_dir, seed_result, train_group
from seer_jax import platform

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def collect(args, run_dirs) -> dict:
    import numpy as np

    from seer_jax.envs.atari import reference_scores

    refs = reference_scores()
    games = {}
    for (game, variant, seed), run_dir in run_dirs.items():
        g = games.setdefault(game, {"der_published_100k": refs.get(game, {}).get("der_100k"), "variants": {}})
        v = g["variants"].setdefault(variant, {"seeds": [], "final": [], "finished": [], "curves": {}})
        r = seed_result(run_dir)
        curve, done = r["curve"], r["finished"]
        v["seeds"].append(seed)
        v["curves"][str(seed)] = curve
        v["finished"].append(done)
        v["final"].append(curve[-1]["return_mean"] if done and curve else None)
    for g in games.values():
        for v in g["variants"].values():
            finals = [x for x in v["final"] if x is not None]
            v["final_mean"] = float(np.mean(finals)) if finals else None
            v["final_std"] = float(np.std(finals)) if finals else None
    return {
        "agent_steps": args.agent_steps,
        "games": games,
        **platform.provenance(),
    }


def plot(result: dict, path: str) -> None:
    plot_games(
        path,
        {
            game: {v: {int(k): c for k, c in d["curves"].items()} for v, d in g["variants"].items()}
            for game, g in result["games"].items()
        },
        {game: (g["der_published_100k"], "DER published (100k)") for game, g in result["games"].items()},
        VARIANTS["seer"]["freeze_step"],
        result["agent_steps"],
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", nargs="+", default=["road_runner", "krull"])
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["seer", "der"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--agent-steps", type=int, default=100_000)
    p.add_argument("--runs", default=os.path.join(ROOT, "runs", "learn_atari"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results"))
    p.add_argument("--collect-only", action="store_true")
    args = p.parse_args()
    run_dirs = {
        (g, v, s): seed_dir(args.runs, g, v, s, args.seeds)
        for g in args.games
        for v in args.variants
        for s in args.seeds
    }
    os.makedirs(args.out, exist_ok=True)

    def write():
        result = collect(args, run_dirs)
        with open(os.path.join(args.out, "learn_atari_100k.json"), "w") as f:
            json.dump(result, f, indent=2)
        plot(result, os.path.join(args.out, "learn_atari_100k.png"))
        return result

    if not args.collect_only:
        for game in args.games:
            for variant in args.variants:
                if train_group(args.runs, game, variant, args.seeds, env_steps=args.agent_steps):
                    write()
    result = write()
    print(json.dumps({g: {v: d["final"] for v, d in r["variants"].items()} for g, r in result["games"].items()}))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
