"""Atari (ALE v5) through envpool, as a ``dm_env.Environment``, with the observations
and episode handling of the released SEER / data-efficient Rainbow code (Kaixhin's
Rainbow ``Env``):

* Frame skip 4 with each of the last two frames of a skip turned into an 84x84 grey
  image by bilinear interpolation, then their maximum (envpool is asked for single
  frames, ``frame_skip=1``, resized with ``use_inter_area_resize=False``, i.e. OpenCV's
  bilinear filter per frame; the skip and the maximum happen here). No sticky actions,
  minimal action set, no FIRE on reset, games capped at 108k frames.
* A new game starts with up to 30 no-op frames (envpool's reset: 1-30).
* Observations: the last 4 images, ``(4, 84, 84, 1)`` uint8, newest last; a new game's
  stack is padded with zero images (the replay buffer pads its stacks the same way).
* Training mode (``train=True``): losing a life ends the episode (``LAST`` with discount
  0); the next :meth:`reset` plays one no-op frame and goes on with the same game, the
  stack keeping the previous life's images. Rewards are clipped to [-1, 1]. The raw
  (unclipped) game score is reported in :attr:`AtariEnv.last_game_score` when a whole game
  ends.
* Evaluation mode: whole games, raw rewards.
"""

from __future__ import annotations

import array
import collections
import csv
import os
import re
from collections.abc import Callable
from typing import Any

import dm_env
import numpy as np
from dm_env import specs

# The 26 games of the Atari-100k benchmark.
ATARI_100K = [
    "alien",
    "amidar",
    "assault",
    "asterix",
    "bank_heist",
    "battle_zone",
    "boxing",
    "breakout",
    "chopper_command",
    "crazy_climber",
    "demon_attack",
    "freeway",
    "frostbite",
    "gopher",
    "hero",
    "jamesbond",
    "kangaroo",
    "krull",
    "kung_fu_master",
    "ms_pacman",
    "pong",
    "private_eye",
    "qbert",
    "road_runner",
    "seaquest",
    "up_n_down",
]


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def atari_games() -> dict[str, str]:
    """Every ALE v5 game envpool knows, as ``snake_case name -> envpool id`` (envpool's
    other ``-v5`` ids, e.g. the MuJoCo ``Hopper-v5``, are not Atari games)."""
    from envpool.registration import registry

    return {
        _snake(e[: -len("-v5")]): e
        for e in registry.list_all_envs()
        if e.endswith("-v5") and e[0].isupper() and registry.specs[e][0] == "envpool.atari"
    }


def envpool_id(game: str) -> str:
    games = atari_games()
    if game not in games:
        raise ValueError(f"Unknown Atari game {game!r}. Valid games: {', '.join(sorted(games))}.")
    return games[game]


FRAME_SKIP = 4


