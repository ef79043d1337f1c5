"""For the tests that compare two runs bit for bit: run them on one CPU.

XLA:CPU's multithreaded kernels can return different last bits from call to call on the
same inputs (upstream https://github.com/jax-ml/jax/issues/39741; one thread is
bit-identical), and one flipped greedy action sends two runs of one seed apart. The
suite's process keeps both cores for speed, so :func:`on_one_cpu` reruns its test in a
child pytest pinned to one CPU (``SEER_JAX_DETERMINISTIC=1``, see
``seer_jax.platform.use_one_cpu``) and passes when the child's run of it passes."""

import functools
import os
import re
import subprocess
import sys


def on_one_cpu(test):
    """Decorator: run ``test`` in a child pytest process pinned to one CPU."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if os.environ.get("SEER_JAX_DETERMINISTIC") == "1":
            assert len(os.sched_getaffinity(0)) == 1, "SEER_JAX_DETERMINISTIC=1 should have pinned one CPU"
            return test(*args, **kwargs)
        node = f"{sys.modules[test.__module__].__file__}::{test.__name__}"
        env = {**os.environ, "SEER_JAX_DETERMINISTIC": "1"}
        cmd = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "--durations=0", node]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
        print(r.stdout[-3000:])
        assert r.returncode == 0, f"{node} failed on one CPU:\n{r.stdout[-8000:]}\n{r.stderr[-2000:]}"
        assert re.search(r"\b1 passed\b", r.stdout), r.stdout[-2000:]

    return wrapper
