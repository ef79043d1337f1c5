"""CURL-SAC update functions, SEER freeze, and migration of real agent latents."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from seer_jax import freeze as freeze_lib
from seer_jax import replay as replay_lib
from seer_jax.agents import CurlSac, CurlSacConfig

TINY = CurlSacConfig(image_size=24, crop_size=20, latent_dim=8, hidden_dim=32, num_filters=4, num_copies=3)
B = 6


def make_batch(agent, key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    shape = (B, *agent.obs_shape)
    return {
        "obs": jax.random.randint(k1, shape, 0, 256).astype(jnp.uint8),
        "next_obs": jax.random.randint(k2, shape, 0, 256).astype(jnp.uint8),
        "action": jax.random.uniform(k3, (B, agent.action_dim), minval=-1, maxval=1),
        "reward": jax.random.uniform(k4, (B,)),
        "discount": jnp.ones((B,)),
    }


def make_latent_batch(agent, state, key):
    k1, k2, k3 = jax.random.split(key, 3)
    batch = make_batch(agent, k1)
    batch["obs"] = agent.encode(state, batch["obs"], k2)
    batch["next_obs"] = agent.encode(state, batch["next_obs"], k3)
    return batch


def tree_allclose(a, b, rtol=1e-4, atol=1e-5):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def agent():
    return CurlSac(action_dim=2, config=TINY)


def test_update_jit_matches_eager(agent):
    state = agent.init(jax.random.PRNGKey(0))
    batch = make_batch(agent, jax.random.PRNGKey(1))
    for step in range(2):  # step 0 runs the actor, step 1 skips it
        key = jax.random.PRNGKey(10 + step)
        eager_state, eager_m = agent.update(state, batch, key)
        jit_state, jit_m = jax.jit(agent.update)(state, batch, key)
        tree_allclose(eager_state, jit_state)
        tree_allclose(eager_m, jit_m)
        state = jit_state
    assert int(state.step) == 2


def test_update_changes_everything_before_freeze(agent):
    state = agent.init(jax.random.PRNGKey(0))
    new, metrics = jax.jit(agent.update)(state, make_batch(agent, jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    for name in ("conv", "critic_proj", "q"):
        assert not np.allclose(
            jax.tree_util.tree_leaves(new.critic[name])[0], jax.tree_util.tree_leaves(state.critic[name])[0]
        ), name
    assert not np.allclose(new.curl["W"], state.curl["W"])
    for name in ("actor_proj", "trunk"):
        assert not np.allclose(
            jax.tree_util.tree_leaves(new.actor[name])[0], jax.tree_util.tree_leaves(state.actor[name])[0]
        ), name
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_latent_update_jit_matches_eager(agent):
    state = agent.freeze(agent.init(jax.random.PRNGKey(0)))
    batch = make_latent_batch(agent, state, jax.random.PRNGKey(1))
    eager = agent.update_latent(state, batch, jax.random.PRNGKey(2))
    jitted = jax.jit(agent.update_latent)(state, batch, jax.random.PRNGKey(2))
    tree_allclose(eager, jitted)


def test_encoder_bit_identical_after_freeze_while_heads_train(agent):
    state = agent.init(jax.random.PRNGKey(0))
    upd = jax.jit(agent.update)
    for i in range(3):
        state, _ = upd(state, make_batch(agent, jax.random.PRNGKey(i)), jax.random.PRNGKey(100 + i))
    state = agent.freeze(state)
    assert freeze_lib.is_frozen(state.critic_opt) and freeze_lib.is_frozen(state.actor_opt)
    frozen_encoder = jax.tree_util.tree_map(np.array, {k: state.critic[k] for k in ("conv", "critic_proj")})
    frozen_w = np.array(state.curl["W"])
    assert state.curl_opt is None  # CURL stops at the freeze
    frozen_actor_proj = jax.tree_util.tree_map(np.array, state.actor["actor_proj"])
    # After the freeze the target encoder is the online encoder.
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.target["conv"], state.critic["conv"])
    heads_before = jax.tree_util.tree_map(np.array, (state.critic["q"], state.actor["trunk"], state.target["q"]))
    upd_latent = jax.jit(agent.update_latent, donate_argnums=0)
    batch = make_latent_batch(agent, state, jax.random.PRNGKey(7))
    for i in range(40):
        state, metrics = upd_latent(state, batch, jax.random.PRNGKey(200 + i))
    for k, v in frozen_encoder.items():
        jax.tree_util.tree_map(np.testing.assert_array_equal, v, state.critic[k])
    jax.tree_util.tree_map(np.testing.assert_array_equal, frozen_actor_proj, state.actor["actor_proj"])
    np.testing.assert_array_equal(frozen_w, state.curl["W"])
    jax.tree_util.tree_map(np.testing.assert_array_equal, frozen_encoder["conv"], state.target["conv"])
    for before, after in zip(heads_before, (state.critic["q"], state.actor["trunk"], state.target["q"])):
        assert any(
            not np.array_equal(x, y)
            for x, y in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after))
        )
    assert np.isfinite(float(metrics["critic_loss"]))


def test_update_encoder_steps_only_the_encoder_label():
    """The authors' encoder_optimizer_critic steps a second time on the CURL loss while
    critic_optimizer does not: freeze.update_encoder is that second step."""
    params = {"enc": {"w": jnp.arange(3.0)}, "head": {"w": jnp.ones(2)}}
    labels = lambda p: freeze_lib.label_params(p, ["enc"])
    tx = freeze_lib.freezable(labels, encoder=optax.adam(0.1), heads=optax.adam(0.2))
    state = tx.init(params)
    g1 = {"enc": {"w": jnp.array([1.0, -2.0, 3.0])}, "head": {"w": jnp.array([0.5, 0.5])}}
    _, state = tx.update(g1, state, params)
    g2 = {"enc": {"w": jnp.array([-1.0, 4.0, 0.5])}, "head": {"w": jnp.array([9.0, 9.0])}}
    updates, new = freeze_lib.update_encoder(optax.adam(0.1), state, g2, labels)
    # the encoder's Adam saw g1 then g2; the heads' state is untouched
    ref_tx = optax.adam(0.1)
    ref = ref_tx.init(params["enc"])
    _, ref = ref_tx.update(g1["enc"], ref)
    ref_upd, _ = ref_tx.update(g2["enc"], ref)
    np.testing.assert_allclose(updates["enc"]["w"], ref_upd["w"], rtol=1e-6)
    jax.tree_util.tree_map(np.testing.assert_array_equal, new.inner_states["heads"], state.inner_states["heads"])
    frozen = freeze_lib.freeze_opt_state(
        new, freeze_lib.freezable(labels, encoder=optax.adam(0.1), heads=optax.adam(0.2), frozen=True), params
    )
    with pytest.raises(ValueError, match="frozen"):
        freeze_lib.update_encoder(optax.adam(0.1), frozen, g2, labels)


def test_random_crop_offsets_as_the_authors_draw_them():
    """numpy randint(0, 100 - 84) in the authors' code: offsets 0..15, never 16."""
    from seer_jax.augment import random_crop

    h = 100
    stacks = jnp.broadcast_to(jnp.arange(h, dtype=jnp.uint8)[None, None, :, None, None], (4000, 1, h, h, 1))
    tops = np.asarray(random_crop(jax.random.PRNGKey(0), stacks, 84)[:, 0, 0, 0] * 255).round()
    lefts_stacks = jnp.swapaxes(stacks, 2, 3)
    lefts = np.asarray(random_crop(jax.random.PRNGKey(1), lefts_stacks, 84)[:, 0, 0, 0] * 255).round()
    assert set(tops.astype(int)) == set(range(16)) and set(lefts.astype(int)) == set(range(16))


