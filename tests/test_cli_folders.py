"""What a new user hits at the command line (issues #44 and #46): run folders that cannot
be folders, a folder another run holds, a half-written save, presets that do not fit the
task, flags a resume ignores, and names envpool knows that are not Atari games. Each runs
the real command line."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time

from same_run import dmc_cfg

from seer_jax.train import train

ROOT = os.path.join(os.path.dirname(__file__), "..")
RUN = [sys.executable, os.path.join(ROOT, "experiments", "run.py")]
ENV = dict(os.environ, SEER_JAX_NO_REEXEC="1")
TINY = ["--task", "cartpole_swingup", "--batch-size", "8", "--init-steps", "10", "--freeze-step", "30",
        "--eval-every", "0", "--eval-episodes", "1", "--episode-length", "96", "--replay-budget-mb", "1.5",
        "--no-progress"]  # fmt: skip


def run_cli(*args, timeout=300):
    return subprocess.run(RUN + list(args), capture_output=True, text=True, env=ENV, timeout=timeout)


def refused(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "seer_jax: cartpole_swingup" not in r.stdout + r.stderr  # refused before training set up
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def test_run_dir_that_cannot_be_a_folder_is_one_line_exit_2(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    refused(run_cli(*TINY, "--run-dir", str(a_file)), str(a_file), "is a file")
    refused(run_cli(*TINY, "--run-dir", str(a_file / "run")), str(a_file), "is a file")
    refused(run_cli(*TINY, "--run-dir", "/proc/seer_run"), "/proc/seer_run", "cannot create")
    assert a_file.read_text() == "mine"
    assert not os.path.exists("/proc/seer_run")


def test_a_name_envpool_knows_that_is_not_an_atari_game_is_an_unknown_task():
    r = run_cli("--task", "hopper")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "Unknown task 'hopper'" in r.stderr and "walker_walk" in r.stderr and "road_runner" in r.stderr


def test_second_run_on_a_held_folder_is_refused_and_the_first_is_intact(tmp_path):
    run_dir = tmp_path / "r"
    first = subprocess.Popen(RUN + TINY + ["--env-steps", "640", "--eval-every", "320", "--log-every", "5",
                                           "--run-dir", str(run_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and not (run_dir / "config.json").exists():
        time.sleep(0.2)
    second = run_cli(*TINY, "--env-steps", "640", "--run-dir", str(run_dir))
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out[-2000:]
    refused(second, str(run_dir), "in use by another run", f"pid {first.pid}")
    with open(run_dir / "train.csv") as f:
        steps = [int(r["env_steps"]) for r in csv.DictReader(f)]
    assert steps == sorted(set(steps)) and steps[-1] == 640
    with open(run_dir / "eval.csv") as f:
        assert [r[0] for r in csv.reader(f)] == ["env_steps", "320", "640"]
    assert len(os.listdir(run_dir / "tb")) == 1
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 640


def test_resume_after_a_kill_during_the_first_save_says_it_starts_over(tmp_path):
    run_dir = tmp_path / "r"
    assert train(dmc_cfg(run_dir), stop_after=20) is None  # a checkpoint at agent step 20 ...
    ck = run_dir / "checkpoints"
    for d in os.listdir(ck):  # the earlier periodic one goes: the first save is the one cut short ...
        if d != "20":
            shutil.rmtree(ck / d)
    shutil.move(ck / "20", ck / "20.orbax-checkpoint-tmp-1733400000")  # ... as a kill mid-save leaves it
    r = run_cli("--resume", str(run_dir), "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    text = r.stdout + r.stderr
    assert "unfinished checkpoint save (checkpoints/20.orbax-checkpoint-tmp-1733400000" in text
    assert "no finished checkpoint, so this run starts from the beginning" in text
    assert not any("tmp" in d for d in os.listdir(ck))
    assert json.loads((run_dir / "summary.json").read_text())["resumed"] is False


def test_atari_preset_needs_an_atari_game():
    refused(run_cli("--preset", "atari-constrained"), "--preset atari-constrained is for Atari games", "--task")
    refused(run_cli("--preset", "atari-constrained", "--task", "walker_walk"), "DeepMind Control tasks")
    refused(run_cli("--preset", "quick", "--task", "pong"), "--preset quick is for DeepMind Control tasks")


def test_resume_names_the_flags_it_ignores_and_refuses_them_on_an_unfinished_run(tmp_path):
    done = tmp_path / "done"
    assert train(dmc_cfg(done, env_steps=8 * 20, freeze_step=10, checkpoint_every=0))["env_steps"] == 160
    r = run_cli("--resume", str(done), "--batch-size", "64")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ignored --batch-size 64" in r.stdout + r.stderr and "nothing to do" in r.stdout + r.stderr
    stopped = tmp_path / "stopped"
    assert train(dmc_cfg(stopped), stop_after=20) is None
    refused(run_cli("--resume", str(stopped), "--batch-size", "64"), "--batch-size 64", "--run-dir")


def test_sigterm_during_the_final_evaluation_saves_exits_130_and_resumes(tmp_path):
    """The evaluation shows its progress on the bar; a SIGTERM while it runs abandons it,
    writes a checkpoint at the last agent step and exits 130; the resume evaluates and
    finishes, and the run folder holds its learning-curve picture."""
    import signal
    import threading

    run_dir = tmp_path / "r"
    args = [*TINY, "--env-steps", "160", "--action-repeat", "2", "--eval-episodes", "3", "--episode-length", "1000",
            "--run-dir", str(run_dir)]  # fmt: skip
    args.remove("--no-progress")  # the bar shows the evaluation
    p = subprocess.Popen(RUN + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    seen = []

    def read_stderr():  # the bar redraws with \r: read characters, not lines
        sent = False
        while ch := p.stderr.read(1):
            seen.append(ch)
            if not sent and ch == "," and "evaluating: 0/3 episodes done" in "".join(seen[-100:]):
                p.send_signal(signal.SIGTERM)  # once: a second signal would stop at once
                seen.append("<SENT>")
                sent = True

    reader = threading.Thread(target=read_stderr)
    reader.start()
    out = p.stdout.read()  # (a few lines: the pipe never fills)
    p.wait(timeout=600)
    reader.join()
    err = out + "".join(seen)
    assert "<SENT>" in err, err[-2000:]
    assert p.returncode == 130, err[-2000:]
    assert "abandoned" in err and "stopped by SIGTERM after agent step 80" in err and "--resume" in err
    assert "Traceback" not in err
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["80"] and not (run_dir / "summary.json").exists()
    r = run_cli("--resume", str(run_dir), "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed"] and summary["env_steps"] == 160
    with open(run_dir / "eval.csv") as f:
        assert [row[0] for row in csv.reader(f)] == ["env_steps", "160"]
    assert (run_dir / "learning_curve.png").stat().st_size > 10_000
