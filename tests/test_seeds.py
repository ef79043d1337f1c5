"""The seed axis: vmapped seeds compute what separate runs compute, and a sharded seed
axis (two host devices) computes what the unsharded one does."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from seer_jax import Der, Replay, seeds
from seer_jax import replay as replay_lib
from seer_jax.train import compiled_programs, make_learn, make_observe

SEEDS = (0, 1, 2)


def filled(replay, agent, seed, n):
    """A buffer of real-shaped random frames with an episode start every 9 frames."""
    rng = np.random.default_rng(seed)
    state = replay.init()
    add = jax.jit(replay.add)
    for t in range(n):
        frame = rng.integers(0, 255, agent.frame_spec.shape, dtype=np.uint8)
        state = add(state, frame, np.int32(rng.integers(agent.num_actions)), float(rng.normal()), 1.0, t % 9 == 0)
    return state


def allclose(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=2e-5, atol=1e-6)


def setup(n_frames=(60, 45, 70)):
    agent = Der(6)
    image = Replay(agent.frame_spec, agent.action_spec, 64, stack=4)
    latent = Replay(agent.latent_spec, agent.action_spec, 200)
    states = [agent.init(jax.random.PRNGKey(s)) for s in SEEDS]
    buffers = [filled(image, agent, s, n) for s, n in zip(SEEDS, n_frames, strict=True)]
    return agent, image, latent, states, buffers


def test_vmapped_updates_store_and_migration_equal_separate_seeds():
    agent, image, latent, states, buffers = setup()
    keys = [jax.random.PRNGKey(100 + s) for s in SEEDS]
    # pixel updates: separate vs vmapped
    single = make_learn(image, agent.update, 8, agent.n_step, agent.gamma)
    many = seeds.make_learn(image, agent.update, 8, agent.n_step, agent.gamma)
    stacked = seeds.stack(states)
    for step in range(2):
        stacked, m = many(stacked, seeds.stack(buffers), seeds.stack(keys), jnp.int32(step))
        for i in range(len(SEEDS)):
            states[i], mi = single(states[i], buffers[i], keys[i], jnp.int32(step))
            allclose(seeds.take(m, i), mi)
    for i in range(len(SEEDS)):
        allclose(seeds.take(stacked, i), states[i])

    # the freeze and the migration (buffers of different sizes; one has wrapped)
    frozen = [agent.freeze(s) for s in states]
    encode = lambda st, stacks, k: agent.encode(st, stacks, k)
    mkeys = [jax.random.PRNGKey(7 + s) for s in SEEDS]
    one = [
        replay_lib.migrate(image, b, latent, lambda x, k, st=st: encode(st, x, k), k, 16)
        for b, st, k in zip(buffers, frozen, mkeys, strict=True)
    ]
    both = seeds.migrate(image, seeds.stack(buffers), latent, encode, seeds.stack(frozen), seeds.stack(mkeys), 16)
    assert [int(s) for s in both.size] == [int(b.size) for b in one] == [60, 45, 64]
    for i in range(len(SEEDS)):
        allclose(seeds.take(both, i), one[i])

    # storing and acting after the freeze, with seed 1 receiving no observation
    obs = [np.random.default_rng(s).integers(0, 255, agent.obs_shape, dtype=np.uint8) for s in SEEDS]
    write = np.array([True, False, True])
    obs_one = make_observe(latent, agent, frozen=True)
    obs_many = seeds.make_observe(latent, agent, frozen=True)
    args = [(np.int32(2), np.float32(0.5), np.float32(1.0), False, np.int32(9), mkeys[i]) for i in range(3)]
    out, actions = obs_many(
        jax.tree_util.tree_map(jnp.copy, both),
        seeds.stack(frozen),
        jnp.asarray(np.stack(obs)),
        *[jnp.asarray(np.stack([a[j] for a in args])) for j in range(5)],
        seeds.stack(mkeys),
        jnp.asarray(write),
    )
    for i in range(len(SEEDS)):
        expect, action = obs_one(jax.tree_util.tree_map(jnp.copy, one[i]), frozen[i], obs[i], *args[i])
        assert int(actions[i]) == int(action)
        allclose(seeds.take(out, i), expect if write[i] else one[i])


def test_sharded_seed_axis_matches_unsharded():
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np, json
        from seer_jax import Der, Replay, seeds
        assert len(jax.devices()) == 2, jax.devices()
        agent = Der(6)
        image = Replay(agent.frame_spec, agent.action_spec, 64, stack=4)
        rng = np.random.default_rng(0)
        bufs = []
        for s in range(4):
            st = image.init()
            for t in range(40):
                st = image.add(st, rng.integers(0, 255, (84, 84, 1), dtype=np.uint8), np.int32(t % 6), 1.0, 1.0, t % 9 == 0)
            bufs.append(st)
        states = seeds.stack([agent.init(jax.random.PRNGKey(s)) for s in range(4)])
        keys = seeds.stack([jax.random.PRNGKey(10 + s) for s in range(4)])
        learn = seeds.make_learn(image, agent.update, 8, agent.n_step, agent.gamma)
        plain, _ = learn(jax.tree_util.tree_map(jnp.copy, states), seeds.stack(bufs), keys, jnp.int32(0))
        mesh = seeds.seed_mesh(4)
        sh_states, sh_bufs, sh_keys = seeds.shard((states, seeds.stack(bufs), keys), mesh)
        out, _ = learn(sh_states, sh_bufs, sh_keys, jnp.int32(0))
        leaf = jax.tree_util.tree_leaves(out)[0]
        placement = sorted((s.device.id, s.index[0].start, s.index[0].stop) for s in leaf.addressable_shards)
        diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(plain)) if jnp.issubdtype(a.dtype, jnp.floating))
        print(json.dumps({"placement": placement, "diff": diff}))
        """
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["placement"] == [[0, 0, 2], [1, 2, 4]]  # each half of the seed axis on its own device
    assert result["diff"] < 1e-5


