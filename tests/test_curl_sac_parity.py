"""CURL-SAC's update against the authors' SEER code, number for number.

``data/curl_sac_parity.npz`` holds what the authors' released agent (lili-chen/SEER,
``seer_dmc/curl_sac.py``, ``RadSacAgent``) computed, run in float64 outside this project
on 2026-12-05 (PyTorch 2.14.1, CPU) with a tiny configuration: 3 stacked RGB frames
cropped to 64x64, 4 conv layers of 2 filters, latent 6, hidden 16, action 2, batch 4,
every learning rate 1e-3, encoder tau 0.05, critic tau 0.01, init temperature 0.1. The
script built the agent with ``torch.manual_seed(0)``, drew blocky random frames (8x8
pixel blocks), took the crops with their ``utils.random_crop`` (offsets 0..7), recorded
the policy noise that ``torch.randn_like`` returned inside ``Actor.forward``, and called
``agent.update`` at agent steps 1001 (odd: critic and CURL), 1002 (even: critic, actor,
temperature, targets, CURL) and 1003, then their freeze (hard copy of the critic into its
target, ``detach_fc``) and ``agent.update_with_latent`` at step 1004 on given latents.
It stored the initial ``state_dict``s and ``W`` (float64), every batch with its crops
(uint8, NCHW) and noise, the losses their logger received, and each parameter's change
from the start after every update (float32). Only these numbers are in the project.

The test loads their initial weights into our layout (OIHW -> HWIO convolutions, the fc
rows from C,H,W to H,W,C order), runs :meth:`CurlSac.update_on_crops` and
:meth:`CurlSac.update_latent_on_picked` in float64 on the same crops and noise, and asks
every parameter's change and every loss to agree to 1e-5 relative. It fails if the
LayerNorm epsilon, the order of the update (re-encoding after the critic step, the CURL
positive after the target step) or the grouping of the optimizers goes back to what it
was before (checked by reverting each, 2026-12-05).
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seer_jax.agents import CurlSac, CurlSacConfig

FIXTURE = Path(__file__).parent / "data" / "curl_sac_parity.npz"
CONFIG = CurlSacConfig(
    image_size=72, crop_size=64, latent_dim=6, hidden_dim=16, num_filters=2, num_conv_layers=4, num_copies=1
)
PIXEL_UPDATES = ("update1", "update2", "update3")
RTOL = 1e-5


def _dense(sd, name):
    return {"kernel": sd[f"{name}.weight"].T, "bias": sd[f"{name}.bias"]}


def _encoder(sd, prefix, conv_hw):
    conv = {
        f"Conv_{i}": {
            "kernel": sd[f"{prefix}.convs.{i}.weight"].transpose(2, 3, 1, 0),
            "bias": sd[f"{prefix}.convs.{i}.bias"],
        }
        for i in range(CONFIG.num_conv_layers)
    }
    w = sd[f"{prefix}.fc.weight"]  # (out, C*H*W), flattened from NCHW
    kernel = w.reshape(w.shape[0], CONFIG.num_filters, conv_hw, conv_hw).transpose(2, 3, 1, 0).reshape(-1, w.shape[0])
    proj = {
        "Dense_0": {"kernel": kernel, "bias": sd[f"{prefix}.fc.bias"]},
        "LayerNorm_0": {"scale": sd[f"{prefix}.ln.weight"], "bias": sd[f"{prefix}.ln.bias"]},
    }
    return conv, proj


def _q(sd):
    return {
        q: {f"Dense_{i}": _dense(sd, f"{Q}.trunk.{2 * i}") for i in range(3)} for q, Q in (("q1", "Q1"), ("q2", "Q2"))
    }


def to_ours(flat):
    """Our (critic, actor, target, W, log_alpha) from the authors' state_dicts."""
    conv_hw = CONFIG.crop_size // 2 - 1 - 2 * (CONFIG.num_conv_layers - 1)
    sd = {
        net: {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith(net + "/")}
        for net in ("critic", "actor", "critic_target")
    }
    conv, critic_proj = _encoder(sd["critic"], "encoder", conv_hw)
    actor_conv, actor_proj = _encoder(sd["actor"], "encoder", conv_hw)
    jax.tree_util.tree_map(np.testing.assert_array_equal, conv, actor_conv)  # tied convolutions
    t_conv, t_proj = _encoder(sd["critic_target"], "encoder", conv_hw)
    critic = {"conv": conv, "critic_proj": critic_proj, "q": _q(sd["critic"])}
    actor = {
        "actor_proj": actor_proj,
        "trunk": {"MLP_0": {f"Dense_{i}": _dense(sd["actor"], f"trunk.{2 * i}") for i in range(3)}},
    }
    target = {"conv": t_conv, "critic_proj": t_proj, "q": _q(sd["critic_target"])}
    return critic, actor, target, flat["W"], flat["log_alpha"]


