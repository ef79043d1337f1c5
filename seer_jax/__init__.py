"""seer_jax: SEER (stored embeddings for efficient pixel RL) in JAX.

What this module exports is the supported public API (see ``docs/library.md``):

* **replay buffer** -- :class:`Replay` (static shapes; pure ``init``/``add``/``sample``/
  ``gather`` methods), :class:`ReplayState` (the arrays, a pytree),
  :func:`capacity_for_budget`, :func:`migrate` (SEER's re-encoding at the freeze),
  :class:`ReplayBudgetError`
* **the freeze** -- :mod:`seer_jax.freeze`: ``label_params``, ``freezable`` (the
  ``optax.multi_transform`` whose encoder label becomes ``set_to_zero``),
  ``freeze_opt_state``, ``apply_updates``, ``is_frozen``, ``update_encoder``; works on any
  flax parameter dict; :mod:`seer_jax.auto_freeze` (:class:`AutoFreeze`): a freeze step
  chosen by the drift of a probe's latents (``--freeze-step auto``)
* **agents** -- :class:`CurlSac` (DeepMind Control) and :class:`Der` (Atari), each with
  pure ``init``, ``act``, ``update`` (pixels), ``freeze``, ``encode``, ``update_latent``;
  their configs and states
* **networks** -- the encoders (:class:`PixelConv`, :class:`Projection`, :class:`DERConv`)
  and heads (:class:`QHead`, :class:`ActorHead`, :class:`DuelingC51`, :class:`NoisyDense`);
  :func:`bf16_matmul` (bfloat16-input, float32-accumulating product with a fast gradient)
* **many seeds** -- :mod:`seer_jax.seeds`: ``stack``/``take`` along a seed axis,
  vmapped ``make_learn``/``make_observe``/``migrate``, ``seed_mesh``/``shard`` across devices
* **augmentation** -- :func:`random_crop`, :func:`center_crop`
* **environments** -- :class:`DMCPixels`, :class:`AtariEnv` (``dm_env.Environment``)
* **training** -- :class:`TrainConfig`; the loop behind ``experiments/run.py`` is
  ``seer_jax.train.train(config)``
"""

from seer_jax import platform as _platform

_platform.configure_xla()  # must precede the first `import jax`
_platform.configure_rendering()

from seer_jax import auto_freeze, freeze, seeds  # noqa: E402
from seer_jax.agents.curl_sac import CurlSac, CurlSacConfig, CurlSacState  # noqa: E402
from seer_jax.agents.der import Der, DerConfig, DerState  # noqa: E402
from seer_jax.augment import center_crop, random_crop  # noqa: E402
from seer_jax.auto_freeze import AutoFreeze  # noqa: E402
from seer_jax.envs.atari import AtariEnv  # noqa: E402
from seer_jax.envs.dmc import DMCPixels  # noqa: E402
from seer_jax.networks import (  # noqa: E402
    ActorHead,
    DERConv,
    DuelingC51,
    NoisyDense,
    PixelConv,
    Projection,
    QHead,
    bf16_matmul,
)
from seer_jax.replay import Replay, ReplayBudgetError, ReplayState, capacity_for_budget, migrate  # noqa: E402
from seer_jax.train import TrainConfig  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ActorHead",
    "AutoFreeze",
    "AtariEnv",
    "CurlSac",
    "CurlSacConfig",
    "CurlSacState",
    "DERConv",
    "DMCPixels",
    "Der",
    "DerConfig",
    "DerState",
    "DuelingC51",
    "NoisyDense",
    "PixelConv",
    "Projection",
    "QHead",
    "Replay",
    "ReplayBudgetError",
    "ReplayState",
    "TrainConfig",
    "auto_freeze",
    "bf16_matmul",
    "capacity_for_budget",
    "center_crop",
    "freeze",
    "migrate",
    "random_crop",
    "seeds",
]
