"""Process set-up helpers: XLA defaults and the provenance block of result files."""

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
