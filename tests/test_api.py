"""The public API (``seer_jax.__all__``) is documented and typed, and pdoc can render it."""

import inspect
import subprocess
import sys

import flax.linen as nn

import seer_jax
from seer_jax import freeze

FREEZE_API = ("label_params", "freezable", "freeze_opt_state", "apply_updates", "zero_encoder_grads", "is_frozen")


def public_functions():
    """(name, function) for every public function and method of the exported API."""
    for name in seer_jax.__all__:
        obj = getattr(seer_jax, name)
        if inspect.ismodule(obj):
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj) and not issubclass(obj, nn.Module) and not issubclass(obj, Exception):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                if getattr(obj, "__dataclass_fields__", None) and attr == "replace":
                    continue
                yield f"{name}.{attr}", member
    for attr in FREEZE_API:
        yield f"freeze.{attr}", getattr(freeze, attr)
    for attr, fn in vars(seer_jax.seeds).items():
        if inspect.isfunction(fn) and not attr.startswith("_") and fn.__module__ == "seer_jax.seeds":
            yield f"seeds.{attr}", fn


def test_everything_exported_exists_and_has_a_docstring():
    for name in seer_jax.__all__:
        obj = getattr(seer_jax, name)
        assert inspect.getdoc(obj), f"seer_jax.{name} has no docstring"


def test_public_functions_have_docstrings_and_type_hints():
    missing = []
    for name, fn in public_functions():
        if not inspect.getdoc(fn):
            missing.append(f"{name}: docstring")
        sig = inspect.signature(fn)
        for p in sig.parameters.values():
            if p.name in ("self", "cls") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.annotation is inspect.Parameter.empty:
                missing.append(f"{name}: parameter {p.name}")
        if sig.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__":
            missing.append(f"{name}: return type")
    assert not missing, "undocumented or untyped public API:\n" + "\n".join(missing)


def test_modules_have_shapes_in_their_docstrings():
    # the pure update functions document their batch layout
    for fn in (seer_jax.CurlSac.update, seer_jax.CurlSac.update_latent, seer_jax.Der.update, seer_jax.Replay.gather):
        assert "(B" in inspect.getdoc(fn), fn.__qualname__


def test_pdoc_renders_the_api(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pdoc", "seer_jax", "-o", str(tmp_path), "--docformat", "google"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "capacity_for_budget" in (tmp_path / "seer_jax.html").read_text()
    assert "freezable" in (tmp_path / "seer_jax" / "freeze.html").read_text()