def test_freeze_keeps_head_optimizer_state():
    params = {"enc": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(2)}}
    labels = lambda p: freeze_lib.label_params(p, ["enc"])
    tx = freeze_lib.freezable(labels, encoder=optax.adam(0.1), heads=optax.adam(0.1))
    frozen_tx = freeze_lib.freezable(labels, encoder=optax.adam(0.1), heads=optax.adam(0.1), frozen=True)
    state = tx.init(params)
    grads = {"enc": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(2)}}
    _, state = tx.update(grads, state, params)
    frozen = freeze_lib.freeze_opt_state(state, frozen_tx, params)
    assert not freeze_lib.is_frozen(state) and freeze_lib.is_frozen(frozen)
    jax.tree_util.tree_map(np.testing.assert_array_equal, frozen.inner_states["heads"], state.inner_states["heads"])
    updates, _ = frozen_tx.update(grads, frozen, params)
    assert np.all(np.asarray(updates["enc"]["w"]) == 0)
    assert np.all(np.asarray(updates["head"]["w"]) != 0)
    with pytest.raises(KeyError, match="not in the parameters"):
        freeze_lib.label_params(params, ["missing"])


def test_migrated_latents_equal_encoder_on_same_crops(agent):
    state = agent.freeze(agent.init(jax.random.PRNGKey(0)))
    frame_spec = agent.frame_spec
    old = replay_lib.Replay(frame_spec, agent.action_spec, capacity=16, stack=3)
    add = jax.jit(old.add)
    rs = old.init()
    rng = np.random.default_rng(0)
    frames = []
    for t in range(11):  # two episodes: 0..5 and 6..10
        f = rng.integers(0, 256, frame_spec.shape, dtype=np.uint8)
        frames.append(f)
        rs = add(rs, f, np.zeros(2, np.float32), 0.0, 1.0, t in (0, 6))
    new = replay_lib.Replay(agent.latent_spec, agent.action_spec, capacity=50, stack=1)
    key = jax.random.PRNGKey(5)
    chunk = 4
    encode = lambda stacks, k: agent.encode(state, stacks, k)
    migrated = replay_lib.migrate(old, rs, new, encode, key, chunk_size=chunk)
    starts = [0, 6]
    stacks = []
    for t in range(11):
        s = max(x for x in starts if x <= t)
        stacks.append(np.stack([frames[max(t - 2, s)], frames[max(t - 1, s)], frames[t]]))
    stacks = np.stack(stacks)
    for i, r0 in enumerate(range(0, 11, chunk)):
        idx = np.minimum(np.arange(r0, r0 + chunk), 10)
        expected = agent.encode(state, jnp.asarray(stacks[idx]), jax.random.fold_in(key, i))
        n = min(chunk, 11 - r0)
        for name in ("critic", "actor"):
            np.testing.assert_allclose(
                np.asarray(migrated.items[name][r0 : r0 + n]), np.asarray(expected[name][:n]), rtol=1e-5, atol=1e-6
            )
    np.testing.assert_array_equal(np.asarray(migrated.first[:11]), [t in (0, 6) for t in range(11)])


