#!/usr/bin/env python
"""Render docs/results.md from the committed result files in docs/results/.

python experiments/make_docs/report.py
"""

from __future__ import annotations

import json
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RESULTS = os.path.join(ROOT, "docs", "results")


def load(name: str):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(x, digits=1):
    return "—" if x is None else f"{x:,.{digits}f}"


def dmc_bench(b) -> list[str]:
    lines = [
        "## DeepMind Control: update cost and memory (CURL-SAC + SEER)",
        "",
        f"`{b['command']}` on {b['date']}, {b['machine']} ({b['device']}), jax {b['jax_version']}, {b['allocator']}.",
        "",
        "| | before the freeze (images) | after the freeze (latents) | ratio | target |",
        "|---|---|---|---|---|",
        f"| update, batch {b['batch_size']} (ms, mean over consecutive updates) | {fmt(b['full_update_ms'])} | {fmt(b['latent_update_ms'])} | {b['full_update_ms'] / b['latent_update_ms']:.1f}x | full <= 600, latent <= 20 |",
        f"| bytes per stored transition | {b['image_bytes_per_transition']:,} | {b['latent_bytes_per_transition']:,} | {b['image_bytes_per_transition'] / b['latent_bytes_per_transition']:.1f}x capacity | |",
        f"| one action from pixels (ms) | {fmt(b['act_ms'], 2)} | {fmt(b['act_ms'], 2)} | | |",
        f"| storing one observation (ms) | frame copy | {fmt(b['encode_ms_per_obs'], 2)} (4 crops encoded) | | |",
        f"| migration at the freeze | | {fmt(b['migrate_s_per_1000_obs'], 2)} s per 1,000 stored observations | | |",
    ]
    for dtype, r in b.get("by_matmul_dtype", {}).items():
        if dtype != b.get("matmul_dtype", "float32"):
            lines.append(
                f"| update with {dtype} heads (`--matmul-dtype {dtype}`, same process; ms) | {fmt(r['full_update_ms'])} | {fmt(r['latent_update_ms'])} | {r['full_update_ms'] / r['latent_update_ms']:.1f}x | |"
            )
    if "full_update_ms_xla_default_fusions" in b:
        lines.append(
            f"| full update with XLA's default CPU fusions (ms) | {fmt(b['full_update_ms_xla_default_fusions'])} | | {b['full_update_ms_xla_default_fusions'] / b['full_update_ms']:.2f}x slower | |"
        )
    lines.append("")
    return lines


def atari_bench(b) -> list[str]:
    return [
        "## Atari: update cost and memory (DER + SEER)",
        "",
        f"`{b['command']}` on {b['date']}, {b['machine']} ({b['device']}), jax {b['jax_version']}, {b['allocator']}.",
        "",
        "| | before the freeze | after the freeze | target |",
        "|---|---|---|---|",
        f"| update, batch {b['batch_size']}, {b['num_actions']} actions (ms) | {fmt(b['pixel_update_ms'], 2)} | {fmt(b['latent_update_ms'], 2)} | latent <= 1.5 |",
        f"| the update alone on a fixed batch (ms) | | {fmt(b.get('latent_update_only_ms'), 2)} | |",
        f"| a plain reference DER update, same process (`experiments/bench/der_reference.py`; ms) | | {fmt(b.get('reference_plain_latent_update_ms'), 2)} | |",
        f"| whole agent step after the freeze (act, env step, store, update; ms) | | {fmt(b['agent_step_ms_after_freeze'], 2)} | <= 2.5 |",
        f"| bytes per stored transition | {b['image_bytes_per_transition']:,} | {b['latent_bytes_per_transition']:,} ({b['capacity_factor']:.2f}x capacity) | |",
        "",
    ]


