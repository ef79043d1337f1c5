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

# Under pytest-xdist (`-n`, pyproject's addopts) every worker runs on a CPU of its own,
# which makes XLA run one thread there: the workers don't compete for cores, and runs
# repeat bit for bit (multithreaded XLA:CPU kernels may not: see one_cpu.py).
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker is not None and hasattr(os, "sched_setaffinity"):
    _cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {_cpus[int(_worker.removeprefix("gw")) % len(_cpus)]})
    os.environ["SEER_JAX_DETERMINISTIC"] = "1"

import seer_jax  # noqa: E402, F401  (sets XLA and rendering defaults before jax is imported)
