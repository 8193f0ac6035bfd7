r"""Convergence diagnostics for NUTS fits: one pass/fail table, and a chain-coloured scatter.

:func:`check_convergence` runs one small function per check (:func:`rhat_check` and :func:`ess_check`
after Vehtari et al. 2021; :func:`divergence_check`, :func:`tree_depth_check` and :func:`e_bfmi_check`
after Betancourt 2017), and :func:`convergence_table` puts their rows in one table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ._validation import inference_data, nonnegative_number

#: The checks :func:`check_convergence` knows, in the order of its table.
CHECKS: tuple[str, ...] = ("r_hat", "ess_bulk", "ess_tail", "divergences", "tree_depth", "e_bfmi")
#: Checks that need ``sample_stats`` (NUTS's per-draw statistics), and the variable each reads.
_SAMPLER_STATS = {"divergences": "diverging", "tree_depth": "tree_depth", "e_bfmi": "energy"}
#: NumPyro's default ``max_tree_depth``, assumed when the fit does not record its own.
DEFAULT_MAX_TREE_DEPTH = 10


class CheckRow(NamedTuple):
    """One row of the table: what was measured, its value and threshold, and who is worst."""

    statistic: str
    value: float
    threshold: str
    passed: bool
    worst: str


def _worst(statistic: xr.Dataset, largest: bool) -> tuple[float, str]:
    """The worst value of a per-parameter statistic and its label (``locs[1]``); NaN counts as worst."""
    values: dict[str, float] = {}
    for name, array in statistic.data_vars.items():
        coords = [array[dim].values for dim in array.dims]
        for index in np.ndindex(array.shape):
            label = f"{name}[{', '.join(str(c[i]) for c, i in zip(coords, index))}]" if index else str(name)
            values[label] = float(array.values[index])
    series = pd.Series(values, dtype=float)
    if series.empty:
        return math.nan, "no parameters"
    if series.isna().any():  # e.g. R-hat of a constant
        return math.nan, f"{series.index[series.isna()][0]} (undefined)"
    label = series.idxmax() if largest else series.idxmin()
    return float(series[label]), str(label)


def _one_chain_rhat(posterior: xr.Dataset) -> xr.Dataset:
    """Split R-hat of a single chain (bulk and folded tail, the larger): its two halves compared."""

    def rank_normalized_rhat(split: np.ndarray) -> float:  # ranks through the Normal quantiles
        ranks = stats.rankdata(split, method="average").reshape(split.shape)
        return float(az.rhat(stats.norm.ppf((ranks - 3 / 8) / (split.size + 1 / 4)), method="identity"))

    def two_halves(draws: np.ndarray) -> float:
        half = len(draws) // 2
        split = np.stack([draws[:half], draws[-half:]])
        return max(rank_normalized_rhat(split), rank_normalized_rhat(np.abs(split - np.median(split))))

    per_scalar = np.vectorize(two_halves, signature="(n)->()")
    return xr.apply_ufunc(per_scalar, posterior.isel(chain=0).astype(float), input_core_dims=[["draw"]])


def rhat_check(posterior: xr.Dataset, max_rhat: float = 1.01) -> CheckRow:
    """R-hat: do the chains agree? Passes if the largest rank-normalized split R-hat is below ``max_rhat``.

    ``posterior`` holds draws of dims ``(chain, draw, ...)``. A single chain gets the R-hat
    of its two halves (ArviZ itself needs two chains).
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant gives NaN: reported as failed
        per_parameter = az.rhat(posterior) if posterior.sizes["chain"] > 1 else _one_chain_rhat(posterior)
        value, worst = _worst(per_parameter, largest=True)
    return CheckRow("max R-hat (rank-normalized, split)", value, f"< {max_rhat:g}", value < max_rhat, worst)


