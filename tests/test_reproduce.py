"""experiments/reproduce_atari.py on a tiny configuration: both variants of one real game,
two seeds in one process, the results files, and a second start that skips finished work."""

import csv
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = [sys.executable, os.path.join(ROOT, "experiments", "reproduce_atari.py")]


def test_reproduce_atari_tiny_table_and_skip(tmp_path):
    args = [
        *("--games", "alien", "--seeds", "0", "1", "--agent-steps", "400", "--freeze-step", "200"),
        *("--eval-every", "200", "--eval-episodes", "1", "--budget-mb", "2", "--checkpoint-every", "200"),
        *("--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "docs")),
    ]
    env = dict(os.environ, SEER_JAX_NO_REEXEC="1")
    r = subprocess.run(SCRIPT + args, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("== alien") == 2  # SEER, then the baseline
    with open(tmp_path / "docs" / "results" / "atari_500k.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(x["variant"], x["seed"]) for x in rows] == [("seer", "0"), ("seer", "1"), ("der", "0"), ("der", "1")]
    for x in rows:
        assert x["finished"] == "True" and float(x["final_score"]) >= 0
        assert int(x["capacity_before_freeze"]) > 0
    # SEER grows the capacity from the same bytes at the freeze (here up to the run's length);
    # plain DER has no latents.
    assert int(rows[0]["capacity_after_freeze"]) > int(rows[0]["capacity_before_freeze"])
    assert rows[2]["capacity_after_freeze"] == ""
    page = (tmp_path / "docs" / "atari_500k.md").read_text()
    assert "| alien | 1,172.6 |" in page and "Games remaining: none." in page
    assert os.path.exists(tmp_path / "docs" / "results" / "atari_500k.png")

    again = subprocess.run(SCRIPT + args, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "== alien" not in again.stdout  # finished groups are skipped
