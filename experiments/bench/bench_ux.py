#!/usr/bin/env python
"""What a new user waits for (issues #44, #46), timed from the command line as they run it:

    help_s           python experiments/run.py --help, wall-clock (target: at most 2 s)
    arg_error_s      python experiments/run.py --batch-size x (a flag error), wall-clock
    first_line_s     the main job's command until its first line of output
    startup_s        the main job's command until the progress bar first counts an env step
                     (the first training progress line; target: at most 20 s)
    quick_preset_s   python experiments/run.py --preset quick, start to end: training across
                     the freeze and its evaluations (target: at most 300 s on 2 cores)

Each is the median of ``--repeats`` runs (quick: one run unless ``--quick-repeats``), in
fresh processes, with a fresh run folder each. Measure on a quiet machine: nothing else
training. Writes ``docs/results/ux.json``.

    python experiments/bench/bench_ux.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)

from seer_jax import platform  # noqa: E402

RUN = [sys.executable, os.path.join(ROOT, "experiments", "run.py")]
BAR = re.compile(r"(\d[\d.]*k?)/500k")  # walker_walk's bar: done/total env steps


def timed(args: list[str], timeout: float = 600) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = subprocess.run(RUN + args, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, r.returncode


def startup(run_dir: str, timeout: float = 600) -> tuple[float, float]:
    """Seconds from the main job's command to its first output, and to the bar's first
    counted env step; the run is then stopped (SIGTERM)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(RUN + ["--task", "walker_walk", "--run-dir", run_dir], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)  # fmt: skip
    first = None
    text = ""
    try:
        while time.perf_counter() - t0 < timeout:
            ch = p.stdout.read(1) if p.stdout else ""
            if not ch:
                break
            if first is None:
                first = time.perf_counter() - t0
            text += ch
            if ch in "\r\n|":
                counts = [m for m in BAR.findall(text[-300:]) if m not in ("0", "0.00")]
                if counts:
                    return first, time.perf_counter() - t0
        raise RuntimeError(f"no progress within {timeout} s:\n{text[-2000:]}")
    finally:
        p.terminate()
        p.wait(timeout=300)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick-repeats", type=int, default=1)
    ap.add_argument("--skip-quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "ux.json"))
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory(prefix="seer_ux_") as tmp:
        helps = [timed(["--help"]) for _ in range(args.repeats)]
        assert all(rc == 0 for _, rc in helps), helps
        errors = [timed(["--batch-size", "x"]) for _ in range(args.repeats)]
        assert all(rc == 2 for _, rc in errors), errors
        out["help_s"] = statistics.median(t for t, _ in helps)
        out["arg_error_s"] = statistics.median(t for t, _ in errors)
        print(f"help {out['help_s']:.2f} s, flag error {out['arg_error_s']:.2f} s", flush=True)
        starts = [startup(os.path.join(tmp, f"walker{i}")) for i in range(args.repeats)]
        out["first_line_s"] = statistics.median(a for a, _ in starts)
        out["startup_s"] = statistics.median(b for _, b in starts)
        out["startup_s_all"] = [round(b, 2) for _, b in starts]
        print(f"first line {out['first_line_s']:.1f} s, first progress {out['startup_s']:.1f} s", flush=True)
        if not args.skip_quick:
            quick = []
            for i in range(args.quick_repeats):
                t, rc = timed(["--preset", "quick", "--run-dir", os.path.join(tmp, f"quick{i}"), "--no-progress"],
                              timeout=3600)  # fmt: skip
                assert rc == 0, rc
                quick.append(t)
                with open(os.path.join(tmp, f"quick{i}", "summary.json")) as f:
                    summary = json.load(f)
                out["quick_preset_eval_return"] = summary["final_eval_return_mean"]
                out["quick_preset_freeze_step"] = summary.get("freeze_step")
            out["quick_preset_s"] = statistics.median(quick)
            out["quick_preset_s_all"] = [round(t, 1) for t in quick]
            print(f"quick preset {out['quick_preset_s']:.0f} s", flush=True)
    out["targets"] = {"help_s": 2, "startup_s": 20, "quick_preset_s": 300}
    out.update(platform.provenance())
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
