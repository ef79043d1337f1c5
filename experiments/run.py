#!/usr/bin/env python
"""Train a pixel agent with SEER: CURL-SAC on DeepMind Control, DER on Atari.

    python experiments/run.py --task walker_walk             # the spec's defaults
    python experiments/run.py --preset quick                 # about 3 minutes on a 2-core CPU
    python experiments/run.py --task cartpole_swingup --no-freeze   # plain CURL-SAC
    python experiments/run.py --task road_runner             # DER + SEER on Atari

Writes a run folder (config.json, train.csv, eval.csv, TensorBoard events in tb/,
summary.json) and prints a one-line summary at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from seer_jax import platform
from seer_jax.choices import ATARI_IMAGE_TRANSITION_BYTES, CONV_INITS

PRESETS = {
    "quick": dict(
        _doc="cartpole_swingup, batch 32, freeze at 800 agent steps; about 3 minutes on a quiet 2-core CPU",
        _setting="dmc",
        task="cartpole_swingup",
        env_steps=16_000,
        batch_size=32,
        init_steps=250,
        freeze_step=800,
        eval_every=8_000,
        eval_episodes=2,
        log_every=100,
    ),
    "atari-constrained": dict(
        _doc="Atari with the SEER paper's small buffer: the memory of 10k image transitions (needs --task GAME)",
        _setting="atari",
        replay_budget_mb=10_000 * ATARI_IMAGE_TRANSITION_BYTES / 2**20,
    ),
}


def _number(convert, accept, what: str):
    """An argparse type: ``convert`` the text, then require ``accept(value)``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "a non-negative integer")


def freeze_step(text: str) -> int | str:
    """``--freeze-step``: a positive agent step, or ``auto``."""
    return "auto" if text == "auto" else _number(int, lambda v: v >= 1, "a positive integer or 'auto'")(text)


positive_float = _number(float, lambda v: v > 0, "a positive number")


