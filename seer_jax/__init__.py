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

# The public names, imported on first use (PEP 562): `import seer_jax` stays light (the
# command line answers --help and argument errors before JAX loads), and
# `from seer_jax import CurlSac` works as usual.
_EXPORTS = {
    "ActorHead": "seer_jax.networks",
    "AutoFreeze": "seer_jax.auto_freeze",
    "AtariEnv": "seer_jax.envs.atari",
    "CurlSac": "seer_jax.agents.curl_sac",
    "CurlSacConfig": "seer_jax.agents.curl_sac",
    "CurlSacState": "seer_jax.agents.curl_sac",
    "DERConv": "seer_jax.networks",
    "DMCPixels": "seer_jax.envs.dmc",
    "Der": "seer_jax.agents.der",
    "DerConfig": "seer_jax.agents.der",
    "DerState": "seer_jax.agents.der",
    "DuelingC51": "seer_jax.networks",
    "NoisyDense": "seer_jax.networks",
    "PixelConv": "seer_jax.networks",
    "Projection": "seer_jax.networks",
    "QHead": "seer_jax.networks",
    "Replay": "seer_jax.replay",
    "ReplayBudgetError": "seer_jax.replay",
    "ReplayState": "seer_jax.replay",
    "TrainConfig": "seer_jax.config",
    "bf16_matmul": "seer_jax.networks",
    "capacity_for_budget": "seer_jax.replay",
    "center_crop": "seer_jax.augment",
    "migrate": "seer_jax.replay",
    "random_crop": "seer_jax.augment",
}
_MODULES = ("auto_freeze", "freeze", "seeds")


def __getattr__(name: str):
    import importlib

    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"seer_jax.{name}")
    else:
        raise AttributeError(f"module 'seer_jax' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
