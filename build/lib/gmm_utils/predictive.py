r"""Posterior predictive checks, and predictions for new points.

*Replicated data sets.* :func:`sample_posterior_predictive` draws, for every posterior
draw :math:`\theta^{(s)}`, a data set of the observed size from
:math:`p(x \mid \theta^{(s)})`, and stores them as ArviZ's ``posterior_predictive``
group; :func:`posterior_predictive_pvalues` compares test statistics of the data with
their replicated values.

*Densities and probabilities of single points.* Given the parameters, the mixture
density, its CDF and the membership probabilities of a point are exact, so they need no
simulation: :func:`predictive_density_band`, :func:`predictive_cdf` (the probability
integral transform), :func:`ecdf_band` and :func:`assign_clusters`. All evaluate
:func:`gmm_utils.component_log_densities` on every draw (via
:func:`gmm_utils.labels.over_draws`), with Student-t components when the posterior has
``df`` (the fits of :func:`gmm_utils.student_t_mixture_model`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from numpyro.infer import Predictive

from ._validation import finite_vector, inference_data, positive_int
from .distributions import component_log_densities, mixture_cdf
from .labels import membership_probabilities, over_draws, posterior_samples
from .models import latent_model, marginal_model


def _check_prob(name: str, prob: Any) -> float:
    if isinstance(prob, bool) or not isinstance(prob, (int, float, np.floating)):
        raise TypeError(f"`{name}` must be a number in (0, 1), got {prob!r}")
    if not 0.0 < prob < 1.0:
        raise ValueError(f"`{name}` must lie in (0, 1), got {prob!r}")
    return float(prob)


def _interval(values: np.ndarray, prob: float) -> np.ndarray:
    """The equal-tailed ``prob`` interval over the first axis: ``[lower, upper]``."""
    return np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=0)


def _log_density(x: Any, *parameters: Any) -> jax.Array:
    """The mixture's log density: the ``logsumexp`` of :func:`gmm_utils.component_log_densities`."""
    return jax.nn.logsumexp(component_log_densities(x, *parameters), axis=-1)


