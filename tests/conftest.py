import atexit
import os
import shutil
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")

# The suite builds the same tiny agents many times (one `train` per test, and subprocess
# runs of the scripts); a compilation cache shared by this session's processes compiles
# each XLA program once. It starts empty every session, so no test depends on an earlier
# one's results, and it holds executables only: what they compute is unchanged.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="seer_jax_test_xla_cache_")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

import seer_jax  # noqa: F401  (sets XLA and rendering defaults before jax is imported)