def _crops(x):
    """Their NCHW 0..255 crops as ours: NHWC float in [0, 1] (frames on channels alike)."""
    return jnp.asarray(x.transpose(0, 2, 3, 1).astype(np.float64) / 255.0)


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE) as f:
        return dict(f)


def _snapshot(d, prefix):
    return {k.split("/", 2)[2]: v for k, v in d.items() if k.startswith(prefix + "/delta/")}


def _assert_close(ours, theirs, what):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    err = np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30)
    assert err < RTOL, f"{what}: relative difference {err:.2e} (authors' norm {np.linalg.norm(theirs):.3e})"


def _compare(state, init, d, prefix):
    """Every stored parameter change after update ``prefix`` against ours."""
    theirs = _snapshot(d, prefix)
    init_flat = {k.split("/", 1)[1]: v for k, v in d.items() if k.startswith("init/")}
    now = to_ours({k: init_flat[k] + theirs.get(k, 0.0) for k in init_flat})
    before = to_ours(init_flat)
    ours_now = (state.critic, state.actor, state.target, state.curl["W"], state.log_alpha)
    names = ("critic", "actor", "target", "W", "log_alpha")
    for name, o, t, b in zip(names, ours_now, now, before):
        paths_o = jax.tree_util.tree_leaves_with_path(o)
        for (path, leaf), t_leaf, b_leaf in zip(paths_o, jax.tree_util.tree_leaves(t), jax.tree_util.tree_leaves(b)):
            what = f"{prefix} {name}{jax.tree_util.keystr(path)}"
            _assert_close(np.asarray(leaf) - b_leaf, t_leaf - b_leaf, what)


