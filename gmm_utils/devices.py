"""Host devices, so that NUTS chains run in parallel on a CPU."""

from __future__ import annotations

import os
import re
import sys

from ._validation import positive_int

_FLAG = "--xla_force_host_platform_device_count"


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


def usable_cores() -> int:
    """CPU cores this process may run on (its CPU affinity, which ``os.cpu_count`` ignores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
