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

import seer_jax  # (sets XLA and rendering defaults before jax is imported)


def pytest_configure(config):
    """Every test runs on one CPU, so XLA runs one thread and every run in the suite
    repeats bit for bit: multithreaded XLA:CPU kernels can return different last bits
    from call to call (upstream https://github.com/jax-ml/jax/issues/39741), and one
    flipped greedy action sends two runs of a seed apart. Under pytest-xdist (`-n`, in
    pyproject's addopts) each worker gets a CPU of its own, and the controller, which runs
    no test, keeps them all; with `-n 0` the one process takes the first CPU. Scripts the
    tests start inherit the CPU and ``SEER_JAX_DETERMINISTIC=1``."""
    if not hasattr(os, "sched_setaffinity"):
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None and config.getoption("numprocesses", default=None):
        return  # the xdist controller: its workers start from all the CPUs
    seer_jax.platform.use_one_cpu(int(worker.removeprefix("gw")) if worker else 0)
    os.environ[seer_jax.platform.DETERMINISTIC_ENV] = "1"


# Test files, slowest first (from `pytest --durations=0` on a 2-core machine, 2026-12-02:
# test_resume.py alone took a fifth of the suite's time, test_seeds.py a sixth). pytest-xdist
# hands whole files to its workers in collection order (pyproject: `--dist loadfile
# --no-loadscope-reorder`); starting the long files first lets the two workers finish
# together instead of one running a long file alone at the end. Files not listed follow in
# their usual order.
SLOWEST_FIRST = (
    "test_resume.py",
    "test_seeds.py",
    "test_train.py",
    "test_cli_folders.py",
    "test_curl_sac.py",
    "test_der.py",
    "test_reproduce.py",
    "test_atari.py",
    "test_resume_atari.py",
    "test_docs.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: tests keep their order in a file
