#!/usr/bin/env python
"""Return at the end of a run against the freeze step, from one plain (no-freeze) run.

    python experiments/studies/ablate_freeze.py --src runs/learn/cartpole_swingup-s0-nofreeze \
        --freeze-steps 4000 6000 8000 10000

The plain run (``learn_dmc.py --no-freeze --keep-checkpoints 20``) saves a checkpoint
every 1,000 agent steps. A SEER run that freezes at agent step T is identical to the plain
run up to T (same seed, deterministic on CPU), so each variant is forked from the plain
run's newest checkpoint before T (``experiments/fork_run.py``) and trains only from
there: mostly the cheap latent phase. Forks go to ``runs/ablate/TASK-sSEED-freezeT``;
finished ones are skipped, interrupted ones resume. Results:
``docs/results/ablate_freeze_TASK.json`` (final and per-evaluation returns per freeze
step, beside the plain run's) and a plot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from seer_jax import platform
from seer_jax.logging import read_eval

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="a plain (--no-freeze) run folder with checkpoints kept")
    p.add_argument("--freeze-steps", type=int, nargs="+", required=True)
    p.add_argument("--runs", default=os.path.join(ROOT, "runs", "ablate"))
    p.add_argument("--collect-only", action="store_true")
    args = p.parse_args()
    from experiments.fork_run import fork
    from seer_jax.train import TrainConfig, train

    with open(os.path.join(args.src, "config.json")) as f:
        src_cfg = json.load(f)
    task, seed = src_cfg["task"], src_cfg["seed"]
    dirs = {t: os.path.join(args.runs, f"{task}-s{seed}-freeze{t}") for t in args.freeze_steps}
    if not args.collect_only:
        have = sorted(int(d) for d in os.listdir(os.path.join(args.src, "checkpoints")) if d.isdigit())
        for t, run_dir in dirs.items():
            if os.path.exists(os.path.join(run_dir, "summary.json")):
                continue
            if not os.path.exists(run_dir):
                before = [s for s in have if s <= t]
                if not before:
                    print(f"freeze {t}: the plain run has no checkpoint before it yet; skipped")
                    continue
                fork(args.src, before[-1], run_dir, freeze_step=t)
                print(f"freeze {t}: forked at agent step {before[-1]}", flush=True)
            train(TrainConfig.from_run_dir(run_dir))
    variants = {}
    for t, run_dir in dirs.items():
        c = read_eval(run_dir)
        variants[str(t)] = {
            "curve": c,
            "finished": os.path.exists(os.path.join(run_dir, "summary.json")),
            "final_return": c[-1]["return_mean"] if c else None,
        }
    plain = read_eval(args.src)
    out = {
        "task": task,
        "seed": seed,
        "batch_size": src_cfg["batch_size"],
        "env_steps": src_cfg["env_steps"],
        "action_repeat": src_cfg["action_repeat"],
        "freeze_steps": variants,
        "plain": {
            "curve": plain,
            "finished": os.path.exists(os.path.join(args.src, "summary.json")),
            "final_return": plain[-1]["return_mean"] if plain else None,
        },
        **platform.provenance(),
    }
    out_path = os.path.join(ROOT, "docs", "results", f"ablate_freeze_{task}.json")
    with open(out_path, "w") as f:
        json.dump(out, f, indent=2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if plain:
        ax.plot([r["env_steps"] for r in plain], [r["return_mean"] for r in plain], "k-", label="no freeze")
    for t, v in variants.items():
        if v["curve"]:
            ax.plot(
                [r["env_steps"] for r in v["curve"]],
                [r["return_mean"] for r in v["curve"]],
                label=f"freeze at agent step {t} ({int(t) * src_cfg['action_repeat']:,} env steps)",
            )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{task}, seed {seed}: SEER freeze step ablation", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path.replace(".json", ".png"), dpi=100)
    print(json.dumps({k: v["final_return"] for k, v in variants.items()} | {"plain": out["plain"]["final_return"]}))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
