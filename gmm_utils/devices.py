"""How JAX's CPU backend starts: host devices for parallel chains, XLA's own reductions.

Both settings are read once, when JAX's backend starts (at the first JAX computation), so
the book's first code cell calls both before anything runs in JAX.
"""

from __future__ import annotations

import os
import re
import sys

from ._validation import positive_int

_FLAG = "--xla_force_host_platform_device_count"
#: XLA's CPU backend hands reductions (sums, maxima) to the YNNPACK library by default in
#: the JAX versions below; this flag takes them back to XLA's own generated code.
_YNN_REDUCE_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-LIBRARY_FUSION_TYPE_REDUCE"
#: jaxlib versions known to have the flag (an unknown flag would abort JAX at start-up).
_YNN_REDUCE_JAXLIB = ("0.10.2",)


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
    components) XLA's own code is several times faster: chapter 7, "Fast fits", measures
    ``MixtureGaussian``'s gradient both ways, and ``make bench`` the main fit. The results
    agree to single precision.

    Call it before anything runs in JAX, like :func:`set_host_device_count`. It does
    nothing on a jaxlib that is not known to have the flag (XLA would refuse to start
    on a flag it does not know), and returns whether the flag is set.

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

    flags = os.environ.get("XLA_FLAGS", "")
    if xla_reductions_on():
        return True
    try:
        jaxlib_version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return False
    if jaxlib_version not in _YNN_REDUCE_JAXLIB:
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