def build_parser() -> argparse.ArgumentParser:
    from seer_jax.settings import ATARI, DMC

    dmc, atari = DMC.defaults, ATARI.defaults
    both = lambda k: f"default: {dmc[k]} on DeepMind Control, {atari[k]} on Atari"
    p = argparse.ArgumentParser(
        description="Train a pixel agent with SEER: CURL-SAC on DeepMind Control tasks (e.g. walker_walk), "
        "data-efficient Rainbow on Atari games (e.g. road_runner).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Steps: --env-steps and --eval-every count environment steps (an Atari step is 4 frames); "
        "--freeze-step, --init-steps and --log-every count agent steps (env steps / action repeat).",
    )
    p.add_argument(
        "--task",
        default=None,
        help="a DeepMind Control domain_task (walker_walk, cartpole_swingup, ...) or an Atari game (alien, road_runner, ...); default: walker_walk",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="a named set of defaults (flags given explicitly win): "
        + "; ".join(f"{k}: {v['_doc']}" for k, v in PRESETS.items()),
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="random seed (same seed, same run on CPU with --deterministic); default: 0",
    )
    p.add_argument(
        "--seeds",
        type=non_negative_int,
        nargs="+",
        metavar="N | SEED",
        help="train several seeds in one process (stacked along a seed axis, vmapped, sharded across devices): "
        "one number N trains seeds SEED .. SEED+N-1, several numbers train those seeds; each seed gets its own "
        "folder RUN_DIR/seedS; default: just --seed",
    )
    p.add_argument(
        "--env-steps", type=positive_int, default=None, help="environment steps to train for; " + both("env_steps")
    )
    p.add_argument(
        "--action-repeat",
        type=positive_int,
        default=None,
        help="DeepMind Control; default: the PlaNet value for the task (cartpole 8; reacher, cheetah, ball_in_cup 4; finger, walker 2)",
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="update batch size; " + both("batch_size"))
    p.add_argument(
        "--replay-budget-mb",
        type=positive_float,
        default=None,
        help="replay memory budget in MB, which sets the capacity before and after the freeze; "
        + both("replay_budget_mb"),
    )
    p.add_argument(
        "--freeze-step",
        type=freeze_step,
        default=None,
        help="agent step at which SEER freezes the encoder, or 'auto': freeze once the encoder's latents of a "
        "fixed probe of stored observations stop moving (--freeze-auto-*); " + both("freeze_step"),
    )
    p.add_argument(
        "--freeze-auto-every",
        type=positive_int,
        default=None,
        help="auto freeze: agent steps between checks; default: 1000",
    )
    p.add_argument(
        "--freeze-auto-threshold",
        type=positive_float,
        default=None,
        help="auto freeze: relative latent drift per check under which the encoder counts as settled; default: 0.05",
    )
    p.add_argument(
        "--freeze-auto-patience",
        type=positive_int,
        default=None,
        help="auto freeze: consecutive checks under the threshold before freezing; default: 3",
    )
    p.add_argument(
        "--freeze-auto-min",
        type=positive_int,
        default=None,
        help="auto freeze: earliest agent step; default: half the setting's freeze step",
    )
    p.add_argument(
        "--freeze-auto-max",
        type=positive_int,
        default=None,
        help="auto freeze: latest agent step; default: five times the setting's freeze step (at most the run)",
    )
    p.add_argument("--no-freeze", action="store_true", help="never freeze: plain CURL-SAC / DER (the baseline)")
    p.add_argument(
        "--num-copies",
        type=positive_int,
        default=4,
        help="DeepMind Control: random crops stored per observation after the freeze; default: 4",
    )
    p.add_argument(
        "--latent-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="storage type of latents after the freeze (bfloat16 doubles the capacity); default: float32",
    )
    p.add_argument(
        "--conv-init",
        choices=CONV_INITS,
        default=None,
        help="Atari: the DER encoder's initialisation, PyTorch's Conv2d default (uniform +-1/sqrt(fan_in), as in "
        "the released SEER code; default) or Flax's LeCun-normal",
    )
    p.add_argument(
        "--matmul-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="DeepMind Control: the Q and actor heads' matrix products in bfloat16 with float32 accumulation "
        "(about 2x faster latent updates on CPUs with AMX, e.g. Sapphire Rapids); default: float32",
    )
    p.add_argument(
        "--init-steps",
        type=non_negative_int,
        default=None,
        help="agent steps before the first update (DMC: uniform random actions, as CURL; Atari: the noisy network acts, as Kaixhin's Rainbow and SEER); "
        + both("init_steps"),
    )
    p.add_argument(
        "--eval-every",
        type=non_negative_int,
        default=None,
        help="evaluate every N env steps (0: only at the end); " + both("eval_every"),
    )
    p.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=None,
        help="episodes per evaluation (DMC: policy mean, centre crop; Atari: whole games, epsilon 0.001); "
        + both("eval_episodes"),
    )
    p.add_argument(
        "--keep-best",
        action="store_true",
        help="keep the agent of the best evaluation so far in RUN_DIR/best_agent.msgpack (with best_agent.json)",
    )
    p.add_argument(
        "--log-every",
        type=positive_int,
        default=None,
        help="write training metrics every N agent steps; " + both("log_every"),
    )
    p.add_argument(
        "--critic-lr",
        type=positive_float,
        default=None,
        help="DeepMind Control critic learning rate; default: 1e-3 (cheetah_run 2e-4)",
    )
    p.add_argument("--episode-length", type=positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--run-dir",
        default=None,
        help="run folder; default: runs/TASK-sSEED-TIME. A folder that holds checkpoints of the same configuration is resumed",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue the run in RUN_DIR from its newest checkpoint, with the configuration saved there (other flags are ignored except --no-progress, --checkpoint-every, --keep-checkpoints)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=None,
        help="save a checkpoint (agent, replay buffer, RNG, environment, logs) every N env steps, 0: only at the end; default: 10000",
    )
    p.add_argument(
        "--keep-checkpoints", type=positive_int, default=None, help="how many recent checkpoints to keep; default: 2"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="run on one CPU core so that the same seed gives bit-identical runs (XLA:CPU's multithreaded "
        "kernels may differ in the last bits from call to call); slower. Same as SEER_JAX_DETERMINISTIC=1",
    )
    return p


def config_from_run_dir(run_dir: str, args, ignored: list[str] | None = None):
    """The configuration saved in a run folder (for --resume). Flags that set what is
    trained (``ignored``) cannot change a run half way: refused for an unfinished run,
    named as ignored for a finished one."""
    from seer_jax.train import ConfigError, TrainConfig

    overrides = {"progress": not args.no_progress}
    for k in ("checkpoint_every", "keep_checkpoints"):
        if getattr(args, k) is not None:
            overrides[k] = getattr(args, k)
    try:
        cfg = TrainConfig.from_run_dir(run_dir, **overrides)
    except ConfigError as e:
        raise ConfigError(f"--resume {e}") from None
    if ignored:
        if os.path.exists(os.path.join(run_dir, "summary.json")):
            print(
                f"seer_jax: {run_dir} is finished; ignored {', '.join(ignored)} (--resume keeps the saved configuration)."
            )
        else:
            raise ConfigError(
                f"--resume {run_dir} continues with the configuration saved there; {', '.join(ignored)} would change it "
                "half way. Drop the flag(s), or start a new run with --run-dir."
            )
    return cfg


