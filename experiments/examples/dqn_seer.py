"""Add SEER to a DQN written outside seer_jax, using only its replay buffer and freeze.

A double DQN on an envpool Atari game (conv encoder with 576 features, MLP head, Adam).
At ``--freeze-step`` the encoder's optimizer label switches to ``set_to_zero``
(``seer_jax.freeze``), the stored frames move to a latent buffer sized from the same byte
budget (``seer_jax.migrate``), and each new observation is encoded once, to act and to store.

    python experiments/examples/dqn_seer.py --game pong --steps 20000 --freeze-step 10000
"""

from __future__ import annotations

import argparse
import functools
import json

import envpool
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from seer_jax import Replay, capacity_for_budget, freeze, migrate


class Encoder(nn.Module):
    @nn.compact
    def __call__(self, frames: jax.Array) -> jax.Array:  # (B, 4, 84, 84) uint8 -> (B, 576)
        x = jnp.transpose(frames, (0, 2, 3, 1)).astype(jnp.float32) / 255.0
        x = nn.relu(nn.Conv(32, (5, 5), (5, 5), padding="VALID")(x))
        x = nn.relu(nn.Conv(64, (5, 5), (5, 5), padding="VALID")(x))
        return x.reshape(x.shape[0], -1)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="DQN + SEER on an envpool Atari game (seer_jax as a library).")
    defaults = dict(game="pong", steps=20_000, freeze_step=10_000, budget_mb=70.0, batch_size=32)
    for name, value in {**defaults, "learning_starts": 1_000, "target_every": 1_000, "seed": 0}.items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = p.parse_args(argv)
    env_id = "".join(w.capitalize() for w in args.game.split("_")) + "-v5"
    env = envpool.make(env_id, env_type="gymnasium", num_envs=1, seed=args.seed, episodic_life=True, reward_clip=True)
    num_actions = int(env.action_space.n)
    encoder, head = (
        Encoder(),
        nn.Sequential([nn.Dense(256), nn.relu, nn.Dense(num_actions)]),
    )  # head: (B, 576) -> (B, A)

    key = jax.random.PRNGKey(args.seed)
    k_enc, k_head, key = jax.random.split(key, 3)
    params = {
        "encoder": encoder.init(k_enc, jnp.zeros((1, 4, 84, 84), jnp.uint8))["params"],
        "head": head.init(k_head, jnp.zeros((1, 576)))["params"],
    }
    labels = freeze.label_params(params, encoder_keys=("encoder",))
    adam = optax.adam(1e-4, eps=1.5e-4)
    txs = {frozen: freeze.freezable(labels, encoder=adam, heads=adam, frozen=frozen) for frozen in (False, True)}
    copy = lambda tree: jax.tree_util.tree_map(jnp.copy, tree)
    train = {"params": params, "target": copy(params), "opt": txs[False].init(params)}

    def q_values(p, obs, frozen):  # obs: frame stacks before the freeze, latents after
        z = obs if frozen else encoder.apply({"params": p["encoder"]}, obs)
        return head.apply({"params": p["head"]}, z)

    def make_learn(replay: Replay, frozen: bool):
        def loss_fn(p, target, b):
            q = q_values(p, b["obs"], frozen)[jnp.arange(args.batch_size), b["action"]]
            best = jnp.argmax(q_values(p, b["next_obs"], frozen), axis=-1)  # double Q
            q_next = q_values(target, b["next_obs"], frozen)[jnp.arange(args.batch_size), best]
            y = b["reward"] + 0.99 * b["discount"] * jax.lax.stop_gradient(q_next)
            return optax.huber_loss(q, y).mean()

        @functools.partial(jax.jit, donate_argnums=0)
        def learn(train, rstate, k):
            batch = replay.sample(rstate, k, args.batch_size)
            loss, grads = jax.value_and_grad(loss_fn)(train["params"], train["target"], batch)
            updates, opt = txs[frozen].update(grads, train["opt"], train["params"])
            params = freeze.apply_updates(train["params"], updates, labels, frozen)
            return {**train, "params": params, "opt": opt}, loss

        return learn

    frame_spec = jax.ShapeDtypeStruct((84, 84), jnp.uint8)
    latent_spec = jax.ShapeDtypeStruct((576,), jnp.float32)
    action_spec = jax.ShapeDtypeStruct((), jnp.int32)
    budget = int(args.budget_mb * 2**20)
    cap = lambda spec: capacity_for_budget(
        budget, spec, action_spec, min_capacity=args.batch_size + 5, max_capacity=args.steps + 1
    )
    replay = Replay(frame_spec, action_spec, cap(frame_spec), stack=4)
    add = jax.jit(lambda replay, s, *t: replay.add(s, *t), static_argnums=0, donate_argnums=1)
    learn = make_learn(replay, frozen=False)
    encode = jax.jit(lambda p, stacks, key=None: encoder.apply({"params": p}, stacks))  # (B, 4, 84, 84) -> (B, 576)
    act_q = jax.jit(q_values, static_argnums=2)
    frozen, capacities, ep_return, rng = False, {"images": replay.capacity}, 0.0, np.random.default_rng(args.seed)
    returns: list[float] = []
    encoder_at_freeze: dict | None = None

    obs, _ = env.reset()
    rstate = add(replay, replay.init(), obs[0, -1], 0, 0.0, 1.0, True)
    done_prev, item = False, obs[0, -1]
    for t in range(args.steps):
        if t == args.freeze_step:  # SEER: freeze the encoder, migrate the buffer to latents
            frozen, encoder_at_freeze = True, copy(train["params"]["encoder"])
            train["opt"] = freeze.freeze_opt_state(train["opt"], txs[True], train["params"])
            latent_replay = Replay(latent_spec, action_spec, cap(latent_spec), stack=1)
            rstate = migrate(replay, rstate, latent_replay, functools.partial(encode, encoder_at_freeze), key)
            replay, learn = latent_replay, make_learn(latent_replay, True)
            capacities["latents"] = latent_replay.capacity
            item = encode(encoder_at_freeze, obs)[0]  # the current observation's latent
        key, k_learn = jax.random.split(key)
        eps = max(0.01, 1.0 - t / (0.1 * args.steps))
        if rng.random() < eps:
            action = int(rng.integers(num_actions))
        else:
            inp = item[None] if frozen else obs
            action = int(jnp.argmax(act_q(train["params"], inp, frozen)[0]))
        obs, reward, term, trunc, _ = env.step(np.asarray([action], np.int32))
        item = encode(train["params"]["encoder"], obs)[0] if frozen else obs[0, -1]  # stored, and acted on next
        if done_prev:  # envpool reset itself: this is a new episode's first observation
            rstate = add(replay, rstate, item, 0, 0.0, 1.0, True)
        else:
            rstate = add(replay, rstate, item, action, float(reward[0]), 0.0 if term[0] else 1.0, False)
            ep_return += float(reward[0])
        done_prev = bool(term[0] or trunc[0])
        if done_prev:
            returns, ep_return = [*returns, ep_return], 0.0
        if t >= args.learning_starts:
            train, loss = learn(train, rstate, k_learn)
        if t % args.target_every == 0:
            train["target"] = copy(train["params"])
    encoder_unchanged = encoder_at_freeze is not None and all(
        jax.tree.leaves(jax.tree.map(jnp.array_equal, encoder_at_freeze, train["params"]["encoder"]))
    )
    result = {
        "capacity": capacities,
        "stored": int(rstate.size),
        "encoder_unchanged_after_freeze": encoder_unchanged,
        "episodes": len(returns),
        "mean_clipped_return_last_10": float(np.mean(returns[-10:])) if returns else None,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
