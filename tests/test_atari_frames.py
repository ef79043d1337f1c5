"""The Atari wrapper's observations and episode handling against the authors' procedure
(the released SEER code's ``Env``, Kaixhin's Rainbow), recomputed here from envpool's raw
210x160 grey frames: each of the last two frames of a 4-frame skip resized to 84x84 by
bilinear interpolation, then their maximum; one no-op frame after a lost life (training);
a new game's stack padded with zero images, a lost life's stack kept.

The reference drives its own raw emulator with the same seed and actions, so the two see
the same game frame by frame only if the wrapper plays exactly the frames the authors'
code plays."""

import collections

import numpy as np

from seer_jax.envs.atari import AtariEnv, envpool_id


def bilinear_84(frame: np.ndarray) -> np.ndarray:
    """``cv2.resize(frame, (84, 84), interpolation=cv2.INTER_LINEAR)`` in floating point
    (OpenCV works in 11-bit fixed point: its result is within one grey level of this)."""
    h, w = frame.shape

    def axis(n_src):
        x = (np.arange(84) + 0.5) * n_src / 84 - 0.5
        x0 = np.floor(x).astype(int)
        f = x - x0
        f[x0 < 0], x0[x0 < 0] = 0.0, 0
        over = x0 >= n_src - 1
        f[over], x0[over] = 0.0, n_src - 1
        return x0, np.minimum(x0 + 1, n_src - 1), f

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    src = frame.astype(np.float64)
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x1] * fx
    bottom = src[y1][:, x0] * (1 - fx) + src[y1][:, x1] * fx
    out = top * (1 - fy[:, None]) + bottom * fy[:, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class Reference:
    """The authors' Atari environment, step by step, on envpool's raw frames."""

    def __init__(self, game: str, seed: int, train: bool = True):
        import envpool

        self.train = train
        self.raw = envpool.make(envpool_id(game), env_type="gymnasium", num_envs=1, seed=seed, stack_num=1,
                                frame_skip=1, episodic_life=False, reward_clip=False, use_fire_reset=False,
                                repeat_action_probability=0.0, noop_max=30, max_episode_steps=108_000,
                                img_height=210, img_width=160, gray_scale=True)  # fmt: skip
        self.stack = collections.deque(maxlen=4)
        self.life_termination = False
        self.frames_played = 0

    def _act(self, a):
        obs, reward, terminated, truncated, info = self.raw.step(np.asarray([a], np.int32))
        self.frames_played += 1
        return obs[0, -1], float(reward[0]), bool(terminated[0] or truncated[0]), int(info["lives"][0])

    def reset(self):
        if self.life_termination:
            self.life_termination = False
            frame, _, _, self.lives = self._act(0)  # one no-op frame after a lost life
        else:
            for _ in range(4):
                self.stack.append(np.zeros((84, 84), np.uint8))
            obs, info = self.raw.reset()  # a new game and its no-op frames
            frame, self.lives = obs[0, -1], int(info["lives"][0])
        self.stack.append(bilinear_84(frame))
        return np.stack(self.stack)

    def step(self, a):
        images = np.zeros((2, 84, 84), np.uint8)
        reward, done = 0.0, False
        for t in range(4):
            frame, r, done, lives = self._act(a)
            reward += r
            if t >= 2:
                images[t - 2] = bilinear_84(frame)
            if done:
                break
        self.stack.append(images.max(0))
        if self.train and 0 < lives < self.lives:
            self.life_termination = not done
            done = True
        self.lives = lives
        return np.stack(self.stack), reward, done


def _play(game, seed, steps, train=True, on_step=None):
    env, ref = AtariEnv(game, seed=seed, train=train), Reference(game, seed, train)
    rng = np.random.default_rng(seed)
    obs, ref_obs = env.reset().observation[..., 0], ref.reset()
    yield "reset", obs, ref_obs
    for _ in range(steps):
        a = int(rng.integers(env.num_actions))
        ts = env.step(a)
        ref_obs, ref_reward, ref_done = ref.step(a)
        yield "step", ts.observation[..., 0], ref_obs
        assert ts.last() == ref_done
        if ts.last():
            yield "reset", env.reset().observation[..., 0], ref.reset()


def test_images_are_bilinear_per_frame_then_the_maximum_of_the_last_two():
    """qbert, where envpool's default (maximum of the raw frames, then area resize) was
    furthest from the authors' images (7.2 grey levels off on average)."""
    n = 0
    for kind, obs, ref in _play("qbert", 0, 150):
        if kind == "step":
            diff = np.abs(obs[-1].astype(int) - ref[-1].astype(int))
            assert diff.max() <= 1, (n, diff.max(), (diff > 1).mean())
            n += 1
    assert n == 150


def test_one_no_op_frame_after_a_lost_life():
    """alien in training mode: after each lost life the game goes on after exactly one
    no-op frame (envpool's own reset would play 1-30), so the frames stay the reference's."""
    lives_lost = 0
    for after, (kind, obs, ref) in enumerate(_play("alien", 1, 700)):
        diff = np.abs(obs[-1].astype(int) - ref[-1].astype(int))  # the newest image (stacks: the next test)
        assert diff.max() <= 1, (kind, lives_lost, after, diff.max())
        if kind == "reset":
            lives_lost += 1
    assert lives_lost >= 3  # the game start and at least two lost lives


def test_stacks_are_zero_padded_at_a_game_start_and_kept_after_a_lost_life():
    env = AtariEnv("alien", seed=2, train=True)
    first = env.reset().observation
    assert not first[:3].any() and first[3].any()  # [0, 0, 0, image]
    rng = np.random.default_rng(2)
    while True:
        before = env.step(int(rng.integers(env.num_actions)))
        if before.last():
            break
    after = env.reset().observation  # a lost life: the same game, the stack goes on
    assert before.discount == 0.0 and env.last_game_score is None
    assert np.array_equal(after[:3], before.observation[1:]) and after[:3].any()