def config_from_args(argv: list[str] | None = None):
    from seer_jax.train import ConfigError, TrainConfig

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.deterministic:
        platform.use_one_cpu()  # before jax's first computation
    if args.resume:
        return config_from_run_dir(args.resume, args, _training_flags(args, argv))
    values = {}
    if args.preset:
        preset = PRESETS[args.preset]
        values.update({k: v for k, v in preset.items() if not k.startswith("_")})
        _check_preset_fits(args.preset, preset["_setting"], args.task, ConfigError)
    given = {k: v for k, v in vars(args).items() if v is not None and v is not False}
    if args.seeds is not None:
        if len(args.seeds) == 1:
            if args.seeds[0] < 1:
                parser.error("--seeds N needs N >= 1 (or list the seeds).")
            given["seeds"] = list(range(args.seed, args.seed + args.seeds[0]))
        else:
            given["seeds"] = list(args.seeds)
    for f in dataclasses.fields(TrainConfig):
        if f.name in given:
            values[f.name] = given[f.name]
    values["progress"] = not args.no_progress
    return TrainConfig(**values)


def _check_preset_fits(name: str, setting: str, task: str | None, error: type[Exception]) -> None:
    """A preset made for one setting (DeepMind Control or Atari) refuses a task of the other;
    an Atari preset without --task asks for a game."""
    from seer_jax.settings import setting_for

    if task is None:
        if setting == "atari":
            raise error(
                f"--preset {name} is for Atari games: add --task GAME (e.g. --task road_runner or --task pong)."
            )
        return
    try:
        actual = setting_for(task).name
    except ValueError:
        return  # an unknown task: TrainConfig.resolved() lists the valid ones
    if actual != setting:
        kind = {"atari": "Atari games", "dmc": "DeepMind Control tasks"}
        raise error(f"--preset {name} is for {kind[setting]}, but --task {task} is one of the {kind[actual]}; "
                    f"drop --preset or choose a task it fits.")  # fmt: skip


def _training_flags(args, argv: list[str] | None) -> list[str]:
    """The flags on the command line that set what is trained (for --resume: the saved
    configuration decides those)."""
    keep = {"resume", "no_progress", "checkpoint_every", "keep_checkpoints", "deterministic"}
    defaults = vars(build_parser().parse_args([]))
    return [
        "--" + k.replace("_", "-") + ("" if v is True else f" {' '.join(map(str, v)) if isinstance(v, list) else v}")
        for k, v in vars(args).items()
        if k not in keep and v != defaults.get(k)
    ]


def check_run_folder(argv: list[str] | None) -> str | None:
    """The run folder's problem in one line (a file, under a file, not creatable), found
    before anything heavy is imported; None when it can be used."""
    from seer_jax.run_folder import RunFolderError, check_path

    args = build_parser().parse_args(argv)
    try:
        if args.resume:
            check_path(args.resume, "--resume", create=False)
        elif args.run_dir:
            check_path(args.run_dir)
    except RunFolderError as e:
        return str(e)
    return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    platform.configure_rendering()
    problem = check_run_folder(argv)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from seer_jax.checkpoint import CheckpointError
    from seer_jax.envs.dmc import RenderingUnavailable
    from seer_jax.replay import ReplayBudgetError
    from seer_jax.train import ConfigError, TrainingDiverged, TrainingStopped, train

    signal.signal(signal.SIGTERM, _interrupt)  # before the loop starts: stop as Ctrl-C does (nothing to save yet)
    try:
        cfg = config_from_args(argv)
        train(cfg.resolved())
    except RenderingUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(2)  # skip the half-made GL context's destructor, which would print noise
    except (ConfigError, ReplayBudgetError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: training diverged: {e}", file=sys.stderr)
        return 3
    except TrainingStopped as e:  # SIGTERM or Ctrl-C: stopped with a checkpoint at that step
        print(f"\n{e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(
            "\ninterrupted; re-run the same command (or use --resume RUN_DIR) to continue from the last checkpoint.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    build_parser().parse_args()  # --help and flag errors answer here: before the re-exec and before JAX loads
    platform.reexec_with_fast_allocator()
    sys.exit(main())
