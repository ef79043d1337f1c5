#!/usr/bin/env python
"""Start a new run from another run's checkpoint, with some settings changed.

    python experiments/fork_run.py runs/learn/cartpole_swingup-s0-nofreeze 4000 \
        runs/ablate/freeze4000 --freeze-step 4000

A run is deterministic on CPU, so two runs that differ only in what happens after agent
step K share everything before it. Forking the checkpoint at step K (before the source
run's freeze) into a new folder and training on with another ``--freeze-step`` >= K (or
``--env-steps``, ...) gives exactly the run that would have been trained from scratch,
without paying again for the pixel phase before K (a fork at K with ``--freeze-step K``
freezes as soon as it starts). Used for the freeze-step ablation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from seer_jax import platform

CHANGEABLE = (
    "freeze_step",
    "no_freeze",
    "env_steps",
    "eval_every",
    "checkpoint_every",
    "keep_checkpoints",
    "matmul_dtype",
)


def fork(src: str, step: int, dst: str, **changes) -> str:
    """Copy ``src``'s checkpoint at agent ``step`` and its logs up to it into ``dst``, with
    the configuration changed by ``changes``; returns ``dst``. The changes may only
    affect what happens after ``step``."""
    from seer_jax.logging import truncate_csv
    from seer_jax.train import ConfigError, TrainConfig

    bad = set(changes) - set(CHANGEABLE)
    if bad:
        raise ConfigError(f"fork can change only {', '.join(CHANGEABLE)}; not {', '.join(sorted(bad))}.")
    cfg = TrainConfig.from_run_dir(src, **changes)
    if changes.get("freeze_step") is not None:
        cfg.no_freeze = False
    if cfg.no_freeze:
        cfg.freeze_step = None
    cfg = dataclasses.replace(cfg, run_dir=dst).resolved()
    if cfg.freeze_step is not None and cfg.freeze_step < step:
        raise ConfigError(f"the fork's freeze step {cfg.freeze_step} must not lie before the forked step {step}.")
    src_ckpt = os.path.join(src, "checkpoints", str(step))
    if not os.path.isdir(src_ckpt):
        have = sorted(int(d) for d in os.listdir(os.path.join(src, "checkpoints")) if d.isdigit())
        raise ConfigError(f"{src} has no checkpoint at agent step {step}; it has {have}.")
    with open(os.path.join(src_ckpt, "meta", "metadata")) as f:
        if json.load(f)["phase"] != "images":
            raise ConfigError(
                f"the checkpoint at agent step {step} is after the source run's freeze; fork an earlier one."
            )
    if os.path.exists(dst):
        raise ConfigError(f"{dst} exists; choose a new folder.")
    os.makedirs(os.path.join(dst, "checkpoints"))
    shutil.copytree(src_ckpt, os.path.join(dst, "checkpoints", str(step)))
    env_steps = step * cfg.action_repeat
    for name in ("train.csv", "eval.csv"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))
            truncate_csv(os.path.join(dst, name), env_steps)
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(cfg), f, indent=2, sort_keys=True, default=str)
    return dst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("step", type=int)
    p.add_argument("dst")
    p.add_argument("--freeze-step", type=int)
    p.add_argument("--no-freeze", action="store_true")
    p.add_argument("--env-steps", type=int)
    p.add_argument("--matmul-dtype", choices=["float32", "bfloat16"], help="the heads' products from the fork on")
    p.add_argument("--train", action="store_true", help="train the fork right away")
    args = p.parse_args()
    given = (("freeze_step", args.freeze_step), ("env_steps", args.env_steps), ("matmul_dtype", args.matmul_dtype))
    changes = {k: v for k, v in given if v is not None}
    if args.no_freeze:
        changes["no_freeze"] = True
    from seer_jax.train import ConfigError, TrainConfig, train

    try:
        dst = fork(args.src, args.step, args.dst, **changes)
        print(f"forked {args.src} at agent step {args.step} into {dst}")
        if args.train:
            train(TrainConfig.from_run_dir(dst))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    platform.run_main(main)
