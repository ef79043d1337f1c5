"""DeepMind Control Suite from pixels as a ``dm_env.Environment``.

Observations are the last ``frame_stack`` rendered RGB frames, shape
``(frame_stack, height, width, 3)`` uint8, newest last. Actions are float32 in the
task's bounds. One agent step repeats the action ``action_repeat`` times and sums the
rewards (PlaNet benchmark protocol).
"""

from __future__ import annotations

import collections
import math
import os
from typing import Any

import dm_env
import numpy as np
from dm_env import specs

from seer_jax.platform import configure_rendering

# PlaNet benchmark action repeats.
PLANET_ACTION_REPEAT = {
    "cartpole_swingup": 8,
    "reacher_easy": 4,
    "cheetah_run": 4,
    "finger_spin": 2,
    "ball_in_cup_catch": 4,
    "walker_walk": 2,
}
DEFAULT_ACTION_REPEAT = 4
# dm_control camera that shows the agent for each domain (quadruped's camera 0 is fixed
# far away; camera 2 tracks the body).
CAMERA_BY_DOMAIN = {"quadruped": 2}


class RenderingUnavailable(RuntimeError):
    """MuJoCo cannot render offscreen on this machine; the message says what to install."""


def _rendering_advice(err: BaseException) -> str:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    backend = os.environ.get("MUJOCO_GL", "egl")
    return (
        f"DeepMind Control cannot render pixels here (MUJOCO_GL={backend}: {type(err).__name__}: {first}). "
        "Headless rendering needs EGL with Mesa: install the Debian packages libegl1 libgl1 libgles2 "
        "libegl-mesa0 libgl1-mesa-dri (./setup.sh does), or run where a GPU driver provides EGL; "
        "MUJOCO_GL=osmesa needs libosmesa6. Atari tasks need no rendering."
    )


def _suite():
    configure_rendering()
    try:
        from dm_control import suite
    except (ImportError, AttributeError, RuntimeError, OSError) as e:
        raise RenderingUnavailable(_rendering_advice(e)) from None
    return suite


def dmc_task_names() -> list[str]:
    """Every DeepMind Control Suite task as ``domain_task`` (e.g. ``walker_walk``)."""
    return sorted(f"{d}_{t}" for d, t in _suite().ALL_TASKS)


def split_task(name: str) -> tuple[str, str]:
    """``'ball_in_cup_catch'`` -> ``('ball_in_cup', 'catch')``; ValueError lists valid names."""
    for domain, task in _suite().ALL_TASKS:
        if f"{domain}_{task}" == name:
            return domain, task
    raise ValueError(unknown_task_message(name, dmc_task_names()))


def unknown_task_message(name: str, valid: list[str]) -> str:
    return f"Unknown task {name!r}. Valid tasks: {', '.join(valid)}."


def default_action_repeat(task: str) -> int:
    return PLANET_ACTION_REPEAT.get(task, DEFAULT_ACTION_REPEAT)