def test_act_shapes_and_bounds(agent):
    state = agent.init(jax.random.PRNGKey(0))
    obs = jnp.zeros(agent.obs_shape, jnp.uint8)
    a = jax.jit(agent.act, static_argnums=3)(state, obs, jax.random.PRNGKey(1), True)
    assert a.shape == (2,) and np.all(np.abs(np.asarray(a)) <= 1)
    a_det = agent.act(state, obs, jax.random.PRNGKey(1), False)
    a_det2 = agent.act(state, obs, jax.random.PRNGKey(2), False)
    np.testing.assert_array_equal(a_det, a_det2)


def test_latents_are_what_act_sees(agent):
    # The public latents(): both heads' centre-crop latents of a batch; the deterministic
    # action is the policy mean of the actor latent, and each row is its stack's alone.
    state = agent.init(jax.random.PRNGKey(0))
    obs = jnp.asarray(np.random.default_rng(4).integers(0, 255, (3, *agent.obs_shape), dtype=np.uint8))
    z = jax.jit(agent.latents)(state, obs)
    d = agent.config.latent_dim
    assert z["critic"].shape == (3, d) and z["actor"].shape == (3, d) and z["critic"].dtype == jnp.float32
    assert not np.allclose(np.asarray(z["critic"]), np.asarray(z["actor"]))  # two projections
    mean, _ = agent.pi.apply({"params": state.actor["trunk"]}, z["actor"])
    np.testing.assert_allclose(
        np.asarray(jnp.tanh(mean)), np.asarray(agent.act(state, obs, jax.random.PRNGKey(1), False)), atol=1e-5
    )
    one = agent.latents(state, obs[1:2])
    for name in ("critic", "actor"):
        np.testing.assert_allclose(np.asarray(one[name][0]), np.asarray(z[name][1]), rtol=1e-5, atol=1e-5)


