"""Data-efficient Rainbow pieces: C51 projection, noisy layers, updates, freeze."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seer_jax import freeze as freeze_lib
from seer_jax.agents.der import Der, DerConfig, categorical_projection
from seer_jax.networks import NoisyDense


def test_projection_hand_computed():
    support = jnp.array([-1.0, 0.0, 1.0])
    # atoms land at -1.5 (clipped to -1), 0.25 and 0.5
    tz = jnp.array([[-1.5, 0.25, 0.5]])
    p = jnp.array([[0.2, 0.3, 0.5]])
    m = categorical_projection(support, tz, p)
    # -1.5 -> all on -1; 0.25 -> 0.75 on 0, 0.25 on 1; 0.5 -> 0.5 on 0, 0.5 on 1
    expected = [[0.2, 0.3 * 0.75 + 0.5 * 0.5, 0.3 * 0.25 + 0.5 * 0.5]]
    np.testing.assert_allclose(np.asarray(m), expected, rtol=1e-6)


def test_projection_identity_and_mass():
    support = jnp.linspace(-10, 10, 51)
    p = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(0), (4, 51)))
    np.testing.assert_allclose(
        np.asarray(categorical_projection(support, jnp.broadcast_to(support, (4, 51)), p)), np.asarray(p), atol=1e-6
    )
    shifted = support[None] * 0.97 + jnp.array([[0.3], [-4.0], [25.0], [0.0]])
    m = categorical_projection(support, shifted, p)
    np.testing.assert_allclose(np.asarray(m.sum(-1)), 1.0, rtol=1e-5)
    # everything beyond v_max lands on the last atom
    np.testing.assert_allclose(float(m[2, -1]), 1.0, rtol=1e-5)
    # the mean moves with the shift where nothing is clipped
    np.testing.assert_allclose(float((m[0] * support).sum()), float((p[0] * (support * 0.97 + 0.3)).sum()), atol=1e-4)


def test_noisy_layer_noise_changes_with_key_and_vanishes_in_eval():
    layer = NoisyDense(5)
    x = jnp.ones((2, 3))
    noise = lambda i: jax.random.normal(jax.random.PRNGKey(i), (8,))
    params = layer.init(jax.random.PRNGKey(0), x, noise(1), True)
    a = layer.apply(params, x, noise(1), True)
    b = layer.apply(params, x, noise(2), True)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(layer.apply(params, x, noise(1), True), a)
    e1 = layer.apply(params, x, noise(1), False)
    e2 = layer.apply(params, x, noise(2), False)
    np.testing.assert_array_equal(e1, e2)
    p = params["params"]
    np.testing.assert_allclose(np.asarray(e1), np.asarray(x @ p["w_mu"] + p["b_mu"]), rtol=1e-6)
    assert np.allclose(np.asarray(p["w_sigma"]), 0.1 / np.sqrt(3))
    # the noisy weights are mu + sigma * f(e_in) f(e_out)^T
    f = lambda e: np.sign(e) * np.sqrt(np.abs(e))
    e = np.asarray(noise(1))
    w = np.asarray(p["w_mu"]) + np.asarray(p["w_sigma"]) * np.outer(f(e[:3]), f(e[3:]))
    bias = np.asarray(p["b_mu"]) + np.asarray(p["b_sigma"]) * f(e[3:])
    np.testing.assert_allclose(np.asarray(a), np.asarray(x) @ w + bias, rtol=1e-5)


@pytest.fixture(scope="module")
def agent():
    return Der(num_actions=5, config=DerConfig(target_update=3))


def batch_for(agent, key, b=4):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "obs": jax.random.randint(k1, (b, *agent.obs_shape), 0, 256).astype(jnp.uint8),
        "next_obs": jax.random.randint(k2, (b, *agent.obs_shape), 0, 256).astype(jnp.uint8),
        "action": jax.random.randint(k3, (b,), 0, 5),
        "reward": jax.random.uniform(k4, (b,)),
        "discount": jnp.full((b,), 0.99**20),
    }


def test_features_are_576(agent):
    state = agent.init(jax.random.PRNGKey(0))
    assert agent.features(state.params["conv"], jnp.zeros((2, *agent.obs_shape), jnp.uint8)).shape == (2, 576)


def test_update_jit_matches_eager_and_target_schedule(agent):
    state = agent.init(jax.random.PRNGKey(0))
    upd = jax.jit(agent.update)
    for i in range(3):
        b, k = batch_for(agent, jax.random.PRNGKey(i)), jax.random.PRNGKey(10 + i)
        eager, m_eager = agent.update(state, b, k)
        state, m = upd(state, b, k)
        for x, y in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(state)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
        assert np.isfinite(float(m["loss"]))
        if i < 2:  # target not yet copied
            assert not np.allclose(state.target["heads"]["fc_z_v"]["w_mu"], state.params["heads"]["fc_z_v"]["w_mu"])
    # after target_update=3 updates the target equals the online network
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.target, state.params)


def test_freeze_keeps_convs_bit_identical(agent):
    state = agent.init(jax.random.PRNGKey(0))
    state, _ = jax.jit(agent.update)(state, batch_for(agent, jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    state = agent.freeze(state)
    assert freeze_lib.is_frozen(state.opt)
    conv = jax.tree_util.tree_map(np.array, state.params["conv"])
    heads = jax.tree_util.tree_map(np.array, state.params["heads"])
    upd = jax.jit(agent.update_latent, donate_argnums=0)
    for i in range(10):
        b = batch_for(agent, jax.random.PRNGKey(i))
        b["obs"] = agent.encode(state, b["obs"], None)
        b["next_obs"] = agent.encode(state, b["next_obs"], None)
        state, m = upd(state, b, jax.random.PRNGKey(50 + i))
    jax.tree_util.tree_map(np.testing.assert_array_equal, conv, state.params["conv"])
    jax.tree_util.tree_map(np.testing.assert_array_equal, conv, state.target["conv"])
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree_util.tree_leaves(heads), jax.tree_util.tree_leaves(state.params["heads"]))
    )
    assert np.isfinite(float(m["loss"]))


def test_latent_update_equals_pixel_loss_on_same_features(agent):
    """After the freeze, the latent update on stored features gives the same loss as
    the pixel update's loss would on the frozen convs."""
    state = agent.freeze(agent.init(jax.random.PRNGKey(0)))
    b = batch_for(agent, jax.random.PRNGKey(3))
    key = jax.random.PRNGKey(4)
    feats = agent.features(state.params["conv"], b["obs"])
    nxt = agent.features(state.params["conv"], b["next_obs"])
    loss_pixels, _ = agent._loss(state.params["heads"], state.target["heads"], feats, nxt, nxt, b, key)
    lb = dict(b, obs=agent.encode(state, b["obs"], None), next_obs=agent.encode(state, b["next_obs"], None))
    _, m = agent.update_latent(state, lb, key)
    np.testing.assert_allclose(float(m["loss"]), float(loss_pixels), rtol=1e-5)