class DMCPixels(dm_env.Environment):
    """A dm_control task rendered to pixels, with action repeat and frame stacking."""

    def __init__(
        self,
        task: str,
        seed: int = 0,
        action_repeat: int | None = None,
        frame_stack: int = 3,
        size: int = 100,
        camera_id: int | None = None,
        episode_length: int | None = None,
    ):
        domain, task_name = split_task(task)
        self.task = task
        self.action_repeat = action_repeat or default_action_repeat(task)
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be a positive integer, got {action_repeat}.")
        self.frame_stack = frame_stack
        self.size = size
        self.camera_id = CAMERA_BY_DOMAIN.get(domain, 0) if camera_id is None else camera_id
        self._env = _suite().load(
            domain,
            task_name,
            task_kwargs={"random": seed},
        )
        # MuJoCo's offscreen buffer sized to the frames we render instead of its default
        # 640x480: the same pixels, ~1 ms less per frame with software rendering.
        vis = self._env.physics.model.vis.global_
        vis.offwidth, vis.offheight = size, size
        # Optional shorter episodes (in env steps) for quick tests; the suite's own time
        # limit (1000 env steps on the PlaNet tasks) applies otherwise.
        self.episode_length = episode_length
        self._env_steps = 0
        self._frames: collections.deque = collections.deque(maxlen=frame_stack)
        spec = self._env.action_spec()
        self._action_spec = specs.BoundedArray(
            spec.shape, np.float32, spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), "action"
        )

    def _render(self) -> np.ndarray:
        try:
            return self._env.physics.render(height=self.size, width=self.size, camera_id=self.camera_id)
        except Exception as e:  # mujoco.FatalError, OpenGL errors: no usable GL context
            if isinstance(e, (KeyboardInterrupt, MemoryError)):
                raise
            raise RenderingUnavailable(_rendering_advice(e)) from None

    def renderer(self) -> str:
        """The OpenGL renderer MuJoCo draws with, e.g. ``"NVIDIA H100 80GB HBM3 (EGL)"`` on a
        GPU or ``"llvmpipe (LLVM 15.0.6, 256 bits) (EGL)"`` for Mesa's software fallback."""
        backend = os.environ.get("MUJOCO_GL", "?")
        try:
            self._render()  # the GL context exists after the first render
            from OpenGL import GL

            with self._env.physics.contexts.gl.make_current() as ctx:
                name = ctx.call(lambda: GL.glGetString(GL.GL_RENDERER))
            return f"{name.decode() if isinstance(name, bytes) else name} ({backend.upper()})"
        except Exception as e:  # report, never fail a run over a name
            return f"unknown ({backend}: {type(e).__name__})"

    def _observation(self) -> np.ndarray:
        return np.stack(self._frames, axis=0)

    def reset(self) -> dm_env.TimeStep:
        self._env.reset()
        self._env_steps = 0
        frame = self._render()
        for _ in range(self.frame_stack):
            self._frames.append(frame)
        return dm_env.restart(self._observation())

    def step(self, action: Any) -> dm_env.TimeStep:
        action = np.asarray(action, dtype=np.float32)
        reward = 0.0
        discount = 1.0
        last = False
        for _ in range(self.action_repeat):
            ts = self._env.step(action)
            self._env_steps += 1
            reward += ts.reward or 0.0
            discount *= ts.discount
            last = ts.last() or (self.episode_length is not None and self._env_steps >= self.episode_length)
            if last:
                break
        self._frames.append(self._render())
        obs = self._observation()
        if last:
            return dm_env.TimeStep(dm_env.StepType.LAST, reward, discount, obs)
        return dm_env.transition(reward, obs, discount)

    def observation_spec(self) -> specs.Array:
        return specs.Array((self.frame_stack, self.size, self.size, 3), np.uint8, "pixels")

    @property
    def episode_steps(self) -> int | None:
        """Agent steps in an episode (the time limit, or ``episode_length``, over the action
        repeat); None for a task without a time limit."""
        limit = self.episode_length
        if limit is None:
            step_limit = getattr(self._env, "_step_limit", math.inf)
            if not math.isfinite(step_limit):
                return None
            limit = int(step_limit)
        return -(-limit // self.action_repeat)

    def action_spec(self) -> specs.BoundedArray:
        return self._action_spec

    # ------------------------------------------------------------------ checkpointing
    def get_state(self) -> dict[str, np.ndarray]:
        """Everything the environment's future depends on, as arrays: MuJoCo's full
        integration state (warm start included), the task's random state, the frame
        stack and the step counters. :meth:`set_state` on an environment built with the
        same arguments continues bit-identically."""
        import mujoco

        model, data = self.physics.model.ptr, self.physics.data.ptr
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(model, spec), np.float64)
        mujoco.mj_getState(model, data, physics, spec)
        _, key, pos, has_gauss, gauss = self._env.task.random.get_state()
        return {
            "physics": physics,
            "frames": np.stack(self._frames) if self._frames else np.zeros((0, self.size, self.size, 3), np.uint8),
            "rng_key": np.asarray(key, np.uint32),
            "rng_rest": np.asarray([pos, has_gauss], np.int64),
            "rng_gauss": np.asarray(gauss, np.float64),
            "counters": np.asarray([self._env_steps, self._env._step_count, int(self._env._reset_next_step)], np.int64),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned (on a freshly built environment)."""
        import mujoco

        model, data = self.physics.model.ptr, self.physics.data.ptr
        mujoco.mj_setState(model, data, np.asarray(state["physics"], np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(model, data)
        pos, has_gauss = (int(v) for v in np.asarray(state["rng_rest"]))
        self._env.task.random.set_state(
            ("MT19937", np.asarray(state["rng_key"], np.uint32), pos, has_gauss, float(state["rng_gauss"]))
        )
        self._frames.clear()
        for frame in np.asarray(state["frames"]):
            self._frames.append(frame)
        env_steps, step_count, reset_next = (int(v) for v in np.asarray(state["counters"]))
        self._env_steps, self._env._step_count, self._env._reset_next_step = env_steps, step_count, bool(reset_next)

    @property
    def physics(self):
        return self._env.physics

    def close(self) -> None:
        self._env.close()
