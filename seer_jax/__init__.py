"""seer_jax: SEER (stored embeddings for efficient pixel RL) in JAX.

The supported public API is what this module exports:

* replay: :class:`Replay`, :class:`ReplayState`, :func:`capacity_for_budget`,
  :func:`migrate`, :class:`ReplayBudgetError`
* the freeze: :mod:`seer_jax.freeze` (``label_params``, ``freezable``,
  ``freeze_opt_state``, ``apply_updates``)
* agents: :class:`CurlSac` / :class:`CurlSacConfig` (DeepMind Control),
  :class:`Der` / :class:`DerConfig` (Atari)
* training: ``seer_jax.train.TrainConfig`` and ``seer_jax.train.train``
"""

from seer_jax import platform as _platform

_platform.configure_xla()  # must precede the first `import jax`
_platform.configure_rendering()

from seer_jax import freeze  # noqa: E402
from seer_jax.agents.curl_sac import CurlSac, CurlSacConfig, CurlSacState  # noqa: E402
from seer_jax.agents.der import Der, DerConfig, DerState  # noqa: E402
from seer_jax.replay import Replay, ReplayBudgetError, ReplayState, capacity_for_budget, migrate  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CurlSac", "CurlSacConfig", "CurlSacState", "Der", "DerConfig", "DerState", "Replay", "ReplayBudgetError",
    "ReplayState", "capacity_for_budget", "freeze", "migrate",
]