TINY = dict(task="pong", env_steps=120, batch_size=8, init_steps=40, freeze_step=70, replay_budget_mb=0.5,
            migrate_chunk=32, eval_every=120, eval_episodes=1, log_every=10, progress=False)  # fmt: skip


def read_csv(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def test_seeds_in_one_process_train_like_separate_runs_with_per_seed_folders_and_resume(tmp_path):
    from seer_jax.train import TrainConfig, train

    many = train(TrainConfig(**TINY, seeds=[0, 1], run_dir=str(tmp_path / "many")))
    alone = train(TrainConfig(**TINY, seed=1, run_dir=str(tmp_path / "alone")))
    assert many["seeds"] == [0, 1] and len(many["runs"]) == 2
    one = many["runs"][1]
    assert one["capacity_images"] == alone["capacity_images"] and one["capacity_latents"] == alone["capacity_latents"]
    # seed 1's folder is laid out as the single-seed run, with its own logs and evaluations
    for name in ("config.json", "train.csv", "eval.csv", "summary.json", "learning_curve.png"):
        assert (tmp_path / "many" / "seed1" / name).exists(), name
    assert (tmp_path / "many" / "learning_curve.png").exists()  # every seed and their mean
    rows_many, rows_alone = (read_csv(p / "train.csv") for p in (tmp_path / "many" / "seed1", tmp_path / "alone"))
    assert [r["env_steps"] for r in rows_many] == [r["env_steps"] for r in rows_alone]
    # the same data and keys: the first updates agree to float precision (vmapped
    # kernels round differently in the last bits, so long runs may drift apart)
    first = rows_alone[0]
    for k in ("loss", "episodes"):
        np.testing.assert_allclose(float(rows_many[0][k]), float(first[k]), rtol=1e-4)
    assert read_csv(tmp_path / "many" / "seed0" / "train.csv")[0]["loss"] != first["loss"]  # seeds differ

    # killed and resumed: exactly the uninterrupted many-seed run, per seed, with the
    # same compiled programs (no variants compiled for the restored arrays)
    before = compiled_programs()
    cfg = TrainConfig(**TINY, seeds=[0, 1], run_dir=str(tmp_path / "resumed"), checkpoint_every=50)
    assert train(cfg, stop_after=60) is None
    assert sorted(os.listdir(tmp_path / "resumed" / "seed0" / "checkpoints")) == ["50", "60"]
    resumed = train(cfg)
    assert compiled_programs() == before
    for a, b in zip(resumed["runs"], many["runs"], strict=True):
        assert a["eval"] == b["eval"]
    for s in ("seed0", "seed1"):
        assert read_csv(tmp_path / "resumed" / s / "train.csv") == read_csv(tmp_path / "many" / s / "train.csv")
