"""How JAX starts in the book: host devices for parallel chains, XLA's own reductions, the
persistent compilation cache.

The device count and the reductions are read once, when JAX's backend starts (at the first
JAX computation), so the book's first code cell calls these before anything runs in JAX.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ._validation import positive_int

_FLAG = "--xla_force_host_platform_device_count"
#: XLA's CPU backend hands reductions (sums, maxima) to the YNNPACK library by default; this
#: flag takes them back to XLA's own generated code.
_YNN_REDUCE_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-LIBRARY_FUSION_TYPE_REDUCE"


def _jax_backend_started() -> bool:
    if "jax" not in sys.modules:  # JAX not even imported: nothing has started
        return False
    from jax._src import xla_bridge

    return bool(xla_bridge.backends_are_initialized())


def set_host_device_count(count: int = 4) -> None:
    """Expose ``count`` CPU devices to JAX, one per chain run in parallel.

    JAX reads the device count once, when its backend starts (at the first JAX
    computation), so call this first, before anything runs in JAX. The book's first code
    cell does ``import gmm_utils; gmm_utils.set_host_device_count(4)``. The number of
    devices may exceed the number of cores: the chains then share the cores.

    Parameters
    ----------
    count : int
        Number of host (CPU) devices, a positive integer. Four chains need four.

    Raises
    ------
    ValueError
        If ``count`` is not a positive integer.
    RuntimeError
        If JAX's backend has already started with a different number of devices
        (restart the kernel and call this first).
    """
    count = positive_int("count", count)
    if _jax_backend_started():
        import jax

        if jax.local_device_count() == count:
            return  # already as asked, e.g. a notebook cell run twice
        raise RuntimeError(
            f"JAX has already started with {jax.local_device_count()} device(s), so the "
            f"device count can no longer be set to {count}. Restart the kernel and call "
            "gmm_utils.set_host_device_count() before any JAX computation."
        )
    flags = re.sub(rf"{_FLAG}=\d+", "", os.environ.get("XLA_FLAGS", "")).strip()
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={count}".strip()


def xla_reductions_on() -> bool:
    """Whether :func:`use_xla_reductions` has set its flag for this process."""
    return _YNN_REDUCE_FLAG in os.environ.get("XLA_FLAGS", "").split()


def use_xla_reductions() -> bool:
    """Let XLA's own code compute sums and maxima on the CPU, instead of YNNPACK.

    The pinned jaxlib hands reductions (sums and maxima along an axis) to the YNNPACK
    library by default. On the mixture's small reductions (``n`` points times ``k``
    components) XLA's own code is several times faster: chapter 12, "Fast fits", measures
    ``MixtureGaussian``'s gradient both ways, and ``make bench`` the main fit. The results
    agree to single precision.

    Call it before anything runs in JAX, like :func:`set_host_device_count`. It sets the
    flag only when the installed jaxlib is the one ``requirements.txt`` pins, where the book
    measured it (and CI starts JAX with it): XLA aborts at start-up on a flag it does not
    know. Without the repository's ``requirements.txt`` (e.g. on Colab) it does nothing.

    Returns
    -------
    bool
        ``True`` if XLA's own reductions are on (also when they already were).

    Raises
    ------
    RuntimeError
        If JAX's backend has already started without them (restart the kernel).
    """
    from importlib import metadata

    from .check import REQUIREMENTS_FILE, load_pins

    flags = os.environ.get("XLA_FLAGS", "")
    if xla_reductions_on():
        return True
    try:
        if metadata.version("jaxlib") != load_pins(REQUIREMENTS_FILE).get("jaxlib"):
            return False
    except (metadata.PackageNotFoundError, FileNotFoundError):
        return False
    if _jax_backend_started():
        raise RuntimeError(
            "JAX has already started, so its reductions can no longer be changed. Restart "
            "the kernel and call gmm_utils.use_xla_reductions() before any JAX computation."
        )
    os.environ["XLA_FLAGS"] = f"{flags} {_YNN_REDUCE_FLAG}".strip()
    return True


def usable_cores() -> int:
    """CPU cores this process may run on (its CPU affinity, which ``os.cpu_count`` ignores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_cache_dir() -> Path:
    """``$GMM_BOOK_JAX_CACHE``, else ``$XDG_CACHE_HOME/gmm-numpyro-book/jax`` (``~/.cache/...``)."""
    explicit = os.environ.get("GMM_BOOK_JAX_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gmm-numpyro-book" / "jax"


def enable_compilation_cache(directory: str | os.PathLike[str] | None = None) -> Path:
    """Keep every program JAX compiles on disk, and reuse it in later runs.

    The cache is keyed by the compiled program (and the JAX version, devices and XLA
    flags), so the next run of the same fit, in this process or a later one, loads the
    program instead of compiling it. Tracing the Python code still happens every time.

    Parameters
    ----------
    directory : str or path-like, optional
        Where to keep the programs. Default :func:`default_cache_dir`. Only you should be
        able to write to it: JAX runs what it finds there.

    Returns
    -------
    pathlib.Path
        The cache directory (created if needed).
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    path = Path(default_cache_dir() if directory is None else directory).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Cache every program, also the small ones compiled in well under a second.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()  # take effect even if JAX compiled something already
    return path
