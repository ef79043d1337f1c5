"""Process set-up that must happen before heavy libraries are imported.

Two things matter on the machines we run on:

* Headless rendering: MuJoCo must be told to use EGL (GPU EGL where a GPU driver is
  present, Mesa's software EGL otherwise) *before* ``dm_control`` is imported.
* The allocator: XLA:CPU convolutions run ~2.6x slower with glibc malloc than with
  tcmalloc. An allocator can only be swapped at process start, so entry points call
  :func:`reexec_with_fast_allocator`, which re-executes the current command once with
  ``LD_PRELOAD`` set when tcmalloc is installed and not yet loaded.

Library users who import ``seer_jax`` in their own programs get rendering set up
automatically (:func:`configure_rendering` runs on import of the environments) and may
call :func:`reexec_with_fast_allocator` at the top of their own script.

Bit-exact repeatability on CPU needs one more thing: XLA:CPU's multithreaded kernels can
return different last bits from call to call on the same inputs (upstream
https://github.com/jax-ml/jax/issues/39741; one intra-op thread is bit-identical), and in
RL a last-bit difference can flip an argmax action and send two runs of one seed apart.
:func:`use_one_cpu` (``SEER_JAX_DETERMINISTIC=1``, or ``experiments/run.py
--deterministic``) pins the process to one CPU before XLA sizes its thread pool.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable
from typing import NoReturn

TCMALLOC_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libjemalloc.so.2")
_REEXEC_MARK = "SEER_JAX_REEXECED"
DETERMINISTIC_ENV = "SEER_JAX_DETERMINISTIC"


def configure_rendering() -> None:
    """Select headless EGL rendering for MuJoCo unless the user chose a backend."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    # PYOPENGL_PLATFORM must follow MUJOCO_GL; setting it separately breaks dm_control.
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def _find_fast_allocator() -> str | None:
    search_dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]
    for name in TCMALLOC_NAMES:
        for d in search_dirs:
            if os.path.exists(os.path.join(d, name)):
                return name
    if ctypes.util.find_library("tcmalloc_minimal"):
        return "libtcmalloc_minimal.so.4"
    return None


def fast_allocator_loaded() -> bool:
    preload = os.environ.get("LD_PRELOAD", "")
    return any(name.split(".so")[0] in preload for name in TCMALLOC_NAMES)


def reexec_with_fast_allocator() -> None:
    """Re-run the current command with tcmalloc preloaded (once), if it is installed.

    Does nothing when the allocator is already loaded, when it is not installed (a
    one-line warning is printed), or when ``SEER_JAX_NO_REEXEC=1`` is set.
    """
    if fast_allocator_loaded() or os.environ.get(_REEXEC_MARK) or os.environ.get("SEER_JAX_NO_REEXEC"):
        return
    lib = _find_fast_allocator()
    if lib is None:
        print(
            "seer_jax: tcmalloc not found; XLA:CPU convolutions will run ~2.6x slower. "
            "Install it with `apt-get install libtcmalloc-minimal4`.",
            file=sys.stderr,
        )
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = (lib + " " + env.get("LD_PRELOAD", "")).strip()
    env[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(sys.executable, [sys.executable] + sys.argv, env)


def run_main(main: Callable[[], int]) -> NoReturn:
    """The entry point of our scripts: :func:`reexec_with_fast_allocator`, then exit with
    ``main()``'s status. A stop on request (Ctrl-C or SIGTERM; see
    ``seer_jax.train.TrainingStopped``) exits with status 130 and a one-line message
    instead of a traceback."""
    reexec_with_fast_allocator()
    try:
        code = main()
    except KeyboardInterrupt as e:
        sys.stdout.flush()
        message = str(e) or "interrupted: run the same command again to continue from the last checkpoint"
        print(f"\n{message}", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)


# XLA:CPU's YNNPACK convolutions (whose output is materialised) run about 4x
# slower (single-threaded) than XLA's own convolution; turning them off makes the CURL
# pixel update ~2x faster on our CPUs (docs/performance.md). Flags exist from jaxlib 0.9.
_XLA_CPU_DEFAULTS = ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)