class AtariEnv(dm_env.Environment):
    """One ALE game (see the module docstring for the settings)."""

    def __init__(
        self,
        game: str,
        seed: int = 0,
        train: bool = True,
        frame_stack: int = 4,
        max_episode_frames: int = 108_000,
        noop_max: int = 30,
    ):
        import envpool

        self.game = game
        self.train = train
        self.frame_stack = frame_stack
        self._env = envpool.make(
            envpool_id(game),
            env_type="gymnasium",
            num_envs=1,
            seed=seed,
            stack_num=1,
            frame_skip=1,  # single frames: the skip, the maximum and the life losses are handled here
            episodic_life=False,
            reward_clip=False,
            use_fire_reset=False,
            repeat_action_probability=0.0,
            noop_max=noop_max,
            max_episode_steps=max_episode_frames,  # frames: one envpool step is one frame here
            img_height=84,
            img_width=84,
            gray_scale=True,
            use_inter_area_resize=False,  # bilinear, as cv2.resize(..., INTER_LINEAR) in the authors' code
        )
        self.num_actions = int(self._env.action_space.n)
        self._frames: collections.deque = collections.deque(maxlen=frame_stack)
        self._game_score = 0.0
        self.last_game_score: float | None = None
        self._needs_reset = True
        self._life_lost = False  # the last episode ended on a lost life, not a game over
        self._lives = 0
        # Every reset (-1) and action since construction: ALE is deterministic given the
        # seed and the actions (no sticky actions), so replaying them restores the
        # emulator exactly (see get_state).
        self._history = array.array("h")

    def _obs(self) -> np.ndarray:
        return np.stack(self._frames)[..., None]

    def _frame(self, action: int) -> tuple[np.ndarray, float, bool, bool, int]:
        """One emulator frame: the 84x84 image, the raw reward, game over, truncated, lives."""
        obs, reward, terminated, truncated, info = self._env.step(np.asarray([action], np.int32))
        return obs[0, -1], float(reward[0]), bool(terminated[0]), bool(truncated[0]), int(info["lives"][0])

    def reset(self) -> dm_env.TimeStep:
        self._history.append(-1)
        if self._life_lost:
            # A lost life: one no-op frame, and the same game goes on with the stack as it was.
            frame, reward, over, truncated, self._lives = self._frame(0)
            self._game_score += reward
            self._life_lost = False
            if over or truncated:  # (the no-op frame ended the game: start a new one)
                self.last_game_score, self._game_score = self._game_score, 0.0
                return self._new_game()
            self._frames.append(frame)
        else:
            return self._new_game()
        self._needs_reset = False
        return dm_env.restart(self._obs())

    def _new_game(self) -> dm_env.TimeStep:
        obs, info = self._env.reset()  # a new game, then 1-30 no-op frames
        self._game_score = 0.0
        self._lives = int(info["lives"][0])
        for _ in range(self.frame_stack - 1):
            self._frames.append(np.zeros((84, 84), np.uint8))
        self._frames.append(obs[0, -1])
        self._needs_reset = False
        return dm_env.restart(self._obs())

    def step(self, action: Any) -> dm_env.TimeStep:
        if self._needs_reset:
            return self.reset()
        self._history.append(int(action))
        images = np.zeros((2, 84, 84), np.uint8)  # the last two frames of the skip (zero if it ends early)
        raw, over, truncated, lives = 0.0, False, False, self._lives
        for t in range(FRAME_SKIP):
            frame, reward, over, truncated, lives = self._frame(int(action))
            raw += reward
            if t >= FRAME_SKIP - 2:
                images[t - (FRAME_SKIP - 2)] = frame
            if over or truncated:
                break
        self._game_score += raw
        self._frames.append(images.max(axis=0))
        life_lost = self.train and 0 < lives < self._lives and not (over or truncated)
        self._lives = lives
        r = float(np.clip(raw, -1, 1)) if self.train else raw
        if over or truncated:
            self.last_game_score, self._game_score = self._game_score, 0.0
            self._needs_reset = True
            return dm_env.TimeStep(dm_env.StepType.LAST, r, 0.0 if over else 1.0, self._obs())
        if life_lost:
            self._needs_reset = self._life_lost = True
            return dm_env.TimeStep(dm_env.StepType.LAST, r, 0.0, self._obs())
        return dm_env.transition(r, self._obs())

    # ------------------------------------------------------------------ checkpointing
    def get_state(self) -> dict[str, np.ndarray]:
        """The environment's state as arrays: envpool cannot snapshot the emulator, so
        this is the history of resets and actions since construction (2 bytes per
        step), which :meth:`set_state` replays on a fresh environment built with the
        same arguments (ALE is deterministic given the seed and the actions)."""
        return {
            "history": np.frombuffer(self._history.tobytes(), np.int16).copy(),
            "score": np.asarray([self._game_score, np.nan if self.last_game_score is None else self.last_game_score]),
        }

    def set_state(
        self,
        state: dict[str, np.ndarray],
        report: Callable[[int, int], None] | None = None,
        report_every: int = 50_000,
    ) -> None:
        """Restore what :meth:`get_state` returned (on a freshly built environment).

        The replay runs the emulator through every recorded step (about 1-2 ms each on a
        CPU core, so minutes for a few hundred thousand steps); ``report(done, total)``,
        when given, is called every ``report_every`` steps and at the end.
        """
        if self._history:
            raise RuntimeError("AtariEnv.set_state needs a freshly built environment.")
        history = np.asarray(state["history"]).tolist()
        for i, a in enumerate(history, 1):
            if a == -1:
                self.reset()
            else:
                self.step(a)
            if report is not None and (i % report_every == 0 or i == len(history)):
                report(i, len(history))
        score, last = (float(v) for v in np.asarray(state["score"]))
        self._game_score, self.last_game_score = score, (None if last != last else last)

    def observation_spec(self) -> specs.Array:
        return specs.Array((self.frame_stack, 84, 84, 1), np.uint8, "frames")

    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(self.num_actions, name="action")

    def close(self) -> None:
        self._env.close()


def reference_scores(path: str | None = None) -> dict[str, dict[str, float]]:
    """Random and human scores (and published baselines) per game from the shared CSV."""
    # A copy of the project's reference table ships with the package.
    path = (
        path
        or os.environ.get("SEER_JAX_ATARI_SCORES")
        or os.path.join(os.path.dirname(__file__), "..", "data", "atari_scores.csv")
    )
    with open(path, newline="") as f:
        return {
            r["game"]: {k: float(v) for k, v in r.items() if k not in ("game", "envpool_id") and v}
            for r in csv.DictReader(f)
        }


def human_normalized(game: str, score: float, scores: dict[str, dict[str, float]]) -> float:
    ref = scores[game]
    return (score - ref["random"]) / (ref["human"] - ref["random"])
