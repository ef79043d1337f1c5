"""Process set-up helpers: XLA defaults and the provenance block of result files."""

import json
import os

import jax

from seer_jax import platform


def test_provenance_names_machine_command_and_versions():
    p = platform.provenance([os.path.abspath(__file__), "--flag", "3"])
    assert set(p) >= {"machine", "date", "command", "allocator", "xla_flags", "jax_version", "device"}
    assert p["command"] == f"python {os.path.relpath(__file__)} --flag 3"
    assert f"{os.cpu_count()} cores" in p["machine"]
    assert p["jax_version"] == jax.__version__
    assert p["date"].endswith("UTC")


def test_xla_cpu_defaults_set_before_jax_loads():
    # `import seer_jax` (conftest) runs configure_xla before jax is imported.
    assert "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution" in os.environ["XLA_FLAGS"]


def _python(code: str, **env: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


# The children first widen their CPUs to all the machine's (the suite's xdist workers are
# pinned themselves), so that pinning is seen wherever the machine has two cores or more.
_WIDEN = (
    "import json, os, sys; os.sched_setaffinity(0, range(os.cpu_count())); before = sorted(os.sched_getaffinity(0)); "
)


def test_deterministic_mode_pins_one_cpu_before_jax_starts():
    code = _WIDEN + (
        "import seer_jax, jax, jax.numpy as jnp; "
        "print(json.dumps([before, sorted(os.sched_getaffinity(0)), float(jax.jit(lambda x: x.sum())(jnp.ones(3)))]))"
    )
    r = _python(code, SEER_JAX_DETERMINISTIC="1")
    assert r.returncode == 0, r.stderr[-2000:]
    before, after, value = json.loads(r.stdout)
    assert after == [before[0]] and value == 3.0
    r = _python(code, SEER_JAX_DETERMINISTIC="0")  # off: the CPUs are left as they were
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == [before, before, 3.0]


def test_cli_deterministic_flag_pins_one_cpu():
    code = _WIDEN + (
        "sys.path.insert(0, 'experiments'); import run; cfg = run.config_from_args(ARGS); "
        "print(json.dumps([before, sorted(os.sched_getaffinity(0))]))"
    )
    for args, pinned in ((["--task", "pong", "--deterministic"], True), (["--task", "pong"], False)):
        r = _python(code.replace("ARGS", repr(args)), SEER_JAX_DETERMINISTIC="0")
        assert r.returncode == 0, r.stderr[-2000:]
        before, after = json.loads(r.stdout)
        assert after == ([before[0]] if pinned else before), args


def test_pinning_after_jax_started_is_a_clear_error():
    code = "import jax.numpy as jnp; jnp.ones(1).block_until_ready(); from seer_jax import platform; platform.use_one_cpu()"
    r = _python(code, SEER_JAX_DETERMINISTIC="0")  # the call itself, not the import, must refuse
    assert r.returncode != 0
    assert (
        "configure_xla" not in r.stderr
        and "must run before jax's first computation" in r.stderr
        and "SEER_JAX_DETERMINISTIC=1" in r.stderr
    )