def test_frozen_observe_stores_encode_and_acts_like_act(agent):
    # observe() batches the centre crop and the stored crops into one conv pass: it must
    # compute what encode() and act() compute
    state = agent.freeze(agent.init(jax.random.PRNGKey(0)))
    obs = jnp.asarray(np.random.default_rng(3).integers(0, 255, agent.obs_shape, dtype=np.uint8))
    key = jax.random.PRNGKey(5)
    item, action = jax.jit(agent.observe, static_argnums=3)(state, obs, key, True)
    k_item, k_act = jax.random.split(key)
    expected = agent.encode(state, obs[None], k_item)
    for name in ("critic", "actor"):
        np.testing.assert_allclose(np.asarray(item[name]), np.asarray(expected[name][0]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(action), np.asarray(agent.act(state, obs, k_act, True)), rtol=1e-5, atol=1e-5)


def test_bf16_matmul_and_its_gradient_match_float32_to_bfloat16_precision():
    from seer_jax.networks import bf16_matmul

    kx, kw, kg = jax.random.split(jax.random.PRNGKey(3), 3)
    x = jax.random.normal(kx, (16, 40))
    w = jax.random.normal(kw, (40, 24)) / 40**0.5
    g = jax.random.normal(kg, (16, 24))
    exact = lambda x, w: (x @ w * g).sum()
    ours = lambda x, w: (bf16_matmul(x, w) * g).sum()
    y = bf16_matmul(x, w)
    assert y.dtype == jnp.float32
    # bfloat16 keeps 8 significant bits: inputs rounded by <= 2^-9 relative
    np.testing.assert_allclose(y, x @ w, atol=0.03)
    assert not np.array_equal(np.asarray(y), np.asarray(x @ w))  # really computed in bfloat16
    for a, b in zip(jax.grad(exact, (0, 1))(x, w), jax.grad(ours, (0, 1))(x, w)):
        assert a.shape == b.shape and b.dtype == jnp.float32
        np.testing.assert_allclose(b, a, atol=0.05 * float(jnp.abs(a).max()))
    # jit gives the same numbers as eager
    np.testing.assert_array_equal(jax.jit(jax.grad(ours, (0, 1)))(x, w)[1], jax.grad(ours, (0, 1))(x, w)[1])


def test_bf16_heads_have_float32_parameters_and_gradients_like_float32_heads():
    """Same parameters (so checkpoints and the freeze do not care), same outputs and the
    same gradient directions as the float32 heads, up to bfloat16 rounding."""
    from seer_jax.networks import QHead

    assert CurlSac(2, dataclasses.replace(TINY, matmul_dtype="bfloat16")).q.matmul_dtype == "bfloat16"
    z, a = jax.random.normal(jax.random.PRNGKey(0), (B, 8)), jax.random.uniform(jax.random.PRNGKey(1), (B, 2))
    q32, q16 = QHead(32), QHead(32, "bfloat16")
    params = q32.init(jax.random.PRNGKey(2), z, a)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(q16.init(jax.random.PRNGKey(2), z, a))
    loss = lambda head: lambda p: sum(((q - 1.0) ** 2).mean() for q in head.apply(p, z, a))
    np.testing.assert_allclose(q16.apply(params, z, a)[0], q32.apply(params, z, a)[0], atol=0.02)
    g32, g16 = jax.grad(loss(q32))(params), jax.grad(loss(q16))(params)
    for x, y in zip(jax.tree_util.tree_leaves(g32), jax.tree_util.tree_leaves(g16)):
        x, y = np.ravel(x), np.ravel(y)
        assert y.dtype == np.float32
        assert x @ y / (np.linalg.norm(x) * np.linalg.norm(y)) > 0.99


def test_matmul_dtype_is_checked():
    from seer_jax.train import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="--matmul-dtype must be float32 or bfloat16"):
        TrainConfig(task="cartpole_swingup", matmul_dtype="float16").resolved()
    with pytest.raises(ConfigError, match="Atari"):
        TrainConfig(task="pong", matmul_dtype="bfloat16").resolved()
