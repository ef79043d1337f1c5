"""experiments/reproduce_atari.py on a tiny configuration: both variants of one real game,
two seeds, the results files, a second start that skips finished work, and a fresh
checkout (no run folders) that keeps the recorded seeds and trains only the new one."""

import csv
import os
import shutil
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = [sys.executable, os.path.join(ROOT, "experiments", "reproduce_atari.py")]


def test_reproduce_atari_tiny_table_and_skip(tmp_path):
    def args(*seeds):
        return [
            *("--games", "alien", "--seeds", *map(str, seeds), "--agent-steps", "400", "--freeze-step", "200"),
            *("--eval-every", "200", "--eval-episodes", "1", "--budget-mb", "2", "--checkpoint-every", "200"),
            *("--stat-games", "2"),
            *("--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "docs")),
        ]

    env = dict(os.environ, SEER_JAX_NO_REEXEC="1")
    # Two seeds together on a seed axis; the fresh start below trains one per process.
    first = args(0, 1) + ["--seeds-per-process", "2"]
    r = subprocess.run(SCRIPT + first, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("== alien") == 2  # SEER, then the baseline
    for variant in ("seer", "der"):
        for seed in (0, 1):
            assert os.path.exists(tmp_path / "runs" / f"alien-{variant}" / f"seed{seed}" / "summary.json")
    table = tmp_path / "docs" / "results" / "atari_500k.csv"

    def read_rows():
        with open(table, newline="") as f:
            all_rows = list(csv.DictReader(f))
        # The table lists every game of the paper's; only alien was trained.
        assert {x["finished"] for x in all_rows if x["game"] != "alien"} == {"False"}
        assert len({x["game"] for x in all_rows}) == 8
        return [x for x in all_rows if x["game"] == "alien"]

    rows = read_rows()
    assert [(x["variant"], x["seed"]) for x in rows] == [("seer", "0"), ("seer", "1"), ("der", "0"), ("der", "1")]
    for x in rows:
        assert x["finished"] == "True" and float(x["final_score"]) >= 0
        # The three statistics: the best evaluation's agent and the final one over 2 fresh
        # games, and the final evaluation (here of 1 game).
        assert float(x["best_2"]) >= 0 and float(x["final_2"]) >= 0 and x["final_10"] == x["final_score"]
        assert x["best_env_steps"] in ("200", "400")
        assert int(x["capacity_before_freeze"]) > 0
        assert x["seeds_in_process"] == "2" and x["finished_utc"].startswith("20")
    # SEER grows the capacity from the same bytes at the freeze (here up to the run's length);
    # plain DER has no latents.
    assert int(rows[0]["capacity_after_freeze"]) > int(rows[0]["capacity_before_freeze"])
    assert rows[2]["capacity_after_freeze"] == ""
    import json

    result = json.loads((tmp_path / "docs" / "results" / "atari_500k.json").read_text())
    assert result["protocol"]["paper_statistic"] == "best_100" and len(result["protocol"]["changes"]) == 5
    seer = result["games"]["alien"]["variants"]["seer"]
    assert set(seer["best_2"]["seeds"]) == {"0", "1"} and seer["mean"] == seer["best_2"]["mean"]
    assert result["games"]["alien"]["paper"] == 1172.6
    page = (tmp_path / "docs" / "atari_500k.md").read_text()
    assert "| alien | 1,172.6 |" in page and "Games finished (all 2 SEER seeds): 1 of 8" in page
    assert "SEER games remaining: amidar," in page
    assert "Baseline (DER without SEER, same memory) games finished: 1 of 8 (2 of 16 seeds)." in page
    assert os.path.exists(tmp_path / "docs" / "results" / "atari_500k.png")

    again = subprocess.run(SCRIPT + first, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "== alien" not in again.stdout  # finished seeds are skipped
    assert again.stdout.count("skipped: alien") == 2

    # A fresh checkout: the committed table holds the finished seeds, the run folders are
    # gone. Nothing recorded trains again, every recorded row keeps its scores (the DER
    # rows too, though this start trains only SEER), and a new seed is added (one seed
    # per process, the default).
    shutil.rmtree(tmp_path / "runs")
    third = subprocess.run(
        SCRIPT + args(1, 2) + ["--variants", "seer"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert third.returncode == 0, third.stderr[-2000:]
    assert third.stdout.count("== alien") == 1 and "seeds [2]" in third.stdout
    rows3 = read_rows()
    assert [(x["variant"], x["seed"]) for x in rows3] == [
        *[("seer", s) for s in "012"],
        *[("der", s) for s in "012"],
    ]
    assert rows3[:2] == rows[:2] and rows3[3:5] == rows[2:4]
    assert rows3[2]["finished"] == "True" and rows3[2]["seeds_in_process"] == "1"
    # A start with other settings refuses to touch the table (it would mix or drop rows).
    other = [a if a != "400" else "600" for a in args(0)]
    refused = subprocess.run(SCRIPT + other, capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode != 0 and "--agent-steps 400 (now 600)" in refused.stderr
    assert read_rows() == rows3
    assert rows3[5]["finished"] == "False"
    assert os.path.exists(tmp_path / "runs" / "alien-seer" / "seed2" / "summary.json")


def test_csv_writes_scores_in_full(tmp_path):
    """Scores go into the CSV with every digit (4517.5 is not 4518, 13920 is not 1.392e+04);
    unfinished seeds leave their cells empty."""
    sys.path.insert(0, os.path.join(ROOT, "experiments"))
    from reproduce_atari import CSV_FIELDS, write_csv

    done = dict.fromkeys(CSV_FIELDS, 1)
    done.update(game="qbert", variant="seer", seed=0, finished=True, final_score=4517.5, score_100k=13920.0)
    done.update(human_normalized_final=0.32755753, wall_clock_h=1.2514883)
    todo = dict.fromkeys(CSV_FIELDS) | dict(game="qbert", variant="der", seed=0, finished=False)
    write_csv({"rows": [done, todo]}, str(tmp_path / "t.csv"))
    with open(tmp_path / "t.csv", newline="") as f:
        first, second = csv.DictReader(f)
    assert (first["final_score"], first["score_100k"]) == ("4517.5", "13920")
    assert (first["human_normalized_final"], first["wall_clock_h"]) == ("0.3276", "1.251")
    assert second["final_score"] == "" and second["finished"] == "False"
