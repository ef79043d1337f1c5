#!/usr/bin/env python
"""walker_walk with SEER to 500k env steps on this machine's CPU (#8).

    nohup python experiments/studies/walker_cpu.py > logs/walker_cpu.log 2>&1 &   # start or resume
    python experiments/studies/walker_cpu.py --collect-only                        # rewrite the results

The run: CURL-SAC + SEER with the method spec's settings (action repeat 2, batch 128,
freeze at 10k agent steps, ``num_copies`` 4, 3 GB replay budget), evaluated every 50k
env steps (10 episodes). The Q and actor heads multiply in bfloat16 with float32
accumulation (``--matmul-dtype bfloat16``, what a float32 product does by default on a
TPU): on this CPU's AMX units that halves the latent update (docs/performance.md); the
rendered images, the encoder and everything stored are as in float32 runs. It
checkpoints every 20k env steps and resumes from the last checkpoint when started
again, so it can span sessions. Every process start is logged in
``RUN_DIR/processes.jsonl`` with a heartbeat, so the wall-clock lost to interruptions
(work after the last checkpoint, redone on resume) is counted too.

Writes ``docs/results/walker_walk_cpu.json`` (curve, returns at 100k and 500k, hours and
agent steps per second before and after the freeze, peak memory, replay capacities,
and the wall-clock plain CURL-SAC would need, from this run's measured per-step cost
before the freeze) and ``docs/results/walker_walk_cpu.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from seer_jax import platform
from seer_jax.checkpoint import RunCheckpointer
from seer_jax.logging import read_eval

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TARGET_RETURN, TARGET_HOURS = 900, 4.0


def heartbeat(path: str, every_s: float = 30.0) -> None:
    """Append this process's start to ``path`` and keep its last-alive time current."""
    entries = []
    if os.path.exists(path):
        with open(path) as f:
            entries = [json.loads(line) for line in f if line.strip()]
    me = {"start": time.time(), "alive": time.time(), "pid": os.getpid()}
    entries.append(me)

    def write() -> None:
        me["alive"] = time.time()
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in entries)
        os.replace(tmp, path)

    def loop() -> None:
        while True:
            time.sleep(every_s)
            write()

    write()
    threading.Thread(target=loop, daemon=True).start()


