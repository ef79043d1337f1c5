"""Comparing two run folders: the same final checkpoint (agent and buffer, bit for bit) and
the same logs. Shared by the resume tests."""

import csv
import os

import jax
import numpy as np

from seer_jax.checkpoint import RunCheckpointer
from seer_jax.train import TrainConfig


def final_arrays(run_dir):
    ck = RunCheckpointer(str(run_dir))
    step = ck.steps()[-1]
    import orbax.checkpoint as ocp

    out = ck.manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore()))["arrays"]
    return step, out


def read_csv(path):
    with open(path) as f:
        return list(csv.reader(f))


def assert_same_run(a, b, ignore_columns=()):
    sa, xa = final_arrays(a)
    sb, xb = final_arrays(b)
    assert sa == sb
    la, lb = jax.tree_util.tree_leaves(xa["agent"]), jax.tree_util.tree_leaves(xb["agent"])
    assert len(la) == len(lb) > 0
    for u, v in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    for u, v in zip(jax.tree_util.tree_leaves(xa["replay"]), jax.tree_util.tree_leaves(xb["replay"])):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    for name in ("train.csv", "eval.csv"):
        if os.path.exists(os.path.join(a, name)):
            ra, rb = read_csv(os.path.join(a, name)), read_csv(os.path.join(b, name))
            keep = [i for i, col in enumerate(ra[0]) if col not in ignore_columns]
            assert [[r[i] for i in keep] for r in ra] == [[r[i] for i in keep] for r in rb]


def dmc_cfg(run_dir, **kw):
    """The tiny cartpole run the resume tests stop and resume (crosses the freeze at 30)."""
    base = dict(
        task="cartpole_swingup",
        env_steps=8 * 60,
        batch_size=8,
        init_steps=10,
        freeze_step=30,
        eval_every=8 * 20,
        eval_episodes=1,
        log_every=5,
        episode_length=8 * 12,
        replay_budget_mb=1.5,
        run_dir=str(run_dir),
        progress=False,
        migrate_chunk=16,
        checkpoint_every=8 * 10,
    )
    base.update(kw)
    return TrainConfig(**base)