def tail_share(x: Any, threshold: float = 3.0) -> np.ndarray:
    r"""Share of points more than ``threshold`` standard deviations from the mean, per data set.

    .. math:: T(x) = \frac{1}{n} \#\{i : |x_i - \bar x| > c\, s_x\}

    A measure of tail mass: 0.27% for a Normal at :math:`c = 3`. A mixture of Normals can
    have less (well-separated components of equal spread) or more (unequal spreads);
    heavy-tailed data have more.

    Parameters
    ----------
    x : array_like, shape (..., n)
        One data set per row, e.g. replicated data sets of shape ``(draws, n)``.
    threshold : float
        :math:`c`, in standard deviations of each data set.

    Returns
    -------
    numpy.ndarray, shape (...)

    Examples
    --------
    >>> float(tail_share([0.0] * 19 + [10.0], 3.0))
    0.05
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 0 or x.shape[-1] < 2:
        raise ValueError(f"`x` must have at least two points along its last axis, got shape {x.shape}")
    centred = x - x.mean(axis=-1, keepdims=True)
    return np.mean(np.abs(centred) > threshold * x.std(axis=-1, keepdims=True), axis=-1)


def sample_posterior_predictive(
    idata: az.InferenceData,
    model: Callable[..., Any] = marginal_model,
    model_kwargs: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    n: int | None = None,
) -> az.InferenceData:
    """Replicated data sets, one per posterior draw, in a copy of ``idata``.

    NumPyro's ``Predictive`` substitutes each posterior draw into ``model`` (called with
    ``x=None`` and ``n`` points) and samples its site ``x``; the result is stored as the
    ``posterior_predictive`` group, shape ``(chains, draws, n)`` with dims
    ``chain, draw, point``, the layout ``az.plot_ppc`` and ``az.loo_pit`` read.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales`` of shape ``(chains, draws, k)``.
    model : callable
        The model that was fitted, default :func:`gmm_utils.marginal_model`; a posterior
        with ``df`` (a Student-t mixture) needs its own.
    model_kwargs : mapping, optional
        Further model arguments, as in the fit (``{"ordered": True}``, priors...); ``k``
        defaults to the number of components in the posterior.
    seed : int
        Seed of the replicated data.
    n : int, optional
        Points per replicated data set; default the size of ``observed_data.x``.

    Returns
    -------
    arviz.InferenceData
    """
    samples = posterior_samples(idata)
    if "df" in samples and model in (marginal_model, latent_model):
        raise ValueError("the posterior has `df` (Student-t components): pass the model that was fitted, "
                         "e.g. model=gmm_utils.student_t_mixture_model")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an integer, got {seed!r}")
    if n is None:
        if "observed_data" not in idata.groups() or "x" not in idata.observed_data:
            raise ValueError("give the number of points `n`: `idata` has no observed_data `x`")
        n = int(idata.observed_data["x"].size)
    n = positive_int("n", n)
    model_kwargs = {"k": samples["weights"].shape[-1], **(model_kwargs or {}), "x": None, "n": n}
    replicated = Predictive(model, samples, return_sites=["x"])(jax.random.PRNGKey(seed), **model_kwargs)
    shape = (idata.posterior.sizes["chain"], idata.posterior.sizes["draw"], n)
    extended = idata.copy()
    extended.add_groups(posterior_predictive={"x": np.asarray(replicated["x"]).reshape(shape)}, dims={"x": ["point"]})
    return extended


class DensityBand(NamedTuple):
    """The posterior predictive density over ``grid`` (its ``mean`` over draws) and a pointwise ``prob`` band."""

    grid: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob: float


def predictive_density_band(idata: az.InferenceData, grid: Any, *, prob: float = 0.9) -> DensityBand:
    r"""The mixture density over ``grid`` for every draw, summarized as mean and band.

    For each draw :math:`\theta^{(s)}` the density :math:`p(x \mid \theta^{(s)})` is exact;
    its mean over draws is the posterior predictive density of a new point, and its
    quantiles give a pointwise equal-tailed ``prob`` credible band for the density
    *function*: parameter uncertainty only, not where a histogram of new data would fall.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales`` of shape ``(chains, draws, k)``.
    grid : array_like, shape (m,)
        Points at which to evaluate the density.
    prob : float
        Probability of the band.

    Returns
    -------
    DensityBand
    """
    prob = _check_prob("prob", prob)
    grid = finite_vector("grid", grid)
    density = np.exp(over_draws(idata, _log_density, grid, name="grid")).reshape(-1, grid.shape[0])
    lower, upper = _interval(density, prob)
    return DensityBand(grid=grid, mean=density.mean(axis=0), lower=lower, upper=upper, prob=prob)


def _axes_and_color(band: Any, kind: type, ax: plt.Axes | None, color: Any) -> tuple[plt.Axes, Any]:
    """Check ``band`` is a ``kind``; the axes to draw on and the colour (default: the first component's)."""
    from .plots import COMPONENT_COLORS

    if not isinstance(band, kind):
        raise TypeError(f"`band` must be of type {kind.__name__}, got {type(band).__name__}")
    if ax is None:
        _, ax = plt.subplots()
    return ax, COMPONENT_COLORS[0] if color is None else color


def plot_density_band(
    band: DensityBand, ax: plt.Axes | None = None, *, color: Any = None, label: str = "posterior predictive"
) -> plt.Axes:
    """Draw a :class:`DensityBand`: the mean density as a line labelled ``label``, the band filled.

    Draws on ``ax`` (default a new figure) in ``color`` (default the first component's).
    """
    ax, color = _axes_and_color(band, DensityBand, ax, color)
    ax.fill_between(band.grid, band.lower, band.upper, color=color, alpha=0.3, lw=0,
                    label=f"{band.prob:.0%} band, {label}")
    ax.plot(band.grid, band.mean, color=color, lw=1.5, label=label)
    ax.set(xlabel="x", ylabel="density")
    return ax


def predictive_cdf(idata: az.InferenceData, x: Any | None = None) -> np.ndarray:
    r"""Posterior predictive CDF at each point: the probability integral transform (PIT).

    .. math::
        u_i = \frac{1}{S} \sum_{s=1}^{S} \sum_j w^{(s)}_j\,
        \Phi\!\left(\frac{x_i - \mu^{(s)}_j}{\sigma^{(s)}_j}\right)

    If the model were the truth, the :math:`u_i` of new data would be uniform on (0, 1).
    For the data the model was fitted to they are slightly *too* uniform (each point
    helped fit the parameters); :func:`arviz.loo_pit` removes that double use.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales``.
    x : array_like, shape (n,), optional
        Default the fit's ``observed_data``.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Values in [0, 1].
    """
    cdf = over_draws(idata, mixture_cdf, x)
    return cdf.reshape(-1, cdf.shape[-1]).mean(axis=0)


class ECDFBand(NamedTuple):
    """The ECDF of values in [0, 1] at ``eval_points``, its simultaneous ``prob`` band for ``n``
    uniform values (``lower``, ``upper``), and whether the ECDF stays ``inside`` it everywhere."""

    eval_points: np.ndarray
    ecdf: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    inside: bool
    prob: float


@functools.lru_cache(maxsize=16)
def _uniform_ecdf_band(n: int, num_points: int, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ's optimized simultaneous band for the ECDF of ``n`` uniforms (cached: it is slow)."""
    from arviz.stats.ecdf_utils import ecdf_confidence_band

    eval_points = np.linspace(1 / num_points, 1.0, num_points)
    return ecdf_confidence_band(n, eval_points, eval_points, prob=prob, method="optimized")


def ecdf_band(values: Any, *, prob: float = 0.99, num_points: int = 50) -> ECDFBand:
    """Is the ECDF of PIT values inside its simultaneous band for uniform values?

    The band is ArviZ's ``"optimized"`` simultaneous band (Säilynoja, Bürkner and Vehtari
    2022), the one ``az.plot_ecdf(..., confidence_bands="optimized")`` draws: if the values
    were ``n`` independent uniforms, the whole ECDF would stay inside it with probability
    ``prob``. The shape of an excursion says which misfit it is (chapter 5).

    Parameters
    ----------
    values : array_like, shape (n,)
        PIT or LOO-PIT values in [0, 1].
    prob : float
        Simultaneous coverage of the band.
    num_points : int
        Evaluation points ``1/m, 2/m, ..., 1`` with ``m = num_points``. The band is slow
        to compute, so it is computed once per ``n``, ``num_points`` and ``prob``.

    Returns
    -------
    ECDFBand

    Examples
    --------
    >>> import numpy as np
    >>> ecdf_band(np.random.default_rng(0).uniform(size=100), num_points=10).inside
    True
    """
    values = np.sort(finite_vector("values", values))
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"`values` must lie in [0, 1], got range [{values.min():.3g}, {values.max():.3g}]")
    prob = _check_prob("prob", prob)
    num_points = positive_int("num_points", num_points)
    eval_points = np.linspace(1 / num_points, 1.0, num_points)
    ecdf = np.searchsorted(values, eval_points, side="right") / values.shape[0]
    lower, upper = _uniform_ecdf_band(values.shape[0], num_points, prob)
    inside = bool(np.all((ecdf >= lower) & (ecdf <= upper)))
    return ECDFBand(eval_points=eval_points, ecdf=ecdf, lower=lower, upper=upper, inside=inside, prob=prob)


def plot_ecdf_band(
    band: ECDFBand, ax: plt.Axes | None = None, *, color: Any = None, label: str = "ECDF of PIT values"
) -> plt.Axes:
    """Draw an :class:`ECDFBand` as an ECDF-difference plot, :math:`F_n(u) - u` against :math:`u`.

    The layout of ``az.plot_ecdf(values, cdf=uniform.cdf, confidence_bands=True,
    difference=True)`` without computing the band again; ``ax`` and ``color`` as in
    :func:`plot_density_band`.
    """
    ax, color = _axes_and_color(band, ECDFBand, ax, color)
    u = band.eval_points
    ax.fill_between(u, band.lower - u, band.upper - u, color="0.85", lw=0, step="post",
                    label=f"{band.prob:.0%} simultaneous band")
    ax.step(u, band.ecdf - u, where="post", color=color, lw=1.5, label=label)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set(xlabel="PIT value u", ylabel="ECDF(u) − u", xlim=(0, 1))
    return ax


def posterior_predictive_pvalues(
    idata: az.InferenceData,
    statistics: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    *,
    prob: float = 0.9,
) -> pd.DataFrame:
    r"""Posterior predictive p-values of test statistics.

    .. math:: p_T = \Pr\big(T(x^{\text{rep}}) \le T(x) \mid x\big)
        \approx \frac{1}{S} \sum_s \mathbb{1}\big[T(x^{\text{rep}(s)}) \le T(x)\big]

    the convention of ``az.plot_bpv``, with ties counted one half (a "mid-p" value), so
    that a statistic that is zero in the data and in almost every replication gets a
    p-value near 0.5, not 1. A p-value near 0 or 1 says the data are extreme among the
    data sets the fitted model makes; one near 0.5 does not prove fit.

    Parameters
    ----------
    idata : arviz.InferenceData
        With ``posterior_predictive.x`` of shape ``(chains, draws, n)`` (see
        :func:`sample_posterior_predictive`) and ``observed_data.x`` of shape ``(n,)``.
    statistics : mapping of str to callable
        Name to function mapping an array of shape ``(..., n)`` (one data set per row)
        to ``(...)``, e.g. ``{"1% quantile": lambda x: np.quantile(x, 0.01, axis=-1)}``.
    prob : float
        Probability of the equal-tailed interval of the replicated statistic.

    Returns
    -------
    pandas.DataFrame
        One row per statistic: ``observed``, ``replicated mean``, the ``lower`` and
        ``upper`` ends of the interval of :math:`T(x^{\text{rep}})`, and ``p_value``.
    """
    idata = inference_data(idata, "posterior_predictive")
    if "x" not in idata.posterior_predictive or "observed_data" not in idata.groups():
        raise ValueError("`idata` needs posterior_predictive `x` (sample_posterior_predictive) and observed_data `x`")
    if not isinstance(statistics, Mapping) or not statistics:
        raise TypeError(f"`statistics` must be a non-empty mapping of names to functions, got {statistics!r}")
    prob = _check_prob("prob", prob)
    observed = np.asarray(idata.observed_data["x"].values, dtype=float)
    replicated = np.asarray(idata.posterior_predictive["x"].values, dtype=float)
    replicated = replicated.reshape(-1, replicated.shape[-1])
    rows = {}
    for name, statistic in statistics.items():
        if not callable(statistic):
            raise TypeError(f"`statistics[{name!r}]` must be callable, got {statistic!r}")
        t_data = np.asarray(statistic(observed), dtype=float)
        t_replicated = np.asarray(statistic(replicated), dtype=float)
        if t_data.shape != () or t_replicated.shape != (replicated.shape[0],):
            raise ValueError(f"`statistics[{name!r}]` must map shape (n,) to a number and (draws, n) to (draws,), "
                             f"got {t_data.shape} and {t_replicated.shape}")
        t_observed = float(t_data)
        lower, upper = _interval(t_replicated, prob)
        rows[name] = {
            "observed": t_observed,
            "replicated mean": float(t_replicated.mean()),
            "lower": float(lower),
            "upper": float(upper),
            "p_value": float(np.mean(t_replicated < t_observed) + 0.5 * np.mean(t_replicated == t_observed)),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("statistic")


def assign_clusters(idata: az.InferenceData, x_new: Any, *, prob: float = 0.9) -> pd.DataFrame:
    r"""The most probable component of each new point, with the uncertainty of that call.

    The posterior mean membership probabilities :math:`\bar p_j` (of
    :func:`gmm_utils.membership_probabilities`) give the component :math:`\arg\max_j \bar p_j` and
    its probability; its equal-tailed ``prob`` interval over draws says how well the
    parameters pin that probability down. ``log_density``, the log posterior predictive
    density of the point, flags a point that no component explains (its membership
    probabilities still sum to one).

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ordered components (labels must mean the same in every draw).
    x_new : array_like, shape (m,)
        The new points.
    prob : float
        Probability of the interval over draws.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``x``, ``component`` (0-based), ``probability``, ``lower``,
        ``upper``, ``log_density``, and ``p[j]``, the mean membership probability of each
        component ``j``.
    """
    prob = _check_prob("prob", prob)
    x_new = finite_vector("x_new", x_new)
    draws = membership_probabilities(idata, x_new, per_draw=True)
    draws = draws.reshape(-1, *draws.shape[2:])  # (draws, m, k)
    mean = draws.mean(axis=0)
    component = mean.argmax(axis=1)
    lower, upper = _interval(np.take_along_axis(draws, component[None, :, None], axis=2)[..., 0], prob)
    log_density = over_draws(idata, _log_density, x_new, name="x_new").reshape(-1, x_new.shape[0])
    table = pd.DataFrame({
        "x": x_new,
        "component": component,
        "probability": mean[np.arange(x_new.shape[0]), component],
        "lower": lower,
        "upper": upper,
        "log_density": np.logaddexp.reduce(log_density, axis=0) - np.log(log_density.shape[0]),
    })
    for j in range(mean.shape[1]):
        table[f"p[{j}]"] = mean[:, j]
    return table.rename_axis("point")


def elpd_by_chain(idata: az.InferenceData) -> np.ndarray:
    """PSIS-LOO ``elpd_loo`` estimated from each chain alone, shape ``(chains,)``.

    If the chains explore different modes of a non-identified posterior (an
    over-complete mixture), their parameter R-hat fails; whether the *predictive* they
    imply agrees is what matters for model comparison, and this measures it. ``idata``
    needs a ``log_likelihood`` group (:func:`gmm_utils.run_nuts` stores one).

    ArviZ warns when a Pareto shape ``k`` exceeds ``min(1 - 1/log10(S), 0.7)``, a lower
    bar for one chain's ``S`` draws than for the whole fit's; the per-chain estimates only
    compare the chains with one another, so that warning is silenced here: check
    ``az.loo(idata).pareto_k`` on the whole fit.
    """
    idata = inference_data(idata, "log_likelihood")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        return np.array([az.loo(idata.sel(chain=[c])).elpd_loo for c in range(idata.posterior.sizes["chain"])])