def seeds_bench(b) -> list[str]:
    lines = [
        "## Several seeds in one process (after the freeze)",
        "",
        f"`{b['command'].strip()}` on {b['date']}, {b['machine']}; agent steps per second summed over seeds, "
        f"{b['seconds_per_measurement']:.0f} s per measurement.",
        "",
        "| setting | N | one process (seed axis, vmap) | N separate processes | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in b["settings"].items():
        for n, one in s["steps_per_s_one_process"].items():
            sep = s["steps_per_s_separate_processes"][n]
            target = ">= 1.5" if name == "atari" and n == "4" else ""
            lines.append(f"| {name} ({s['task']}) | {n} | {one:.1f} | {sep:.1f} | {one / sep:.2f} | {target} |")
    lines.append("")
    return lines


def ablation(r) -> list[str]:
    name = f"ablate_freeze_{r['task']}"
    lines = [
        f"## Return against the freeze step: {r['task']} (seed {r['seed']}, batch {r['batch_size']})",
        "",
        "Each variant is forked from one plain run's checkpoint at its freeze step "
        "(`experiments/studies/ablate_freeze.py`); unfinished ones show their latest evaluation.",
        "",
        f"![{name}](results/{name}.png)",
        "",
        "| freeze at agent step | latest eval return | at env steps | finished |",
        "|---|---|---|---|",
    ]
    variants = dict(r["freeze_steps"])
    if r.get("plain"):
        variants["no freeze"] = r["plain"]
    for k, v in variants.items():
        last = v["curve"][-1] if v["curve"] else {"env_steps": 0, "return_mean": float("nan")}
        lines.append(
            f"| {k} | {last['return_mean']:.1f} | {last['env_steps']:,} | {'yes' if v.get('finished') else 'no'} |"
        )
    lines.append("")
    return lines


def learn(r) -> list[str]:
    name = f"learn_{r['task']}"
    lines = [
        f"## Learning: {r['task']} ("
        + (
            f"CURL-SAC + SEER, batch {r['batch_size']}, freeze at agent step {r['freeze_step']})"
            if r["freeze_step"]
            else f"plain CURL-SAC, no freeze, batch {r['batch_size']})"
        ),
        "",
        f"`{r['command']}` on {r['date']}, {r['machine']}; seeds {r['seeds']}"
        + (
            ""
            if r["finished"]
            else f" — **unfinished**: curve up to {r['env_steps'][-1] if r['env_steps'] else 0:,} of {r['target_env_steps']:,} env steps"
        ),
        "",
        f"![{name}](results/{name}.png)",
        "",
        "| env steps | eval return (mean ± std) |",
        "|---|---|",
    ]
    lines += [
        f"| {s:,} | {m:.1f} ± {sd:.1f} |"
        for s, m, sd in zip(r["env_steps"], r["eval_return_mean"], r["eval_return_std"])
    ]
    lines.append("")
    return lines


def learn_atari(r) -> list[str]:
    lines = [
        f"## Learning on Atari: DER + SEER vs DER at {r['agent_steps']:,} agent steps",
        "",
        f"`{r['command']}` on {r['date']}, {r['machine']}. SEER freezes at agent step 50,004; "
        "scores are each seed's final evaluation (10 whole games).",
        "",
        "![learn_atari_100k](results/learn_atari_100k.png)",
        "",
        "| game | variant | final score per seed | mean ± std | DER published (100k) |",
        "|---|---|---|---|---|",
    ]
    for game, g in r["games"].items():
        for variant, v in g["variants"].items():
            per_seed = ", ".join(
                f"{x:,.0f}" if x is not None else f"(seed {s}: not finished)"
                for s, x in zip(v["seeds"], v["final"], strict=True)
            )
            lines.append(
                f"| {game} | {'DER + SEER' if variant == 'seer' else 'DER'} | {per_seed} | "
                f"{fmt(v['final_mean'])} ± {fmt(v['final_std'])} | {fmt(g['der_published_100k'])} |"
            )
    lines.append("")
    return lines


def walker_cpu(r) -> list[str]:
    state = "finished" if r["finished"] else f"**running**: evaluated up to {max(r['env_steps'] or [0]):,} env steps"
    lines = [
        "## walker_walk to 500k env steps on the CPU (CURL-SAC + SEER)",
        "",
        f"`{r['command']}` on {r['date']}, {r['machine']}; {state}; {r['processes']} process(es).",
        "",
        "![walker_walk_cpu](results/walker_walk_cpu.png)",
        "",
        "| | value |",
        "|---|---|",
        f"| eval return at 100k / 500k env steps | {fmt(r['eval_return_mean_100k'])} / {fmt(r['eval_return_mean_500k'])} (target >= 900 at 500k) |",
        "| every evaluation (env steps: mean return of 10 episodes) | "
        + ", ".join(f"{e // 1000}k: {x:.0f}" for e, x in zip(r["env_steps"], r["eval_return_mean"], strict=True))
        + " |",
    ]
    if "hours_before_freeze" in r:
        so_far = "" if r["finished"] else f" (so far: {r['agent_steps_done']:,} agent steps, up to the last checkpoint)"
        lines += [
            f"| wall-clock before / after the freeze (training){so_far} | {r['hours_before_freeze']:.2f} h / {r['hours_after_freeze']:.2f} h |",
            f"| wall-clock in all, with evaluation (up to checkpoints / every process) | {r['hours_total']:.2f} h / {r['hours_all_processes']:.2f} h (target <= 4 h) |",
            f"| agent steps per second before / after the freeze | {fmt(r['agent_steps_per_s_before_freeze'], 2)} / {fmt(r['agent_steps_per_s_after_freeze'], 1)} |",
            f"| peak memory (resident) | {fmt(r['peak_memory_mb'], 0)} MB |",
            f"| replay capacity before / after the freeze | {fmt(r['replay_capacity_before_freeze'], 0)} / {fmt(r['replay_capacity_after_freeze'], 0)} |",
            f"| plain CURL-SAC for the same run (pre-freeze cost per step x all steps, a lower bound) | {r['plain_curl_sac_hours_estimate']:.1f} h |",
        ]
    lines.append("")
    return lines


def render() -> str:
    """docs/results.md as it should read for the result files in docs/results/."""
    out = [
        "# Results",
        "",
        "Every number below was measured by the command shown, on the machine and date shown; "
        "the JSON files beside this page hold the raw figures. Regenerate this page with `python experiments/make_docs/report.py`.",
        "",
    ]
    for fn, name in (
        (dmc_bench, "bench_dmc.json"),
        (atari_bench, "bench_atari.json"),
        (seeds_bench, "bench_seeds.json"),
    ):
        b = load(name)
        if b:
            out += fn(b)
    for fn, name in ((learn_atari, "learn_atari_100k.json"), (walker_cpu, "walker_walk_cpu.json")):
        r = load(name)
        if r:
            out += fn(r)
    if load("atari_500k.json"):
        out += ["## The paper's Atari table at 500k", "", "See [atari_500k.md](atari_500k.md).", ""]
    for f in sorted(os.listdir(RESULTS)) if os.path.isdir(RESULTS) else []:
        if f.startswith("learn_") and f.endswith(".json") and not f.startswith("learn_atari"):
            out += learn(load(f))
        if f.startswith("ablate_freeze_") and f.endswith(".json"):
            out += ablation(load(f))
    notes = os.path.join(RESULTS, "notes.md")
    if os.path.exists(notes):
        with open(notes) as fh:
            out += [rebase_links(fh.read(), "results")]
    return "\n".join(out).rstrip() + "\n"


def rebase_links(text: str, folder: str) -> str:
    """Rewrite the relative Markdown link targets of a text written in docs/FOLDER/ so
    that they resolve from docs/, where the page embedding it lives."""

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"[a-z]+:|#|/", target):
            return m.group(0)
        return f"{m.group(1)}({os.path.normpath(os.path.join(folder, target))})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", fix, text)


def main() -> None:
    with open(os.path.join(ROOT, "docs", "results.md"), "w") as fh:
        fh.write(render())


if __name__ == "__main__":
    main()
