#!/usr/bin/env python
"""Sanity check of the Atari environment: a uniformly random policy's score over whole
games (evaluation mode: no life-loss terminals, up to 30 no-op starts, 108k-frame cap),
beside the random column of the reference table (``seer_jax.envs.atari.reference_scores``, the scores that
human-normalised scores subtract). A game whose random score lands far from the
reference's would point at the environment rather than the agent.

    python experiments/studies/random_atari.py [GAME ...] [--games-per-game N] [--seed S]
    # default: the 8 games of the paper's table; prints one line per game
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import numpy as np

from seer_jax.envs.atari import AtariEnv, reference_scores


def main() -> None:
    reference = reference_scores()
    # The paper's table: the games the reference gives a Rainbow + SEER score for.
    table_games = [g for g, r in reference.items() if "rainbow_seer_paper" in r]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("games", nargs="*", default=table_games)
    p.add_argument("--games-per-game", type=int, default=30, help="random games played per Atari game")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for game in args.games:
        env = AtariEnv(game, seed=args.seed, train=False)
        rng = np.random.default_rng(args.seed)
        scores, steps, t0 = [], 0, time.time()
        for _ in range(args.games_per_game):
            env.reset()
            total = 0.0
            while True:
                ts = env.step(int(rng.integers(env.num_actions)))
                steps += 1
                total += float(ts.reward or 0.0)
                if ts.last():
                    break
            scores.append(total)
        print(
            f"{game}: random {np.mean(scores):,.1f} ± {np.std(scores):,.1f} over {len(scores)} games "
            f"(min {min(scores):,.0f}, max {max(scores):,.0f}; {steps / len(scores):,.0f} agent steps per game; "
            f"{env.num_actions} actions; {time.time() - t0:.0f} s); reference random: {reference.get(game, {}).get('random', '—')}",
            flush=True,
        )


if __name__ == "__main__":
    main()
