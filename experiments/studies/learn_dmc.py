#!/usr/bin/env python
"""Learning check on DeepMind Control: train one or more seeds and write the curve.

    python experiments/studies/learn_dmc.py --task cartpole_swingup --env-steps 100000 \
        --freeze-step 4000 --batch-size 128 --seeds 0

Each seed trains in ``runs/learn/TASK-sSEED`` (a finished seed, one with summary.json,
is skipped; an interrupted one resumes from its last checkpoint). Results go to ``docs/results/learn_TASK.json`` (keys ``env_steps``,
``eval_return_mean``, ``eval_return_std``, ``freeze_step``, ``seeds`` plus per-seed
curves) and ``docs/results/learn_TASK.png``. ``--collect-only`` rewrites them from
whatever the run folders hold so far (partial curves included, marked as such).
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


def collect(args, run_dirs: dict[int, str]) -> dict:
    import numpy as np

    curves = {seed: read_eval(d) for seed, d in run_dirs.items()}
    finished = {seed: os.path.exists(os.path.join(d, "summary.json")) for seed, d in run_dirs.items()}
    # Seeds without any evaluation yet are left out (they appear once they have one).
    curves = {seed: c for seed, c in curves.items() if c}
    finished = {seed: finished[seed] for seed in curves}
    steps = sorted(set.intersection(*({int(r["env_steps"]) for r in c} for c in curves.values()))) if curves else []
    mean, std = [], []
    for s in steps:
        vals = [next(r["return_mean"] for r in curves[seed] if int(r["env_steps"]) == s) for seed in curves]
        # Across seeds when there are several; the evaluation episodes' spread for one.
        if len(vals) > 1:
            mean.append(float(np.mean(vals)))
            std.append(float(np.std(vals)))
        else:
            row = next(r for r in curves[next(iter(curves))] if int(r["env_steps"]) == s)
            mean.append(float(row["return_mean"]))
            std.append(float(row["return_std"]))
    summaries = {}
    for seed, d in run_dirs.items():
        p = os.path.join(d, "summary.json")
        if os.path.exists(p):
            with open(p) as f:
                s = json.load(f)
            summaries[seed] = {
                k: s[k]
                for k in (
                    "capacity_images",
                    "capacity_latents",
                    "hours_images",
                    "hours_latents",
                    "agent_steps_per_s_images",
                    "agent_steps_per_s_latents",
                    "wall_clock_s",
                )
            }
    return {
        "task": args.task,
        "env_steps": steps,
        "eval_return_mean": mean,
        "eval_return_std": std,
        "freeze_step": args.freeze_step,
        "batch_size": args.batch_size,
        "seeds": list(curves),
        "finished": all(finished.values()),
        "target_env_steps": args.env_steps,
        "per_seed": {
            str(seed): [
                {"env_steps": int(r["env_steps"]), "return_mean": r["return_mean"], "return_std": r["return_std"]}
                for r in c
            ]
            for seed, c in curves.items()
        },
        "per_seed_summary": {str(k): v for k, v in summaries.items()},
        **platform.provenance(),
    }


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for seed, curve in result["per_seed"].items():
        if curve:
            ax.plot([r["env_steps"] for r in curve], [r["return_mean"] for r in curve], alpha=0.4, label=f"seed {seed}")
    if result["env_steps"]:
        import numpy as np

        x, m, s = (np.asarray(result[k]) for k in ("env_steps", "eval_return_mean", "eval_return_std"))
        ax.plot(x, m, color="k", label="mean")
        ax.fill_between(x, m - s, m + s, color="k", alpha=0.1)
    fs = result["freeze_step"]
    if fs:
        ax.axvline(fs * result.get("action_repeat", 1), color="r", ls="--", label="freeze")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    what = f"CURL-SAC + SEER, freeze at agent step {fs}" if fs else "plain CURL-SAC (no freeze)"
    ax.set_title(f"{result['task']}: {what} (batch {result['batch_size']})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="cartpole_swingup")
    p.add_argument("--env-steps", type=int, default=100_000)
    p.add_argument("--freeze-step", type=int, default=4000)
    p.add_argument("--no-freeze", action="store_true")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--runs", default=os.path.join(ROOT, "runs", "learn"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results"))
    p.add_argument("--checkpoint-every", type=int, default=10_000, help="env steps between checkpoints")
    p.add_argument(
        "--keep-checkpoints",
        type=int,
        default=2,
        help="checkpoints kept per run (keep many to fork ablations from them)",
    )
    p.add_argument("--collect-only", action="store_true")
    args = p.parse_args()
    if args.no_freeze:
        args.freeze_step = None
    from seer_jax.envs.dmc import default_action_repeat
    from seer_jax.train import TrainConfig, train

    run_dirs = {
        s: os.path.join(args.runs, f"{args.task}-s{s}" + ("-nofreeze" if args.no_freeze else "")) for s in args.seeds
    }
    os.makedirs(args.out, exist_ok=True)
    name = f"learn_{args.task}" + ("_nofreeze" if args.no_freeze else "")

    def write():
        result = collect(args, run_dirs)
        result["action_repeat"] = default_action_repeat(args.task)
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(result, f, indent=2)
        plot(result, os.path.join(args.out, name + ".png"))
        return result

    if not args.collect_only:
        for seed, run_dir in run_dirs.items():
            if os.path.exists(os.path.join(run_dir, "summary.json")):
                print(f"seed {seed}: finished already ({run_dir})")
                continue
            ckpt = os.path.join(run_dir, "checkpoints")
            if os.path.exists(run_dir) and not (os.path.isdir(ckpt) and os.listdir(ckpt)):
                import shutil  # unfinished and never checkpointed: start it again

                shutil.rmtree(run_dir)
            # An unfinished run with checkpoints resumes from the newest one.
            train(
                TrainConfig(
                    task=args.task,
                    seed=seed,
                    env_steps=args.env_steps,
                    batch_size=args.batch_size,
                    freeze_step=args.freeze_step,
                    no_freeze=args.no_freeze,
                    eval_every=args.eval_every,
                    run_dir=run_dir,
                    progress=False,
                    checkpoint_every=args.checkpoint_every,
                    keep_checkpoints=args.keep_checkpoints,
                )
            )
            write()
    result = write()
    print(json.dumps({k: result[k] for k in ("env_steps", "eval_return_mean", "eval_return_std", "finished")}))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
