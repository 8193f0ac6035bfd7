r"""Convergence diagnostics for NUTS fits: one pass/fail table, and a chain-coloured scatter.

:func:`check_convergence` runs the checks that every chapter applies to every fit
(Vehtari et al. 2021 for R-hat and ESS, Betancourt 2017 for the HMC-specific ones):

=====================  ==================================================  ===========
check                  statistic                                           passes if
=====================  ==================================================  ===========
``r_hat``              largest rank-normalized split R-hat                 < 1.01
``ess_bulk``           smallest bulk effective sample size                 > 400
``ess_tail``           smallest tail effective sample size                 > 400
``divergences``        divergent transitions after warm-up                 == 0
``tree_depth``         transitions that hit the maximum tree depth         == 0
``e_bfmi``             smallest energy Bayesian fraction of missing info   > 0.3
=====================  ==================================================  ===========

R-hat and ESS are taken over every scalar in the posterior (``locs[0]``, ``locs[1]``,
...), E-BFMI per chain, and the table names the worst parameter or chain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

#: The checks :func:`check_convergence` knows, in the order of its table.
CHECKS: tuple[str, ...] = ("r_hat", "ess_bulk", "ess_tail", "divergences", "tree_depth", "e_bfmi")

#: Checks that need ``sample_stats`` (NUTS's per-draw statistics), and the variable each reads.
_SAMPLER_STATS = {"divergences": "diverging", "tree_depth": "tree_depth", "e_bfmi": "energy"}

#: NumPyro's default ``max_tree_depth``, assumed when the fit does not record its own.
DEFAULT_MAX_TREE_DEPTH = 10


def _scalar_labels(data_array: Any) -> list[str]:
    """``["locs[0]", "locs[1]", ...]`` for a per-parameter statistic (no chain/draw dims)."""
    name = str(data_array.name)
    if data_array.ndim == 0:
        return [name]
    coords = [np.asarray(data_array.coords[dim].values) if dim in data_array.coords else np.arange(size)
              for dim, size in zip(data_array.dims, data_array.shape)]
    return [f"{name}[{', '.join(str(c[i]) for c, i in zip(coords, index))}]"
            for index in np.ndindex(*data_array.shape)]


def _flatten(statistic: Any) -> pd.Series:
    """One value per scalar parameter from an ArviZ statistic (an ``xarray.Dataset``)."""
    values: dict[str, float] = {}
    for data_array in statistic.data_vars.values():
        values.update(zip(_scalar_labels(data_array), np.asarray(data_array, dtype=float).ravel()))
    return pd.Series(values, dtype=float)


def _worst(series: pd.Series, largest: bool) -> tuple[float, str]:
    """The worst value and its label; NaN (e.g. a constant parameter) counts as worst."""
    if series.empty:
        return math.nan, "no parameters"
    if series.isna().any():
        return math.nan, f"{series.index[series.isna()][0]} (undefined)"
    label = series.idxmax() if largest else series.idxmin()
    return float(series[label]), str(label)


def _z_scale(values: np.ndarray) -> np.ndarray:
    """Rank-normalize: ranks mapped through the Normal quantile function (Vehtari et al. 2021)."""
    ranks = stats.rankdata(values, method="average").reshape(values.shape)
    return stats.norm.ppf((ranks - 3 / 8) / (values.size + 1 / 4))


def _one_chain_rhat(posterior: Any) -> pd.Series:
    """Rank-normalized split R-hat of a single chain: its first and second halves compared.

    ArviZ returns NaN for one chain; this is the same statistic (bulk and folded tail,
    the larger of the two) with the chain's two halves as the split chains.
    """
    values: dict[str, float] = {}
    for data_array in posterior.data_vars.values():
        draws = np.asarray(data_array.isel(chain=0), dtype=float)  # (draws, ...)
        half = draws.shape[0] // 2
        halves = np.stack([draws[:half], draws[-half:]])  # (2, half, ...)
        flat = halves.reshape(2, half, -1)
        per_scalar = []
        for j in range(flat.shape[-1]):
            split = flat[..., j]
            folded = np.abs(split - np.median(split))
            per_scalar.append(max(float(az.rhat(_z_scale(split), method="identity")),
                                  float(az.rhat(_z_scale(folded), method="identity"))))
        labels = _scalar_labels(data_array.isel(chain=0, draw=0))
        values.update(zip(labels, per_scalar))
    return pd.Series(values, dtype=float)


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a number, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"`{name}` must be finite and non-negative, got {value!r}")
    return float(value)


def check_convergence(
    idata: az.InferenceData,
    *,
    var_names: Sequence[str] | None = None,
    max_rhat: float = 1.01,
    min_ess: float = 400,
    max_divergences: int = 0,
    max_tree_depth: int | None = None,
    max_saturated: int = 0,
    min_bfmi: float = 0.3,
    checks: Sequence[str] = CHECKS,
) -> pd.DataFrame:
    r"""Run the book's convergence checks on a fit and return a pass/fail table.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit, e.g. from :func:`gmm_utils.run_nuts`. Needs a ``posterior`` group with
        dims ``(chain, draw, ...)``, e.g. ``locs`` of shape ``(chains, draws, k)``, and
        for the sampler checks a ``sample_stats`` group with ``diverging``,
        ``tree_depth`` (or ``n_steps``) and ``energy``, each ``(chains, draws)``.
    var_names : sequence of str, optional
        Posterior variables for R-hat and ESS. Default: every floating-point variable
        (discrete labels such as ``z`` are left out, as in :func:`gmm_utils.fit_summary`).
    max_rhat : float
        R-hat passes if its largest value is below this (default 1.01).
    min_ess : float
        Bulk and tail ESS pass if their smallest value is above this (default 400,
        i.e. 100 per chain for 4 chains).
    max_divergences : int
        At most this many divergent transitions (default 0).
    max_tree_depth : int, optional
        The ``max_tree_depth`` NUTS ran with. Default: ``sample_stats.attrs["max_tree_depth"]``
        if the fit recorded it, else NumPyro's default of 10. A transition *saturates*
        when its trajectory used all ``2**max_tree_depth - 1`` leapfrog steps
        (``n_steps``), or, without ``n_steps``, when ``tree_depth >= max_tree_depth``.
    max_saturated : int
        At most this many saturated transitions (default 0).
    min_bfmi : float
        E-BFMI passes if its smallest value over the chains is above this (default 0.3).
    checks : sequence of str
        Which checks to run, a subset of :data:`CHECKS`. Leave out ``"divergences"``,
        ``"tree_depth"`` and ``"e_bfmi"`` for samplers that are not HMC.

    Returns
    -------
    pandas.DataFrame
        One row per check, indexed by its name in :data:`CHECKS`, with columns
        ``statistic`` (what was measured), ``value``, ``threshold`` (e.g. ``"< 1.01"``),
        ``passed`` (bool) and ``worst`` (the parameter or chain responsible).
        ``table["passed"].all()`` says whether the fit passed everything. An undefined
        statistic (NaN, e.g. R-hat of a constant) fails. For a single chain, R-hat compares
        the chain's two halves (ArviZ itself needs two chains).

    Raises
    ------
    TypeError
        If ``idata`` is not an ``arviz.InferenceData`` or a threshold is not a number.
    ValueError
        If a group or variable a check needs is missing, a name in ``checks`` or
        ``var_names`` is unknown, or a threshold is out of range.

    Examples
    --------
    >>> idata = gmm_utils.run_nuts(gmm_utils.marginal_model, x=data.x, k=3, ordered=True)  # doctest: +SKIP
    >>> table = check_convergence(idata)  # doctest: +SKIP
    >>> bool(table["passed"].all())  # doctest: +SKIP
    True
    """
    if not isinstance(idata, az.InferenceData):
        raise TypeError(f"`idata` must be an arviz.InferenceData, got {type(idata).__name__}")
    if isinstance(checks, str):
        checks = (checks,)
    unknown = [name for name in checks if name not in CHECKS]
    if unknown or not checks:
        raise ValueError(f"`checks` must be a non-empty subset of {CHECKS}, got {tuple(checks)!r}")
    max_rhat = _positive_number("max_rhat", max_rhat)
    if max_rhat <= 1.0:
        raise ValueError(f"`max_rhat` must be above 1, got {max_rhat!r}")
    min_ess = _positive_number("min_ess", min_ess)
    max_divergences = int(_positive_number("max_divergences", max_divergences))
    max_saturated = int(_positive_number("max_saturated", max_saturated))
    min_bfmi = _positive_number("min_bfmi", min_bfmi)

    if "posterior" not in idata.groups():
        raise ValueError("`idata` has no `posterior` group: pass the result of a sampler, e.g. gmm_utils.run_nuts")
    posterior = idata.posterior
    for dim in ("chain", "draw"):
        if dim not in posterior.dims:
            raise ValueError(f"`idata.posterior` has no `{dim}` dimension (dims: {tuple(posterior.dims)})")
    if var_names is None:  # discrete draws (latent labels ``z``) have no R-hat or ESS in the usual sense
        var_names = [name for name, value in posterior.data_vars.items() if np.issubdtype(value.dtype, np.floating)]
        if not var_names:
            raise ValueError("`idata.posterior` has no floating-point variable; name the ones to check in `var_names`")
    else:
        var_names = [var_names] if isinstance(var_names, str) else list(var_names)
        missing = [name for name in var_names if name not in posterior.data_vars]
        if missing or not var_names:
            raise ValueError(
                f"`var_names` must name posterior variables {tuple(posterior.data_vars)}, got {tuple(var_names)!r}"
            )

    needed = [_SAMPLER_STATS[name] for name in checks if name in _SAMPLER_STATS]
    stats = None
    if needed:
        if "sample_stats" not in idata.groups():
            raise ValueError(
                "`idata` has no `sample_stats` group, needed by the sampler checks; pass "
                "checks=('r_hat', 'ess_bulk', 'ess_tail') to check the posterior draws only"
            )
        stats = idata.sample_stats
        have = set(stats.data_vars)
        if "n_steps" in have:
            have.add("tree_depth")
        missing = [name for name in needed if name not in have]
        if missing:
            raise ValueError(
                f"`idata.sample_stats` lacks {missing}; leave the checks that need them out of `checks`"
            )
    if max_tree_depth is None:
        recorded = stats.attrs.get("max_tree_depth") if stats is not None else None
        max_tree_depth = DEFAULT_MAX_TREE_DEPTH if recorded is None else int(recorded)
    max_tree_depth = int(_positive_number("max_tree_depth", max_tree_depth))

    rows: dict[str, dict[str, Any]] = {}
    subset = posterior[var_names]
    if "r_hat" in checks:
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant gives NaN: reported as failed
            per_parameter = _flatten(az.rhat(subset)) if subset.sizes["chain"] > 1 else _one_chain_rhat(subset)
            value, worst = _worst(per_parameter, largest=True)
        rows["r_hat"] = dict(statistic="max R-hat (rank-normalized, split)", value=value,
                             threshold=f"< {max_rhat:g}", passed=value < max_rhat, worst=worst)
    for method in ("bulk", "tail"):
        if f"ess_{method}" in checks:
            with np.errstate(invalid="ignore", divide="ignore"):
                value, worst = _worst(_flatten(az.ess(subset, method=method)), largest=False)
            rows[f"ess_{method}"] = dict(statistic=f"min {method} ESS", value=value,
                                         threshold=f"> {min_ess:g}", passed=value > min_ess, worst=worst)
    if stats is not None:
        num_draws = int(np.prod([stats.sizes[dim] for dim in ("chain", "draw")]))
    if "divergences" in checks:
        diverging = np.asarray(stats["diverging"], dtype=bool)
        count = int(diverging.sum())
        per_chain = diverging.reshape(diverging.shape[0], -1).sum(axis=1)
        rows["divergences"] = dict(
            statistic="divergent transitions", value=float(count), threshold=f"<= {max_divergences}",
            passed=count <= max_divergences,
            worst=f"{100 * count / num_draws:.1f}% of {num_draws} draws"
            + (f"; most in chain {int(per_chain.argmax())}" if count else ""),
        )
    if "tree_depth" in checks:
        if "n_steps" in stats:
            saturated = np.asarray(stats["n_steps"]) >= 2**max_tree_depth - 1
        else:
            saturated = np.asarray(stats["tree_depth"]) >= max_tree_depth
        count = int(saturated.sum())
        rows["tree_depth"] = dict(
            statistic=f"transitions at max tree depth ({max_tree_depth})", value=float(count),
            threshold=f"<= {max_saturated}", passed=count <= max_saturated,
            worst=f"{100 * count / num_draws:.1f}% of {num_draws} draws",
        )
    if "e_bfmi" in checks:
        bfmi = np.atleast_1d(np.asarray(az.bfmi(idata), dtype=float))
        chain = int(np.nanargmin(bfmi)) if np.isfinite(bfmi).any() else 0
        value = float(bfmi.min()) if np.isfinite(bfmi).all() else math.nan
        rows["e_bfmi"] = dict(
            statistic="min E-BFMI over chains", value=value, threshold=f"> {min_bfmi:g}",
            passed=value > min_bfmi, worst=f"chain {chain} (all: {', '.join(f'{b:.2f}' for b in bfmi)})",
        )
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "check"
    table["passed"] = table["passed"].astype(bool)
    return table


def plot_pair_by_chain(
    idata: az.InferenceData,
    var_name: str = "locs",
    components: tuple[int, int] = (0, 1),
    *,
    ax: plt.Axes | None = None,
    max_draws: int = 500,
) -> plt.Axes:
    r"""Scatter two components of a posterior variable, one colour per chain.

    The figure that shows label switching at a glance: with exchangeable priors each
    chain settles in one of the :math:`K!` label permutations, so the chains form
    separate clouds, mirror images across the diagonal :math:`\mu_1 = \mu_2`.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``posterior[var_name]`` of shape ``(chains, draws, k)``.
    var_name : str
        The posterior variable, default ``"locs"``.
    components : (int, int)
        Positions (0-based) along the last axis to put on the x and y axes.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    max_draws : int
        Plot at most this many draws per chain (evenly thinned).

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .plots import COMPONENT_COLORS

    if not isinstance(idata, az.InferenceData):
        raise TypeError(f"`idata` must be an arviz.InferenceData, got {type(idata).__name__}")
    if "posterior" not in idata.groups() or var_name not in idata.posterior:
        raise ValueError(f"`var_name` {var_name!r} is not a posterior variable of `idata`")
    values = np.asarray(idata.posterior[var_name])
    if values.ndim != 3:
        raise ValueError(f"`var_name` {var_name!r} must have shape (chains, draws, k), got {values.shape}")
    first, second = components
    for name, index in (("components[0]", first), ("components[1]", second)):
        if not 0 <= index < values.shape[-1]:
            raise ValueError(f"`{name}` must lie in 0..{values.shape[-1] - 1}, got {index}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.0))
    step = max(1, values.shape[1] // max_draws)
    for chain in range(values.shape[0]):
        ax.scatter(values[chain, ::step, first], values[chain, ::step, second], s=6, alpha=0.5,
                   color=COMPONENT_COLORS[chain % len(COMPONENT_COLORS)], label=f"chain {chain}")
    low = min(ax.get_xlim()[0], ax.get_ylim()[0])
    high = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([low, high], [low, high], color="0.6", lw=0.8, ls="--", zorder=0)
    ax.set(xlim=(low, high), ylim=(low, high), aspect="equal",
           xlabel=f"{var_name}[{first}]", ylabel=f"{var_name}[{second}]")
    ax.legend(loc="best", fontsize="small", markerscale=2)
    return ax