def ess_check(posterior: xr.Dataset, method: str = "bulk", min_ess: float = 400) -> CheckRow:
    """ESS: enough independent draws? Passes if the smallest ``method`` ESS is above ``min_ess``.

    ``method`` is ``"bulk"`` (the centre of each distribution) or ``"tail"`` (its 5% and
    95% quantiles); ``posterior`` holds draws of dims ``(chain, draw, ...)``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        value, worst = _worst(az.ess(posterior, method=method), largest=False)
    return CheckRow(f"min {method} ESS", value, f"> {min_ess:g}", value > min_ess, worst)


def _share(count: int, sample_stats: xr.Dataset) -> str:
    draws = sample_stats.sizes["chain"] * sample_stats.sizes["draw"]
    return f"{100 * count / draws:.1f}% of {draws} draws"


def divergence_check(sample_stats: xr.Dataset, max_divergences: int = 0) -> CheckRow:
    """Divergences: passes if at most ``max_divergences`` transitions (``sample_stats.diverging``) diverged."""
    per_chain = np.asarray(sample_stats["diverging"], dtype=bool).sum(axis=1)
    count = int(per_chain.sum())
    most = f"; most in chain {int(per_chain.argmax())}" if count else ""
    return CheckRow("divergent transitions", float(count), f"<= {max_divergences}", count <= max_divergences,
                    _share(count, sample_stats) + most)


def tree_depth_check(sample_stats: xr.Dataset, max_tree_depth: int = DEFAULT_MAX_TREE_DEPTH,
                     max_saturated: int = 0) -> CheckRow:
    """Tree depth: passes if at most ``max_saturated`` transitions used every leapfrog step allowed.

    A transition saturates when it took ``2**max_tree_depth - 1`` steps (``sample_stats.n_steps``)
    or, without ``n_steps``, when ``tree_depth >= max_tree_depth``, the depth NUTS ran with.
    """
    if "n_steps" in sample_stats:
        saturated = np.asarray(sample_stats["n_steps"]) >= 2**max_tree_depth - 1
    else:
        saturated = np.asarray(sample_stats["tree_depth"]) >= max_tree_depth
    count = int(saturated.sum())
    return CheckRow(f"transitions at max tree depth ({max_tree_depth})", float(count), f"<= {max_saturated}",
                    count <= max_saturated, _share(count, sample_stats))


def e_bfmi_check(sample_stats: xr.Dataset, min_bfmi: float = 0.3) -> CheckRow:
    """E-BFMI: does the energy move enough? Passes if its smallest value over the chains is above ``min_bfmi``."""
    bfmi = np.atleast_1d(np.asarray(az.bfmi(np.asarray(sample_stats["energy"], dtype=float)), dtype=float))
    chain = int(np.nanargmin(bfmi)) if np.isfinite(bfmi).any() else 0
    value = float(bfmi.min()) if np.isfinite(bfmi).all() else math.nan
    return CheckRow("min E-BFMI over chains", value, f"> {min_bfmi:g}", value > min_bfmi,
                    f"chain {chain} (all: {', '.join(f'{b:.2f}' for b in bfmi)})")


def convergence_table(rows: Mapping[str, CheckRow]) -> pd.DataFrame:
    """The rows of the checks as one table, indexed by check name (column ``passed`` is bool)."""
    return pd.DataFrame(list(rows.values()), index=pd.Index(list(rows), name="check")).astype({"passed": bool})


def _float_variables(posterior: xr.Dataset, var_names: Sequence[str] | None) -> list[str]:
    """``var_names`` checked, or every floating-point variable (discrete labels ``z`` have no R-hat)."""
    if var_names is None:
        names = [name for name, value in posterior.data_vars.items() if np.issubdtype(value.dtype, np.floating)]
        if not names:
            raise ValueError("`idata.posterior` has no floating-point variable; name the ones to check in `var_names`")
        return names
    names = [var_names] if isinstance(var_names, str) else list(var_names)
    if not names or any(name not in posterior.data_vars for name in names):
        raise ValueError(f"`var_names` must name posterior variables {tuple(posterior.data_vars)}, got {tuple(names)!r}")
    return names


def _sample_stats(idata: az.InferenceData, checks: Sequence[str]) -> xr.Dataset | None:
    """``idata.sample_stats`` if a check in ``checks`` needs it (and it has what they need)."""
    needed = [_SAMPLER_STATS[name] for name in checks if name in _SAMPLER_STATS]
    if not needed:
        return None
    if "sample_stats" not in idata.groups():
        raise ValueError("`idata` has no `sample_stats` group, needed by the sampler checks; pass "
                         "checks=('r_hat', 'ess_bulk', 'ess_tail') to check the posterior draws only")
    have = set(idata.sample_stats.data_vars) | ({"tree_depth"} if "n_steps" in idata.sample_stats else set())
    missing = [name for name in needed if name not in have]
    if missing:
        raise ValueError(f"`idata.sample_stats` lacks {missing}; leave the checks that need them out of `checks`")
    return idata.sample_stats


def check_convergence(
    idata: az.InferenceData, *, var_names: Sequence[str] | None = None, max_rhat: float = 1.01, min_ess: float = 400,
    max_divergences: int = 0, max_tree_depth: int | None = None, max_saturated: int = 0, min_bfmi: float = 0.3,
    checks: Sequence[str] = CHECKS,
) -> pd.DataFrame:
    """Run the book's convergence checks on a fit and return a pass/fail table.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit (:func:`gmm_utils.run_nuts`): ``posterior`` of dims ``(chain, draw, ...)`` and, for
        the sampler checks, ``sample_stats`` with ``diverging``, ``n_steps`` (or ``tree_depth``), ``energy``.
    var_names : sequence of str, optional
        Posterior variables for R-hat and ESS. Default: every floating-point variable.
    max_rhat, min_ess, max_divergences, max_saturated, min_bfmi : float or int
        The thresholds of the checks (the functions above); ``max_tree_depth`` defaults to the
        fit's recorded ``sample_stats.attrs["max_tree_depth"]``, else NumPyro's 10.
    checks : sequence of str
        A subset of :data:`CHECKS`; leave out the last three for samplers that are not HMC.

    Returns
    -------
    pandas.DataFrame
        :func:`convergence_table` of the checks' rows; ``table["passed"].all()`` says whether the
        fit passed everything (an undefined statistic, such as R-hat of a constant, fails).

    Raises
    ------
    TypeError, ValueError
        Naming the argument: not an ``InferenceData``, a missing group or variable, an unknown
        name in ``checks`` or ``var_names``, a threshold that is not a number or out of range.
    """
    inference_data(idata, group=None)
    checks = (checks,) if isinstance(checks, str) else tuple(checks)
    if not checks or any(name not in CHECKS for name in checks):
        raise ValueError(f"`checks` must be a non-empty subset of {CHECKS}, got {checks!r}")
    thresholds = dict(max_rhat=max_rhat, min_ess=min_ess, max_divergences=max_divergences,
                      max_saturated=max_saturated, min_bfmi=min_bfmi)
    for name, value in thresholds.items():
        nonnegative_number(name, value)
    if max_rhat <= 1.0:
        raise ValueError(f"`max_rhat` must be above 1, got {max_rhat!r}")
    if "posterior" not in idata.groups():
        raise ValueError("`idata` has no `posterior` group: pass the result of a sampler, e.g. gmm_utils.run_nuts")
    if not {"chain", "draw"} <= set(idata.posterior.dims):
        raise ValueError(f"`idata.posterior` needs dims `chain` and `draw`, got {tuple(idata.posterior.dims)}")
    posterior = idata.posterior[_float_variables(idata.posterior, var_names)]
    sample_stats = _sample_stats(idata, checks)
    if max_tree_depth is None:
        recorded = {} if sample_stats is None else sample_stats.attrs
        max_tree_depth = recorded.get("max_tree_depth", DEFAULT_MAX_TREE_DEPTH)
    max_tree_depth = int(nonnegative_number("max_tree_depth", max_tree_depth))
    run = {
        "r_hat": lambda: rhat_check(posterior, max_rhat),
        "ess_bulk": lambda: ess_check(posterior, "bulk", min_ess),
        "ess_tail": lambda: ess_check(posterior, "tail", min_ess),
        "divergences": lambda: divergence_check(sample_stats, max_divergences),
        "tree_depth": lambda: tree_depth_check(sample_stats, max_tree_depth, max_saturated),
        "e_bfmi": lambda: e_bfmi_check(sample_stats, min_bfmi),
    }
    return convergence_table({name: run[name]() for name in CHECKS if name in checks})


def plot_pair_by_chain(
    idata: az.InferenceData, var_name: str = "locs", components: tuple[int, int] = (0, 1), *,
    ax: plt.Axes | None = None, max_draws: int = 500,
) -> plt.Axes:
    r"""Scatter two components of a posterior variable, one colour per chain.

    Label switching at a glance: with exchangeable priors each chain settles in one of the
    :math:`K!` label permutations, so the chains form separate clouds, mirror images across
    the diagonal :math:`\mu_1 = \mu_2`.

    ``posterior[var_name]`` has shape ``(chains, draws, k)``; ``components`` are the two
    positions along its last axis on the x and y axes; at most ``max_draws`` draws per chain
    are drawn (evenly thinned), on ``ax`` or a new figure.
    """
    from .plots import COMPONENT_COLORS

    inference_data(idata, group=None)
    if "posterior" not in idata.groups() or var_name not in idata.posterior:
        raise ValueError(f"`var_name` {var_name!r} is not a posterior variable of `idata`")
    values = np.asarray(idata.posterior[var_name])
    if values.ndim != 3:
        raise ValueError(f"`var_name` {var_name!r} must have shape (chains, draws, k), got {values.shape}")
    first, second = components
    if not (0 <= first < values.shape[-1] and 0 <= second < values.shape[-1]):
        raise ValueError(f"`components` must lie in 0..{values.shape[-1] - 1}, got {components}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.0))
    step = max(1, values.shape[1] // max_draws)
    for chain in range(values.shape[0]):
        ax.scatter(values[chain, ::step, first], values[chain, ::step, second], s=6, alpha=0.5,
                   color=COMPONENT_COLORS[chain % len(COMPONENT_COLORS)], label=f"chain {chain}")
    low, high = min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([low, high], [low, high], color="0.6", lw=0.8, ls="--", zorder=0)
    ax.set(xlim=(low, high), ylim=(low, high), aspect="equal",
           xlabel=f"{var_name}[{first}]", ylabel=f"{var_name}[{second}]")
    ax.legend(loc="best", fontsize="small", markerscale=2)
    return ax
