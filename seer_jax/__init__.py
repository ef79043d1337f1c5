"""seer_jax: SEER (stored embeddings for efficient pixel RL) in JAX."""

from seer_jax import platform as _platform

_platform.configure_xla()  # must precede the first `import jax`
_platform.configure_rendering()

__version__ = "0.1.0"