def test_act_eval_is_greedy_without_noise(agent):
    state = agent.init(jax.random.PRNGKey(0))
    obs = jnp.zeros(agent.obs_shape, jnp.uint8)
    acts = {int(agent.act(state, obs, jax.random.PRNGKey(i), False)) for i in range(20)}
    assert len(acts) <= 2  # epsilon 0.001: (almost) always the same greedy action
    a = jax.jit(agent.act, static_argnums=3)(state, obs, jax.random.PRNGKey(0), True)
    assert a.dtype == jnp.int32 and 0 <= int(a) < 5


def test_patch_conv_equals_strided_convolution():
    import flax.linen as nn

    from seer_jax.networks import PatchConv

    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 84, 84, 4))
    xc = jnp.moveaxis(x, -1, 1)  # channels first
    ref = nn.Conv(32, (5, 5), strides=5, padding="VALID")
    params = ref.init(jax.random.PRNGKey(1), x)
    ours = PatchConv(32, 5)
    # the same initial numbers as Flax's conv too (ours draws the kernel as a matrix: faster to compile)
    chex.assert_trees_all_equal(ours.init(jax.random.PRNGKey(1), x), params)
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-5, atol=1e-5)
    first = PatchConv(32, 5, channels_first=True)
    np.testing.assert_allclose(first.apply(params, xc), ref.apply(params, x), rtol=1e-5, atol=1e-5)
    # gradients too (the reason for the patch form is the backward pass)
    g_ours = jax.grad(lambda p: jnp.sum(ours.apply(p, x) ** 2))(params)
    g_ref = jax.grad(lambda p: jnp.sum(ref.apply(p, x) ** 2))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_ours), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv_init_pytorch_matches_the_reference_bounds():
    """`conv_init="pytorch"` (the default, issue #43): kernels and biases uniform in
    +-1/sqrt(fan_in) (PyTorch's Conv2d default, the released SEER code's); the option
    "lecun_normal" keeps Flax's LeCun-normal kernels (std 1/sqrt(fan_in)) and zero biases."""
    ours = Der(num_actions=4, config=DerConfig(conv_init="lecun_normal")).init(jax.random.PRNGKey(0)).params["conv"]
    torch_like = Der(num_actions=4).init(jax.random.PRNGKey(0)).params["conv"]
    for name, fan_in in (("Conv_0", 5 * 5 * 4), ("Conv_1", 5 * 5 * 32)):
        bound = 1 / np.sqrt(fan_in)
        k, b = np.asarray(torch_like[name]["kernel"]), np.asarray(torch_like[name]["bias"])
        assert np.abs(k).max() <= bound and np.abs(b).max() <= bound
        assert abs(k.std() - bound / np.sqrt(3)) < 0.05 * bound  # uniform: std = bound / sqrt(3)
        assert np.abs(b).max() > 0.5 * bound
        k0 = np.asarray(ours[name]["kernel"])
        assert abs(k0.std() - bound) < 0.1 * bound and not np.any(np.asarray(ours[name]["bias"]))
    with pytest.raises(ValueError, match="conv_init"):
        Der(num_actions=4, config=DerConfig(conv_init="xavier"))


def test_conv_init_is_an_atari_setting():
    from seer_jax.train import ConfigError, TrainConfig

    TrainConfig(task="pong", conv_init="pytorch").resolved()
    with pytest.raises(ConfigError, match="conv-init"):
        TrainConfig(task="cartpole_swingup", conv_init="pytorch").resolved()
    with pytest.raises(ConfigError, match="conv-init"):
        TrainConfig(task="pong", conv_init="xavier").resolved()
