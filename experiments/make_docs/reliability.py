#!/usr/bin/env python
"""Run every bad-input and recovery case through the real command line and record
what the user sees: the command, the exit code and the first line of the message.

    python experiments/make_docs/reliability.py     # writes docs/results/reliability.json and docs/reliability.md

Each case is also covered by a test (named in the output); this script is the
user's-eye view of the same behaviour.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, ROOT)
from seer_jax import platform  # noqa: E402

RUN = [sys.executable, os.path.join(ROOT, "experiments", "run.py")]
TINY = [
    "--task",
    "cartpole_swingup",
    "--env-steps",
    "400",
    "--batch-size",
    "8",
    "--init-steps",
    "10",
    "--freeze-step",
    "30",
    "--eval-every",
    "0",
    "--eval-episodes",
    "1",
    "--episode-length",
    "96",
    "--replay-budget-mb",
    "1.5",
    "--checkpoint-every",
    "160",
    "--no-progress",
]


def run(args: list[str], env: dict | None = None, timeout: int = 600) -> dict:
    e = dict(os.environ, SEER_JAX_NO_REEXEC="1", **(env or {}))
    t0 = time.perf_counter()
    r = subprocess.run(RUN + args, capture_output=True, text=True, env=e, timeout=timeout)
    out = (r.stdout + "\n" + r.stderr).splitlines()
    if r.returncode == 0:
        keys = ("resumed from", "unfinished checkpoint save", "no finished checkpoint", "ignored")
        lines = [ln for ln in out if any(k in ln for k in keys)] or [""]
    else:
        lines = (
            [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
            or r.stderr.strip().splitlines()[-1:]
            or [""]
        )
    return {
        "exit_code": r.returncode,
        "message": lines[0][:400],
        "traceback": "Traceback" in r.stderr,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def start_until_first_checkpoint(run_dir: str, output: int) -> subprocess.Popen:
    """Start the tiny run in ``run_dir`` and return once its first checkpoint exists."""
    e = dict(os.environ, SEER_JAX_NO_REEXEC="1")
    p = subprocess.Popen(RUN + TINY + ["--run-dir", run_dir], stdout=output, stderr=output, text=True, env=e)
    ck = os.path.join(run_dir, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline and not (os.path.isdir(ck) and any(d.isdigit() for d in os.listdir(ck))):
        time.sleep(0.2)
    return p


# What a resume of a checkpoint written for another network says (CheckpointMismatch).
MISMATCH_MESSAGE = (
    "error: The checkpoint at agent step N in RUNS/run/checkpoints was written for another network than "
    "this run builds (K arrays differ; NAME: stored float32[510], this run has float32[918]; ...): another "
    "task or agent configuration, or a seer_jax whose agent differs. Resume it with the settings it was "
    "trained with, or train this configuration in a new run folder; the checkpoints are left as they are."
)


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="seer_reliability_")
    cases = []

    def case(name: str, args: list[str], test: str, env: dict | None = None, prepare=None):
        if prepare:
            prepare()
        shown = " ".join(["python experiments/run.py"] + args).replace(tmp, "RUNS")
        result = run(args, env)
        result["message"] = result["message"].replace(tmp, "RUNS")
        cases.append({"case": name, "command": shown, **result, "test": test})
        print(f"[{result['exit_code']}] {name}: {result['message'][:120]}", flush=True)

    case("unknown task", ["--task", "walker_wakl"], "tests/test_train.py::test_cli_unknown_task_lists_valid_ones")
    case(
        "flag of the wrong type",
        ["--batch-size", "many"],
        "tests/test_train.py::test_cli_freeze_step_must_be_positive_integer",
    )
    case(
        "negative steps", ["--env-steps", "-100"], "tests/test_train.py::test_cli_freeze_step_must_be_positive_integer"
    )
    case(
        "freeze step not a positive integer",
        ["--freeze-step", "0"],
        "tests/test_train.py::test_cli_freeze_step_must_be_positive_integer",
    )
    case(
        "seeds repeated",
        ["--task", "cartpole_swingup", "--seeds", "3", "3"],
        "tests/test_train.py::test_cli_seeds_must_be_a_count_or_distinct_seeds",
    )
    case(
        "freeze step beyond the run",
        ["--task", "cartpole_swingup", "--env-steps", "8000", "--freeze-step", "5000"],
        "tests/test_train.py::test_cli_freeze_step_beyond_run_refused",
    )
    case(
        "budget too small for one batch",
        ["--task", "cartpole_swingup", "--replay-budget-mb", "1", "--run-dir", f"{tmp}/small"],
        "tests/test_train.py::test_cli_budget_too_small_states_minimum",
    )
    case(
        "batch larger than the buffer",
        ["--task", "cartpole_swingup", "--batch-size", "512", "--replay-budget-mb", "10", "--run-dir", f"{tmp}/batch"],
        "tests/test_train.py::test_cli_budget_too_small_states_minimum",
    )
    case(
        "rendering unavailable",
        ["--task", "cartpole_swingup", "--run-dir", f"{tmp}/render"],
        "tests/test_train.py::test_cli_rendering_unavailable_is_clear",
        env={"MUJOCO_GL": "osmesa"},
    )
    case(
        "resume a folder that is not a run",
        ["--resume", f"{tmp}/nothing"],
        "tests/test_train.py::test_cli_resume_of_missing_folder_is_clear",
    )
    with open(f"{tmp}/notes.txt", "w") as f:
        f.write("mine")
    folder_test = "tests/test_cli_folders.py::test_run_dir_that_cannot_be_a_folder_is_one_line_exit_2"
    case("run folder is a file", TINY + ["--run-dir", f"{tmp}/notes.txt"], folder_test)
    case("run folder under a file", TINY + ["--run-dir", f"{tmp}/notes.txt/run"], folder_test)
    case("run folder cannot be created", TINY + ["--run-dir", "/proc/seer_run"], folder_test)
    case(
        "a name envpool knows that is not an Atari game",
        ["--task", "hopper"],
        "tests/test_cli_folders.py::test_a_name_envpool_knows_that_is_not_an_atari_game_is_an_unknown_task",
    )
    preset_test = "tests/test_cli_folders.py::test_atari_preset_needs_an_atari_game"
    case("Atari preset without a game", ["--preset", "atari-constrained"], preset_test)
    case("preset for the other setting", ["--preset", "quick", "--task", "pong"], preset_test)

    # Two runs on one folder: the second is refused while the first holds it.
    held = f"{tmp}/held"
    first = start_until_first_checkpoint(held, subprocess.DEVNULL)
    case(
        "second run on a folder a run holds",
        TINY + ["--run-dir", held],
        "tests/test_cli_folders.py::test_second_run_on_a_held_folder_is_refused_and_the_first_is_intact",
    )
    cases[-1]["message"] = cases[-1]["message"].replace(f"pid {first.pid}", "pid PID")
    first.kill()
    first.wait()

    # A save cut short by a kill: the only checkpoint is an unfinished save.
    unfinished = f"{tmp}/unfinished"

    def half_save():
        p = start_until_first_checkpoint(unfinished, subprocess.DEVNULL)
        p.kill()
        p.wait()
        ck = os.path.join(unfinished, "checkpoints")
        for d in os.listdir(ck):
            shutil.move(os.path.join(ck, d), os.path.join(ck, f"{d}.orbax-checkpoint-tmp-1733400000"))

    case(
        "resume after a kill during the first checkpoint save",
        ["--resume", unfinished],
        "tests/test_cli_folders.py::test_resume_after_a_kill_during_the_first_save_says_it_starts_over",
        prepare=half_save,
    )
    case(
        "resume of a finished run with a training flag",
        ["--resume", unfinished, "--batch-size", "64"],
        "tests/test_cli_folders.py::test_resume_names_the_flags_it_ignores_and_refuses_them_on_an_unfinished_run",
    )

    # A run asked to stop (SIGTERM, as `kill PID` sends; Ctrl-C does the same) after its
    # first checkpoint: it finishes the agent step, checkpoints there and exits 130.
    stopped = f"{tmp}/stopped"
    p = start_until_first_checkpoint(stopped, subprocess.PIPE)
    t0 = time.perf_counter()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    cases.append(
        {
            "case": "run stopped with SIGTERM (`kill PID`) or Ctrl-C",
            "command": "kill PID (of python experiments/run.py " + " ".join(TINY + ["--run-dir", "RUNS/stopped"]) + ")",
            "exit_code": p.returncode,
            "message": (err.strip().splitlines()[-1:] or [""])[0].replace(tmp, "RUNS")[:400],
            "traceback": "Traceback" in err,
            "seconds": round(time.perf_counter() - t0, 1),
            "test": "tests/test_resume.py::test_sigterm_stops_with_a_checkpoint_at_that_step",
        }
    )
    print(f"[{p.returncode}] {cases[-1]['case']}: {cases[-1]['message'][:120]}", flush=True)
    case(
        "stopped run, then resumed",
        ["--resume", stopped],
        "tests/test_resume.py::test_sigterm_stops_with_a_checkpoint_at_that_step",
    )

    # SIGTERM while the final evaluation runs: abandoned, checkpoint at the last step, 130.
    in_eval = f"{tmp}/in_eval"
    e = dict(os.environ, SEER_JAX_NO_REEXEC="1")
    eval_args = TINY[:-1] + ["--env-steps", "160", "--action-repeat", "2", "--eval-episodes", "3",
                             "--episode-length", "1000", "--run-dir", in_eval]  # fmt: skip
    p = subprocess.Popen(RUN + eval_args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e)
    seen = ""
    while ch := p.stderr.read(1):
        seen += ch
        if ch == "," and "evaluating: 0/3 episodes done" in seen[-100:]:
            break
    t0 = time.perf_counter()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    cases.append(
        {
            "case": "SIGTERM during an evaluation",
            "command": "kill PID (while python experiments/run.py "
            + " ".join(eval_args).replace(tmp, "RUNS")
            + " evaluates)",
            "exit_code": p.returncode,
            "message": (err.strip().splitlines()[-1:] or [""])[0].replace(tmp, "RUNS")[:400],
            "traceback": "Traceback" in err,
            "seconds": round(time.perf_counter() - t0, 1),
            "test": "tests/test_cli_folders.py::test_sigterm_during_the_final_evaluation_saves_exits_130_and_resumes",
        }
    )
    print(f"[{p.returncode}] {cases[-1]['case']}: {cases[-1]['message'][:120]}", flush=True)

    # A real interrupted run: killed after its first checkpoint, then resumed.
    base = f"{tmp}/run"
    p = start_until_first_checkpoint(base, subprocess.DEVNULL)
    ck = os.path.join(base, "checkpoints")
    p.kill()
    p.wait()
    saved = os.path.join(tmp, "run_copy")
    shutil.copytree(base, saved)
    case("run killed, then resumed", ["--resume", base], "tests/test_train.py::test_cli_interrupted_run_resumes")

    def reset_copy():
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(saved, base)

    case(
        "resume of an unfinished run with a training flag",
        ["--resume", base, "--batch-size", "64"],
        "tests/test_cli_folders.py::test_resume_names_the_flags_it_ignores_and_refuses_them_on_an_unfinished_run",
        prepare=reset_copy,
    )
    case(
        "same folder, different configuration",
        TINY[:-1] + ["--batch-size", "16", "--no-progress", "--run-dir", base],
        "tests/test_resume.py::test_resume_with_other_config_is_refused",
        prepare=reset_copy,
    )

    def corrupt():
        reset_copy()
        for root, _, files in os.walk(ck):
            for f in files:
                if root.split(os.sep)[-1] != "meta" and not f.endswith(".json"):
                    with open(os.path.join(root, f), "r+b") as fh:
                        fh.truncate(os.path.getsize(os.path.join(root, f)) // 3)

    case(
        "corrupt or truncated checkpoint (the only one)",
        ["--resume", base],
        "tests/test_resume.py::test_no_readable_checkpoint_is_a_clear_error",
        prepare=corrupt,
    )

    def other_version():
        reset_copy()
        for step in os.listdir(ck):
            meta = os.path.join(ck, step, "meta", "metadata")
            if os.path.exists(meta):
                with open(meta) as f:
                    m = json.load(f)
                m["version"] = -1
                with open(meta, "w") as f:
                    json.dump(m, f)

    case(
        "checkpoint from another version",
        ["--resume", base],
        "tests/test_resume.py::test_checkpoint_from_another_version_is_refused",
        prepare=other_version,
    )
    cases.append(
        {
            "case": "checkpoint of another network",
            "command": "(simulated in the test: the same configuration builds a wider critic)",
            "exit_code": 2,
            "message": MISMATCH_MESSAGE,
            "traceback": False,
            "test": "tests/test_resume.py::test_checkpoint_of_another_network_is_refused_and_kept",
        }
    )
    cases.append(
        {
            "case": "no disk space for a checkpoint",
            "command": "(simulated: the save raises ENOSPC)",
            "exit_code": 2,
            "message": "error: Could not write the checkpoint ... The disk is full: free space ... the previous checkpoint is intact.",
            "traceback": False,
            "test": "tests/test_resume.py::test_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint",
        }
    )
    cases.append(
        {
            "case": "non-finite loss or parameters",
            "command": "(simulated in the test: a parameter set to inf)",
            "exit_code": 3,
            "message": "error: training diverged: ... became non-finite at agent step N ... The last good checkpoint (agent step M) is kept in ...",
            "traceback": False,
            "test": "tests/test_resume.py::test_non_finite_parameters_stop_the_run_and_keep_the_checkpoint",
        }
    )
    shutil.rmtree(tmp, ignore_errors=True)
    out = {
        "cases": cases,
        **platform.provenance(),
    }
    path = os.path.join(ROOT, "docs", "results", "reliability.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {path}")
    write_markdown(out, os.path.join(ROOT, "docs", "reliability.md"))
    return 0


def write_markdown(out: dict, path: str) -> None:
    rows = ["| case | what the user sees (first line) | exit code | test |", "|---|---|---|---|"]
    for c in out["cases"]:
        msg = c["message"].replace("|", "\\|")
        rows.append(
            f"| {c['case']} | `{msg[:220]}{'...' if len(msg) > 220 else ''}` | {c['exit_code']} | `{c['test']}` |"
        )
    text = (
        "# Bad input and recovery: what the user sees\n\n"
        "Generated by `python experiments/make_docs/reliability.py` "
        f"({out['date']}, {out['machine']}) from `docs/results/reliability.json`; every case runs "
        "the real command line (the last three are simulated in their tests). Exit codes: 0 success, "
        "2 bad input or unusable files, 3 training diverged, 130 interrupted. No case prints a "
        "traceback.\n\n" + "\n".join(rows) + "\n\n"
        "Resuming: a run saves a checkpoint every `--checkpoint-every` env steps (default 10,000) "
        "and at the end; re-run the same command or `--resume RUN_DIR`. See the README.\n"
    )
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