def use_one_cpu(index: int = 0) -> int:
    """Pin this process to one CPU (by default the lowest it may use; ``index`` picks the
    ``index``-th, modulo their count, e.g. one per worker), so that XLA:CPU runs every
    kernel on one thread and the same inputs give the same bits on every call: the same
    seed then gives the same run, at the cost of the other cores (environments included).

    Call it before jax's first computation (XLA sizes its thread pool from the CPUs the
    process may use when its CPU backend starts, and threads started before keep their
    CPUs); importing ``seer_jax`` with ``SEER_JAX_DETERMINISTIC=1`` set calls it. Returns
    the CPU. Raises RuntimeError when the backend already runs or the OS cannot pin.
    """
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            raise RuntimeError(
                "use_one_cpu() must run before jax's first computation (its thread pool already exists); "
                f"set {DETERMINISTIC_ENV}=1 before starting Python, or call it at the top of your script."
            )
    if not hasattr(os, "sched_setaffinity"):
        raise RuntimeError(
            f"this OS cannot pin a process to one CPU from Python ({sys.platform}); "
            "runs use several XLA threads and may differ in the last bits from run to run."
        )
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[index % len(cpus)]
    os.sched_setaffinity(0, {cpu})
    return cpu


def on_one_cpu() -> bool:
    """Whether this process may run on one CPU only (so XLA:CPU runs one thread)."""
    return hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) == 1


def configure_xla() -> None:
    """Add our XLA:CPU defaults to ``XLA_FLAGS`` (before ``jax`` is imported; a no-op
    after), and pin the process to one CPU when ``SEER_JAX_DETERMINISTIC=1``
    (:func:`use_one_cpu`). Opt out of the flags with ``SEER_JAX_XLA_DEFAULTS=0``."""
    if os.environ.get(DETERMINISTIC_ENV) == "1":
        use_one_cpu()
    if "jax" in sys.modules or os.environ.get("SEER_JAX_XLA_DEFAULTS", "1") == "0":
        return
    try:
        from importlib.metadata import version

        major, minor = (int(p) for p in version("jaxlib").split(".")[:2])
    except Exception:
        return
    if (major, minor) < (0, 9):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    for flag in _XLA_CPU_DEFAULTS:
        if flag.split("=")[0] not in flags:
            flags = (flags + " " + flag).strip()
    os.environ["XLA_FLAGS"] = flags


def set_host_device_count(n: int) -> None:
    """Expose ``n`` XLA host (CPU) devices. Must run before ``jax`` is imported."""
    if "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (flags + f" --xla_force_host_platform_device_count={n}").strip()


def provenance(argv: list[str] | None = None) -> dict[str, str]:
    """Where and how a result was measured, for the ``docs/results`` JSON files.

    Returns ``machine`` (architecture, core count, CPU model), ``date`` (UTC),
    ``command`` (``python`` + the script path relative to the working directory + its
    arguments; ``argv`` defaults to ``sys.argv``), ``allocator``, ``xla_flags`` and,
    when ``jax`` is imported, ``jax_version`` and ``device``.
    """
    import platform as py_platform
    import time

    argv = list(sys.argv if argv is None else argv)
    if argv:
        script = os.path.relpath(os.path.abspath(argv[0])) if os.path.exists(argv[0]) else argv[0]
        argv = [script, *argv[1:]]
    cpu = py_platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    out = {
        "machine": f"{py_platform.machine()}, {os.cpu_count()} cores, {cpu}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", *argv]),
        "allocator": "tcmalloc" if fast_allocator_loaded() else "glibc malloc",
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    jax = sys.modules.get("jax")
    if jax is not None:
        out["jax_version"] = jax.__version__
        out["device"] = str(jax.devices()[0].device_kind)
    return out
