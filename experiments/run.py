#!/usr/bin/env python
"""Train CURL-SAC with SEER on a DeepMind Control task from pixels.

    python experiments/run.py --task walker_walk             # the spec's defaults
    python experiments/run.py --preset quick                 # a few minutes on a CPU
    python experiments/run.py --task cartpole_swingup --no-freeze   # plain CURL-SAC

Writes a run folder (config.json, train.csv, eval.csv, TensorBoard events in tb/,
summary.json) and prints a one-line summary at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from seer_jax import platform  # noqa: E402

PRESETS = {
    # A quick look: cartpole, small batch, early freeze; a few minutes on a 2-core CPU.
    "quick": dict(
        task="cartpole_swingup", env_steps=16_000, batch_size=32, init_steps=250, freeze_step=800,
        eval_every=8_000, eval_episodes=2, log_every=100,
    ),
}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from seer_jax.train import TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(
        description="CURL-SAC + SEER on DeepMind Control from pixels.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--task", default=d.task, help="domain_task, e.g. walker_walk, cartpole_swingup, cheetah_run")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named set of defaults (flags given explicitly win)")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, help="random seed (same seed, same run on CPU)")
    p.add_argument("--env-steps", type=positive_int, default=d.env_steps, help="environment steps to train for")
    p.add_argument("--action-repeat", type=positive_int, default=None, help="default: PlaNet value for the task (cartpole 8; reacher, cheetah, ball_in_cup 4; finger, walker 2)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="update batch size")
    p.add_argument("--replay-budget-mb", type=positive_float, default=d.replay_budget_mb, help="replay memory budget in MB; sets the capacity before and after the freeze")
    p.add_argument("--freeze-step", type=positive_int, default=d.freeze_step, help="agent step at which SEER freezes the encoder")
    p.add_argument("--no-freeze", action="store_true", help="never freeze: plain CURL-SAC (the baseline)")
    p.add_argument("--num-copies", type=positive_int, default=d.num_copies, help="random crops stored per observation after the freeze")
    p.add_argument("--latent-dtype", choices=["float32", "bfloat16"], default=d.latent_dtype, help="storage type of latents after the freeze (bfloat16 doubles capacity)")
    p.add_argument("--init-steps", type=non_negative_int, default=d.init_steps, help="random-action agent steps before the first update")
    p.add_argument("--eval-every", type=non_negative_int, default=d.eval_every, help="evaluate every N env steps (0: only at the end)")
    p.add_argument("--eval-episodes", type=positive_int, default=d.eval_episodes, help="episodes per evaluation (deterministic, centre crop)")
    p.add_argument("--log-every", type=positive_int, default=d.log_every, help="write training metrics every N agent steps")
    p.add_argument("--critic-lr", type=positive_float, default=None, help="critic learning rate (default 1e-3; cheetah_run 2e-4)")
    p.add_argument("--episode-length", type=positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", default=None, help="run folder (default runs/TASK-sSEED-TIME)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    return p


def config_from_args(argv: list[str] | None = None):
    from seer_jax.train import TrainConfig

    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = {a.dest for a in parser._actions if any(opt in (argv if argv is not None else sys.argv[1:]) for opt in a.option_strings)}
    values = {}
    if args.preset:
        values.update(PRESETS[args.preset])
    for f in dataclasses.fields(TrainConfig):
        if hasattr(args, f.name) and (f.name in explicit or f.name not in values):
            values[f.name] = getattr(args, f.name)
    if args.no_freeze:
        values["freeze_step"] = None
    values["progress"] = not args.no_progress
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> int:
    platform.configure_rendering()
    cfg = config_from_args(argv)
    from seer_jax.replay import ReplayBudgetError
    from seer_jax.train import ConfigError, train

    try:
        train(cfg.resolved())
    except (ConfigError, ReplayBudgetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    platform.reexec_with_fast_allocator()
    sys.exit(main())