def collect(run_dir: str, env_steps: int) -> dict:
    curve = [
        {"env_steps": r["env_steps"], "return_mean": r["return_mean"], "return_std": r["return_std"]}
        for r in read_eval(run_dir)
    ]
    summary = {}
    if os.path.exists(os.path.join(run_dir, "summary.json")):
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    processes = []
    if os.path.exists(os.path.join(run_dir, "processes.jsonl")):
        with open(os.path.join(run_dir, "processes.jsonl")) as f:
            processes = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = json.load(f)

    def at(step: int) -> float | None:
        return next((r["return_mean"] for r in curve if r["env_steps"] == step), None)

    out: dict = {
        "task": "walker_walk",
        "finished": bool(summary),
        "target_env_steps": env_steps,
        "action_repeat": cfg["action_repeat"],
        "batch_size": cfg["batch_size"],
        "freeze_step": cfg["freeze_step"],
        "num_copies": cfg["num_copies"],
        "matmul_dtype": cfg.get("matmul_dtype", "float32"),
        "env_steps": [r["env_steps"] for r in curve],
        "eval_return_mean": [r["return_mean"] for r in curve],
        "eval_return_std": [r["return_std"] for r in curve],
        "eval_return_mean_100k": at(100_000),
        "eval_return_mean_500k": at(500_000),
        "processes": len(processes),
        "hours_all_processes": sum(p["alive"] - p["start"] for p in processes) / 3600,
    }
    # The clocks, step counts and capacities come from the latest checkpoint, finished run
    # or not: train() writes one at the end of the run too.
    latest = RunCheckpointer(run_dir).latest_meta()
    if latest is not None:
        meta = latest[1]
        phase_time, phase_steps, capacity = meta["phase_time"], meta["phase_steps"], meta["capacity"]
        total_agent_steps = env_steps // cfg["action_repeat"]
        pixel_step_s = phase_time["images"] / max(phase_steps["images"], 1)

        def rate(name: str) -> float | None:
            return phase_steps[name] / phase_time[name] if phase_steps.get(name) and phase_time.get(name) else None

        out.update(
            agent_steps_done=int(phase_steps["images"] + phase_steps.get("latents", 0)),
            hours_before_freeze=phase_time["images"] / 3600,
            hours_after_freeze=phase_time.get("latents", 0.0) / 3600,
            hours_total=meta["wall_clock_s"] / 3600,
            agent_steps_per_s_before_freeze=rate("images"),
            agent_steps_per_s_after_freeze=rate("latents"),
            peak_memory_mb=meta.get("peak_rss_mb"),
            replay_capacity_before_freeze=capacity["images"],
            replay_capacity_after_freeze=capacity.get("latents"),
            # Plain CURL-SAC runs every agent step at the pre-freeze cost; the average over
            # the pixel phase includes the update-free warm-up steps, so this is a lower bound.
            plain_curl_sac_hours_estimate=pixel_step_s * total_agent_steps / 3600,
            target={"eval_return_500k": TARGET_RETURN, "hours_total": TARGET_HOURS},
        )
        if summary:
            out["target_met"] = (out["eval_return_mean_500k"] or 0) >= TARGET_RETURN and out[
                "hours_total"
            ] <= TARGET_HOURS
    out.update(platform.provenance())
    return out


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.errorbar(result["env_steps"], result["eval_return_mean"], yerr=result["eval_return_std"], marker="o", ms=3)
    ax.axvline(result["freeze_step"] * result["action_repeat"], color="r", ls="--", lw=0.8, label="freeze")
    ax.axhline(TARGET_RETURN, color="k", ls=":", label=f"target {TARGET_RETURN}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return (10 episodes)")
    ax.set_title("walker_walk, CURL-SAC + SEER on a 2-core CPU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-steps", type=int, default=500_000)
    p.add_argument("--eval-every", type=int, default=50_000)
    p.add_argument("--checkpoint-every", type=int, default=20_000)
    p.add_argument("--run-dir", default=os.path.join(ROOT, "runs", "walker_cpu"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results"))
    p.add_argument("--no-progress", action="store_true")
    # For a quick look at the script itself; the #8 run uses the defaults.
    p.add_argument("--freeze-step", type=int, default=None, help="default: the spec's 10k agent steps")
    p.add_argument("--batch-size", type=int, default=None, help="default: 128")
    p.add_argument("--init-steps", type=int, default=None, help="default: 1000")
    p.add_argument("--replay-budget-mb", type=float, default=None, help="default: 3000")
    p.add_argument(
        "--matmul-dtype",
        choices=["float32", "bfloat16"],
        default="bfloat16",
        help="the heads' products; default: bfloat16",
    )
    p.add_argument("--collect-only", action="store_true")
    args = p.parse_args()
    if not args.collect_only:
        from seer_jax.train import TrainConfig, train

        os.makedirs(args.run_dir, exist_ok=True)
        heartbeat(os.path.join(args.run_dir, "processes.jsonl"))
        train(
            TrainConfig(
                task="walker_walk",
                env_steps=args.env_steps,
                eval_every=args.eval_every,
                checkpoint_every=args.checkpoint_every,
                run_dir=args.run_dir,
                progress=not args.no_progress,
                freeze_step=args.freeze_step,
                batch_size=args.batch_size,
                init_steps=args.init_steps,
                replay_budget_mb=args.replay_budget_mb,
                matmul_dtype=args.matmul_dtype,
            )
        )
    result = collect(args.run_dir, args.env_steps)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "walker_walk_cpu.json"), "w") as f:
        json.dump(result, f, indent=2)
    plot(result, os.path.join(args.out, "walker_walk_cpu.png"))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    return 0


if __name__ == "__main__":
    platform.run_main(main)
