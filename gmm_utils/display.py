"""Show the real source of ``gmm_utils`` in a chapter, and the versions that ran it."""

from __future__ import annotations

import importlib.metadata
import inspect
import platform
from typing import Any

#: Packages whose versions each chapter prints in its last cell.
KEY_PACKAGES = ("jax", "jaxlib", "numpyro", "funsor", "arviz", "numpy", "scipy", "matplotlib", "seaborn", "scikit-learn",
                "jupyter-book")


def show_source(obj: Any) -> Any:
    """Display the source code of a function or class as highlighted Python.

    The book shows the real code of ``gmm_utils`` where a chapter introduces it, so
    there is one copy of every model: the one the chapter runs.

    Parameters
    ----------
    obj : function, class or module
        Anything :func:`inspect.getsource` accepts.

    Returns
    -------
    IPython.display.Markdown
        A fenced code block; Jupyter and the rendered book both highlight it.
    """
    from IPython.display import Markdown

    source = inspect.getsource(obj)
    return Markdown(f"```python\n{source.rstrip()}\n```")


def package_versions(packages: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Python and the installed versions of ``packages`` (``"not installed"`` if absent)."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def print_versions() -> None:
    """Print the platform, the JAX devices and the versions of the book's key packages.

    Each chapter ends with this cell, so a reader can compare with their own set-up.
    """
    import jax

    versions = package_versions()
    width = max(map(len, versions))
    print(f"{'platform':<{width}}  {platform.platform(terse=True)}")
    print(f"{'devices':<{width}}  {jax.local_device_count()} x {jax.default_backend()}")
    for name, version in versions.items():
        print(f"{name:<{width}}  {version}")


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` for numbers computed with NumPy or JAX.

    NumPy 2 writes a scalar as ``np.float64(0.25)``, which MyST-NB cannot format with a
    spec such as ``{glue:text}`name:.2f```. This converts NumPy and JAX scalars (and
    arrays of one element) to plain Python numbers first; anything else (a figure, a
    table) is glued unchanged.

    Parameters
    ----------
    name : str
        The key used in the text, prefixed with the chapter, e.g. ``"ch01_n"``.
    value : Any
        The value to glue.
    display : bool
        Also display the value in the notebook where it is glued (default: no).
    """
    import numpy as np
    from myst_nb import glue as myst_glue

    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty string, got {name!r}")
    if hasattr(value, "shape") and hasattr(value, "dtype") and np.size(value) == 1:
        value = np.asarray(value).item()
    myst_glue(name, value, display=display)
