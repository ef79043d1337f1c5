import os

os.environ.setdefault("MUJOCO_GL", "egl")

import seer_jax  # noqa: F401  (sets XLA and rendering defaults before jax is imported)
