"""Argument checks shared by the package: clear errors that name the argument."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)


def finite_vector(name: str, value: Any, *, allow_empty: bool = False) -> np.ndarray:
    """Return ``value`` as a 1-D float array with finite entries.

    Raises ``TypeError`` when ``value`` is not numeric and ``ValueError`` when it is
    not one-dimensional, is empty, or holds NaN or infinity.
    """
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be a sequence of numbers, got {value!r}") from error
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {array.shape}")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"`{name}` must not be empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be finite, got NaN or infinity in {array}")
    return array


def finite_matrix(name: str, value: Any) -> np.ndarray:
    """Return ``value`` as a 2-D float array ``(n, d)`` with finite entries, else raise naming ``name``."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be an array of numbers, got {type(value).__name__}") from error
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"`{name}` must have shape (n, d) with n, d >= 1, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be finite, got NaN or infinity")
    return array


def mixture_parameters(
    weights: Any, locs: Any, scales: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the parameters of a 1-D Gaussian mixture and return them as arrays.

    ``weights`` must be non-negative and sum to one (within 1e-6), ``scales`` positive,
    and all three the same length ``k``.
    """
    weights = finite_vector("weights", weights)
    locs = finite_vector("locs", locs)
    scales = finite_vector("scales", scales)
    if not (weights.shape == locs.shape == scales.shape):
        raise ValueError(
            "`weights`, `locs` and `scales` must have the same length (one entry per "
            f"component), got {weights.size}, {locs.size} and {scales.size}"
        )
    if np.any(weights < 0):
        raise ValueError(f"`weights` must be non-negative, got {weights}")
    if abs(weights.sum() - 1.0) > 1e-6:
        raise ValueError(f"`weights` must sum to 1 (within 1e-6), got sum {weights.sum():.8g}")
    if np.any(scales <= 0):
        raise ValueError(f"`scales` must be positive, got {scales}")
    return weights, locs, scales


def _real_number(name: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, bool) or not (isinstance(value, numbers.Real)
                                       or (np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iuf")):
        raise TypeError(f"`{name}` must be a number, got {value!r}")
    if not (np.isfinite(value) and (value > 0 if positive else value >= 0)):
        raise ValueError(f"`{name}` must be finite and {'positive' if positive else 'non-negative'}, got {value!r}")
    return float(value)


def nonnegative_number(name: str, value: Any) -> float:
    """Return ``value`` as a finite non-negative ``float``, else raise naming ``name``."""
    return _real_number(name, value, positive=False)


def positive_number(name: str, value: Any) -> float:
    """Return ``value`` as a finite positive ``float``, else raise naming ``name``."""
    return _real_number(name, value, positive=True)


def inference_data(idata: Any, group: str | None = "posterior") -> Any:
    """Return ``idata`` if it is an ``arviz.InferenceData`` holding ``group``, else raise naming ``idata``."""
    import arviz as az  # only when called: importing gmm_utils imports NumPy only

    if not isinstance(idata, az.InferenceData):
        raise TypeError(f"`idata` must be an arviz.InferenceData, got {type(idata).__name__}")
    if group is not None and group not in idata.groups():
        raise ValueError(f"`idata` has no {group} group")
    return idata