def test_update_matches_the_authors_code(fixture):
    d = fixture
    agent = CurlSac(action_dim=2, config=CONFIG)
    with jax.enable_x64(True):
        init_flat = {k.split("/", 1)[1]: v for k, v in d.items() if k.startswith("init/")}
        critic, actor, target, w, log_alpha = to_ours(init_flat)
        state = agent.init(jax.random.PRNGKey(0))
        f64 = lambda t: jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), t)
        critic, actor = f64(critic), f64(actor)
        state = state.replace(
            critic=critic,
            actor=actor,
            target=f64(target),
            curl={"W": jnp.asarray(w)},
            log_alpha=jnp.asarray(log_alpha, jnp.float64),
            critic_opt=agent.critic_tx(False).init(critic),
            curl_opt=agent.curl_tx.init(
                {"conv": critic["conv"], "critic_proj": critic["critic_proj"], "W": jnp.asarray(w)}
            ),
            actor_opt=agent.actor_tx(False).init(actor),
            alpha_opt=agent.alpha_tx.init(jnp.asarray(log_alpha, jnp.float64)),
            step=jnp.ones((), jnp.int32),  # their first update is at agent step 1001 (odd)
        )
        update = jax.jit(agent.update_on_crops)
        for prefix in PIXEL_UPDATES:
            b = {k.split("/", 1)[1]: v for k, v in d.items() if k.startswith(prefix + "/") and "/delta/" not in k}
            batch = {
                "obs": _crops(b["obs"]),
                "pos": _crops(b["pos"]),
                "next_obs": _crops(b["next_obs"]),
                "action": jnp.asarray(b["action"]),
                "reward": jnp.asarray(b["reward"]),
                "discount": jnp.asarray(b["not_done"]),
                "next_noise": jnp.asarray(b["next_noise"]),
                # odd steps skip the actor: its noise is unused, zeros stand in
                "actor_noise": jnp.asarray(b.get("actor_noise", np.zeros_like(b["next_noise"]))),
            }
            state, metrics = update(state, batch)
            _assert_close(metrics["critic_loss"], b["loss/train_critic/loss"], f"{prefix} critic loss")
            _assert_close(metrics["curl_loss"], b["loss/train/curl_loss"], f"{prefix} CURL loss")
            if "loss/train_actor/loss" in b:
                _assert_close(metrics["actor_loss"], b["loss/train_actor/loss"], f"{prefix} actor loss")
                _assert_close(metrics["alpha_loss"], b["loss/train_alpha/loss"], f"{prefix} alpha loss")
            else:
                assert np.isnan(float(metrics["actor_loss"]))
            _compare(state, init_flat, d, prefix)

        # Their freeze (hard copy of the critic into the target), then one latent update
        # at an even step on given latents (the LayerNorm outputs their frozen encoders give).
        state = agent.freeze(state)
        b = {k.split("/", 1)[1]: v for k, v in d.items() if k.startswith("latent1/") and "/delta/" not in k}
        batch = {
            "obs": {"critic": jnp.asarray(b["obs_critic"]), "actor": jnp.asarray(b["obs_actor"])},
            "next_obs": {"critic": jnp.asarray(b["next_critic"]), "actor": jnp.asarray(b["next_actor"])},
            "action": jnp.asarray(b["action"]),
            "reward": jnp.asarray(b["reward"]),
            "discount": jnp.asarray(b["not_done"]),
            "next_noise": jnp.asarray(b["next_noise"]),
            "actor_noise": jnp.asarray(b["actor_noise"]),
        }
        state, metrics = jax.jit(agent.update_latent_on_picked)(state, batch)
        _assert_close(metrics["critic_loss"], b["loss/train_critic/loss"], "latent critic loss")
        _assert_close(metrics["actor_loss"], b["loss/train_actor/loss"], "latent actor loss")
        _assert_close(metrics["alpha_loss"], b["loss/train_alpha/loss"], "latent alpha loss")
        theirs = _snapshot(d, "latent1")
        assert not any("encoder" in k for k in theirs)  # the frozen encoders are not stored: compare the heads
        ours_heads = {
            "critic/q": state.critic["q"],
            "actor/trunk": state.actor["trunk"],
            "critic_target/q": state.target["q"],
        }
        full_theirs = to_ours({k: init_flat[k] + theirs.get(k, _snapshot(d, "update3").get(k, 0.0)) for k in init_flat})
        base = to_ours(init_flat)
        pairs = {
            "critic/q": (full_theirs[0]["q"], base[0]["q"]),
            "actor/trunk": (full_theirs[1]["trunk"], base[1]["trunk"]),
            "critic_target/q": (full_theirs[2]["q"], base[2]["q"]),
        }
        for name, (t, b0) in pairs.items():
            for (path, o), t_leaf, b_leaf in zip(
                jax.tree_util.tree_leaves_with_path(ours_heads[name]),
                jax.tree_util.tree_leaves(t),
                jax.tree_util.tree_leaves(b0),
            ):
                _assert_close(np.asarray(o) - b_leaf, t_leaf - b_leaf, f"latent {name}{jax.tree_util.keystr(path)}")
        _assert_close(state.log_alpha - init_flat["log_alpha"], theirs["log_alpha"], "latent log_alpha")
