r"""Posterior predictive checks, and predictions for new points.

A fitted mixture makes predictions in two ways, and this module serves both:

*Replicated data sets.* :func:`sample_posterior_predictive` draws, for every posterior
draw :math:`\theta^{(s)}`, a whole data set :math:`x^{\text{rep}(s)}` of the observed
size from :math:`p(x \mid \theta^{(s)})`, with NumPyro's ``Predictive``, and stores it as
ArviZ's ``posterior_predictive`` group. :func:`posterior_predictive_pvalues` compares a test
statistic :math:`T` of the data with its replicated values.

*Densities and probabilities of single points.* Given the parameters, the mixture
density, its CDF and the membership probabilities of any point are exact, so they need
no simulation: :func:`predictive_density_band` (the density over a grid, with a credible
band over draws), :func:`predictive_cdf` (the probability integral transform of the
data), :func:`ecdf_band` (is an ECDF of PIT values inside its simultaneous band?) and
:func:`assign_clusters` (which component a new point belongs to, with uncertainty).
Components are Gaussian, or Student-t with the posterior's ``df`` when it has one (the
fits of :func:`gmm_utils.student_t_mixture_model`).
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
from scipy.special import gammaln, logsumexp, ndtr, softmax, stdtr

from ._validation import finite_vector, positive_int
from .inference import map_over_draws
from .models import latent_model, marginal_model


def _check_prob(name: str, prob: Any) -> float:
    if isinstance(prob, bool) or not isinstance(prob, (int, float, np.floating)):
        raise TypeError(f"`{name}` must be a number in (0, 1), got {prob!r}")
    if not 0.0 < prob < 1.0:
        raise ValueError(f"`{name}` must lie in (0, 1), got {prob!r}")
    return float(prob)


def _check_idata(idata: Any) -> az.InferenceData:
    if not isinstance(idata, az.InferenceData):
        raise TypeError(f"`idata` must be an arviz.InferenceData, got {type(idata).__name__}")
    return idata


def _parameters(idata: az.InferenceData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``weights``, ``locs``, ``scales`` of shape ``(chains, draws, k)``, checked."""
    names = ("weights", "locs", "scales")
    if "posterior" not in idata.groups() or any(name not in idata.posterior for name in names):
        raise ValueError("`idata` must have a posterior with `weights`, `locs` and `scales`")
    weights, locs, scales = (np.asarray(idata.posterior[name].values) for name in names)
    if weights.ndim != 3 or not weights.shape == locs.shape == scales.shape:
        raise ValueError(
            "`weights`, `locs` and `scales` must all have shape (chains, draws, k), got "
            f"{weights.shape}, {locs.shape} and {scales.shape}"
        )
    return weights, locs, scales


def _degrees_of_freedom(idata: az.InferenceData, shape: tuple[int, ...]) -> np.ndarray | None:
    """``df`` broadcast to ``shape`` ``(chains, draws, k)`` if the posterior has it (Student-t components)."""
    if "df" not in idata.posterior:
        return None
    df = np.asarray(idata.posterior["df"].values, dtype=float)
    if df.shape == shape[:2]:
        df = df[..., None]
    if df.ndim != 3 or df.shape[:2] != shape[:2] or df.shape[2] not in (1, shape[2]):
        raise ValueError(f"`df` must have shape (chains, draws) or (chains, draws, k) = {shape}, got {df.shape}")
    if not np.all(np.isfinite(df) & (df > 0)):
        raise ValueError("`df` must be positive and finite in every draw")
    return np.broadcast_to(df, shape)


def tail_share(x: Any, threshold: float = 3.0) -> np.ndarray:
    r"""Share of points more than ``threshold`` standard deviations from the mean, per data set.

    .. math:: T(x) = \frac{1}{n} \#\{i : |x_i - \bar x| > c\, s_x\}

    A measure of tail mass. Its value for a Normal is 0.27% at :math:`c = 3`. A mixture of
    Normals can have less (well-separated components of equal spread: the components'
    separation inflates the standard deviation) or more (unequal spreads: a wide
    component makes the tails heavier); heavy-tailed data have more.

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
    *,
    seed: int = 0,
    n: int | None = None,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Replicated data sets, one per posterior draw, in a copy of ``idata``.

    NumPyro's ``Predictive`` substitutes each posterior draw into ``model`` (called with
    ``x=None`` and ``n`` points) and samples its observed site ``x``. Its result has one
    row per draw, shape ``(chains * draws, n)``; here it is reshaped to
    ``(chains, draws, n)`` and stored as the ``posterior_predictive`` group (dims
    ``chain, draw, point``), the layout ``az.plot_ppc``, ``az.plot_bpv`` and
    ``az.loo_pit`` read.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales`` of shape ``(chains, draws, k)``.
    model : callable
        The model that was fitted, default :func:`gmm_utils.marginal_model`.
    seed : int
        Seed of the replicated data.
    n : int, optional
        Points per replicated data set; default the size of ``observed_data.x``.
    **model_kwargs
        Further model arguments (``ordered=True``, priors...). ``k`` defaults to the
        number of components in the posterior. A posterior with ``df`` (a Student-t
        mixture) is substituted with its ``df`` and needs its own ``model``.

    Returns
    -------
    arviz.InferenceData
        A copy of ``idata`` with ``posterior_predictive.x`` of shape ``(chains, draws, n)``.

    Examples
    --------
    >>> idata = sample_posterior_predictive(idata, ordered=True)  # doctest: +SKIP
    >>> idata.posterior_predictive["x"].shape  # doctest: +SKIP
    (4, 500, 2500)
    """
    weights, locs, scales = _parameters(_check_idata(idata))
    df = _degrees_of_freedom(idata, weights.shape)
    if df is not None and model in (marginal_model, latent_model):
        raise ValueError(
            "the posterior has `df` (Student-t components): pass the model that was fitted, "
            "e.g. model=gmm_utils.student_t_mixture_model"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an integer, got {seed!r}")
    if n is None:
        if "observed_data" not in idata.groups() or "x" not in idata.observed_data:
            raise ValueError("give the number of points `n`: `idata` has no observed_data `x`")
        n = int(idata.observed_data["x"].size)
    n = positive_int("n", n)
    chains, draws, k = weights.shape
    model_kwargs.setdefault("k", k)
    posterior_samples = {
        name: value.reshape(chains * draws, k) for name, value in zip(("weights", "locs", "scales"), (weights, locs, scales))
    }
    if df is not None:
        df_draws = np.asarray(idata.posterior["df"].values)
        posterior_samples["df"] = df_draws.reshape(chains * draws, *df_draws.shape[2:])
    predictive = Predictive(model, posterior_samples=posterior_samples, return_sites=["x"])
    replicated = np.asarray(predictive(jax.random.PRNGKey(seed), x=None, n=n, **model_kwargs)["x"])
    extended = idata.copy()
    extended.add_groups(posterior_predictive={"x": replicated.reshape(chains, draws, n)}, dims={"x": ["point"]})
    return extended


class DensityBand(NamedTuple):
    """The posterior predictive density over a grid, with a pointwise credible band.

    Attributes
    ----------
    grid : numpy.ndarray, shape (m,)
        Where the density was evaluated.
    mean : numpy.ndarray, shape (m,)
        Posterior mean of the mixture density: the posterior predictive density of a new point.
    lower, upper : numpy.ndarray, shape (m,)
        Pointwise equal-tailed ``prob`` credible band of the density over the draws.
    prob : float
        The band's probability.
    """

    grid: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob: float


def _weighted_log_densities(
    weights: np.ndarray, locs: np.ndarray, scales: np.ndarray, x: np.ndarray, df: np.ndarray | None = None
) -> np.ndarray:
    """``log w_j + log p_j(x_i)``: shape ``(draws, n, k)`` from ``(draws, k)`` and ``(n,)``.

    ``p_j`` is ``N(mu_j, sigma_j)``, or with ``df`` (``(draws, k)``) the Student-t
    ``t_df(mu_j, sigma_j)``. The Gaussian terms are those of
    :meth:`gmm_utils.MixtureGaussian.component_log_probs`, in NumPy: these summaries run
    once per chapter on fixed arrays, where compiling a JAX function would cost more
    than it saves.
    """
    weights, locs, scales = (np.asarray(a, dtype=float)[:, None, :] for a in (weights, locs, scales))
    standardized = (x[None, :, None] - locs) / scales
    with np.errstate(divide="ignore"):  # a weight of exactly 0 gives log 0 = -inf, which is right
        log_weights = np.log(weights)
    if df is None:
        return log_weights - 0.5 * standardized**2 - np.log(scales) - 0.5 * np.log(2 * np.pi)
    df = np.asarray(df, dtype=float)[:, None, :]
    log_norm = gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * np.log(df * np.pi)
    return log_weights + log_norm - np.log(scales) - (df + 1) / 2 * np.log1p(standardized**2 / df)


def _draws_on(idata: az.InferenceData, function: Callable[..., np.ndarray], x: Any, name: str = "x") -> np.ndarray:
    """``function(weights, locs, scales, x)`` on blocks of draws: shape ``(chains, draws, ...)``.

    ``x`` defaults to the fit's observed data; ``name`` is the argument named in errors.
    """
    weights, locs, scales = _parameters(_check_idata(idata))
    df = _degrees_of_freedom(idata, weights.shape)
    if x is None:
        if "observed_data" not in idata.groups() or "x" not in idata.observed_data:
            raise ValueError(f"give the points `{name}`: `idata` has no observed_data `x`")
        x = idata.observed_data["x"].values
    x = finite_vector(name, x)
    if df is None:
        return map_over_draws(lambda w, m, s: function(w, m, s, x), weights, locs, scales)
    return map_over_draws(lambda w, m, s, d: function(w, m, s, x, d), weights, locs, scales, df)


def _log_density(weights: np.ndarray, locs: np.ndarray, scales: np.ndarray, x: np.ndarray, df: Any = None) -> np.ndarray:
    return logsumexp(_weighted_log_densities(weights, locs, scales, x, df), axis=-1)


def _cdf(weights: np.ndarray, locs: np.ndarray, scales: np.ndarray, x: np.ndarray, df: Any = None) -> np.ndarray:
    standardized = (x[None, :, None] - locs[:, None, :]) / scales[:, None, :]
    component_cdf = ndtr(standardized) if df is None else stdtr(np.asarray(df)[:, None, :], standardized)
    return np.sum(np.asarray(weights, dtype=float)[:, None, :] * component_cdf, axis=-1)


def _memberships(weights: np.ndarray, locs: np.ndarray, scales: np.ndarray, x: np.ndarray, df: Any = None) -> np.ndarray:
    return softmax(_weighted_log_densities(weights, locs, scales, x, df), axis=-1)


def predictive_density_band(idata: az.InferenceData, grid: Any, *, prob: float = 0.9) -> DensityBand:
    r"""The mixture density over ``grid`` for every draw, summarized as mean and band.

    For each posterior draw :math:`\theta^{(s)}` the density
    :math:`p(x \mid \theta^{(s)}) = \sum_j w_j \mathcal{N}(x \mid \mu_j, \sigma_j)` is exact;
    its mean over draws is the posterior predictive density of a new point, and its
    quantiles over draws give a credible band for the density *function*. The band shows
    parameter uncertainty only: it is not where a histogram of new data would fall.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales`` of shape ``(chains, draws, k)``.
    grid : array_like, shape (m,)
        Points at which to evaluate the density.
    prob : float
        Probability of the pointwise equal-tailed band.

    Returns
    -------
    DensityBand

    Examples
    --------
    >>> band = predictive_density_band(idata, np.linspace(-3, 7, 300))  # doctest: +SKIP
    >>> band.mean.shape, band.lower.shape  # doctest: +SKIP
    ((300,), (300,))
    """
    prob = _check_prob("prob", prob)
    grid = finite_vector("grid", grid)
    density = np.exp(_draws_on(idata, _log_density, grid, "grid"))
    density = density.reshape(-1, grid.shape[0])
    lower, upper = np.quantile(density, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
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
    """Draw a :class:`DensityBand`: the mean density as a line, the band filled.

    Parameters
    ----------
    band : DensityBand
        From :func:`predictive_density_band`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    color : matplotlib colour, optional
        Default the book's first component colour.
    label : str
        Legend label of the line; the band is labelled with its probability.

    Returns
    -------
    matplotlib.axes.Axes
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

    Examples
    --------
    >>> pit = predictive_cdf(idata)  # doctest: +SKIP
    >>> ecdf_band(pit).inside  # doctest: +SKIP
    True
    """
    cdf = _draws_on(idata, _cdf, x)
    return cdf.reshape(-1, cdf.shape[-1]).mean(axis=0)


class ECDFBand(NamedTuple):
    """The ECDF of values in [0, 1] and its simultaneous band under uniformity.

    Attributes
    ----------
    eval_points : numpy.ndarray, shape (m,)
        Where the ECDF is evaluated, fixed in advance (as the band's calibration needs).
    ecdf : numpy.ndarray, shape (m,)
        Share of values at or below each evaluation point.
    lower, upper : numpy.ndarray, shape (m,)
        The simultaneous ``prob`` band for the ECDF of ``n`` uniform values.
    inside : bool
        Whether the ECDF lies inside the band at every evaluation point.
    prob : float
        The band's probability.
    """

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
    ``prob``. Leaving it anywhere is evidence of misfit; the shape of the excursion says
    which (see chapter 5).

    Parameters
    ----------
    values : array_like, shape (n,)
        PIT or LOO-PIT values in [0, 1].
    prob : float
        Simultaneous coverage of the band.
    num_points : int
        Evaluation points ``1/m, 2/m, ..., 1`` with ``m = num_points``. The band takes
        seconds to compute for thousands of values and more points; it depends only on
        ``n``, ``num_points`` and ``prob``, so it is computed once per combination.

    Returns
    -------
    ECDFBand

    Examples
    --------
    >>> import numpy as np
    >>> ecdf_band(np.random.default_rng(0).uniform(size=1000)).inside
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
    """Draw an :class:`ECDFBand` as an ECDF-difference plot.

    The ECDF minus the uniform CDF, :math:`F_n(u) - u`, against :math:`u`, with the
    simultaneous band around zero, the layout of
    ``az.plot_ecdf(values, cdf=uniform.cdf, confidence_bands=True, difference=True)``
    without computing the band again.

    Parameters
    ----------
    band : ECDFBand
        From :func:`ecdf_band`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    color : matplotlib colour, optional
        Default the book's first component colour.
    label : str
        Legend label of the ECDF line.

    Returns
    -------
    matplotlib.axes.Axes
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
    that a statistic that is zero in the data and in almost every replication, such as
    a share of outliers, gets a p-value near 0.5, not 1. A p-value near 0 or 1 says the
    data are extreme among data sets the fitted model makes, in the direction ``T``
    measures. Values near 0.5 do not prove fit: a statistic
    the model fits directly (such as the standard deviation) has p-values near 0.5
    almost whatever the model.

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
        One row per statistic: ``observed`` :math:`T(x)`, ``replicated mean``, the
        ``lower`` and ``upper`` ends of the interval of :math:`T(x^{\text{rep}})`, and
        ``p_value``.

    Examples
    --------
    >>> statistics = {"1% quantile": lambda x: np.quantile(x, 0.01, axis=-1), "share beyond 3 sd": tail_share}
    >>> table = posterior_predictive_pvalues(idata, statistics)  # doctest: +SKIP
    >>> table["p_value"].between(0.01, 0.99).all()  # doctest: +SKIP
    True
    """
    idata = _check_idata(idata)
    if "posterior_predictive" not in idata.groups() or "x" not in idata.posterior_predictive:
        raise ValueError("`idata` has no posterior_predictive `x`: call sample_posterior_predictive first")
    if "observed_data" not in idata.groups() or "x" not in idata.observed_data:
        raise ValueError("`idata` has no observed_data `x`")
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
            raise ValueError(
                f"`statistics[{name!r}]` must map shape (n,) to a number and (draws, n) to (draws,), "
                f"got {t_data.shape} and {t_replicated.shape}"
            )
        t_observed = float(t_data)
        lower, upper = np.quantile(t_replicated, [(1 - prob) / 2, (1 + prob) / 2])
        rows[name] = {
            "observed": t_observed,
            "replicated mean": float(t_replicated.mean()),
            "lower": float(lower),
            "upper": float(upper),
            "p_value": float(np.mean(t_replicated < t_observed) + 0.5 * np.mean(t_replicated == t_observed)),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "statistic"
    return table


def membership_draws(idata: az.InferenceData, x: Any) -> np.ndarray:
    r"""Membership probabilities of points for every posterior draw.

    .. math::
        P(z = j \mid x, \theta^{(s)}) =
        \frac{w^{(s)}_j \mathcal{N}(x \mid \mu^{(s)}_j, \sigma^{(s)}_j)}
             {\sum_l w^{(s)}_l \mathcal{N}(x \mid \mu^{(s)}_l, \sigma^{(s)}_l)}

    Their mean over draws is :func:`gmm_utils.membership_probabilities`; their spread
    over draws is the uncertainty about that probability, which comes from the
    parameters.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales`` of shape ``(chains, draws, k)``,
        with labels that do not switch (``ordered=True``).
    x : array_like, shape (m,)
        The points.

    Returns
    -------
    numpy.ndarray, shape (chains, draws, m, k)
    """
    return _draws_on(idata, _memberships, x)


def assign_clusters(idata: az.InferenceData, x_new: Any, *, prob: float = 0.9) -> pd.DataFrame:
    r"""The most probable component of each new point, with the uncertainty of that call.

    For each point, the posterior membership probabilities
    :math:`\bar p_j = \frac1S \sum_s P(z = j \mid x, \theta^{(s)})` (see
    :func:`membership_draws`) give the assigned component :math:`\arg\max_j \bar p_j` and
    its probability. Two kinds of uncertainty are reported: the probability itself (a
    point between two components belongs to each with some probability, even with the
    parameters known), and its credible interval over the draws (how well the parameters
    pin that probability down). ``log_density`` is the log posterior predictive density
    of the point: membership probabilities always sum to one, even for a point that no
    component explains, so a very low density flags such a point.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ordered components (labels must mean the same in every draw).
    x_new : array_like, shape (m,)
        The new points.
    prob : float
        Probability of the equal-tailed interval over draws.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``x``, ``component`` (0-based, as the posterior's
        ``component`` coordinate), ``probability`` (its posterior mean membership
        probability), ``lower`` and ``upper`` (the interval of that probability over
        draws), ``log_density``, and ``p[j]``, the mean membership probability of every
        component ``j``.

    Examples
    --------
    >>> assign_clusters(idata, [-1.0, 0.3, 4.0])  # doctest: +SKIP
    """
    prob = _check_prob("prob", prob)
    x_new = finite_vector("x_new", x_new)
    draws = membership_draws(idata, x_new)
    draws = draws.reshape(-1, *draws.shape[2:])  # (draws, m, k)
    mean = draws.mean(axis=0)
    component = mean.argmax(axis=1)
    chosen = np.take_along_axis(draws, component[None, :, None], axis=2)[..., 0]  # (draws, m)
    lower, upper = np.quantile(chosen, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    log_density = _draws_on(idata, _log_density, x_new, "x_new")
    log_density = log_density.reshape(-1, x_new.shape[0])
    log_mean_density = np.logaddexp.reduce(log_density, axis=0) - np.log(log_density.shape[0])
    table = pd.DataFrame(
        {
            "x": x_new,
            "component": component,
            "probability": mean[np.arange(x_new.shape[0]), component],
            "lower": lower,
            "upper": upper,
            "log_density": log_mean_density,
        }
    )
    for j in range(mean.shape[1]):
        table[f"p[{j}]"] = mean[:, j]
    table.index.name = "point"
    return table


def elpd_by_chain(idata: az.InferenceData) -> np.ndarray:
    """PSIS-LOO ``elpd_loo`` estimated from each chain alone.

    If the chains explore different modes of a non-identified posterior (an
    over-complete mixture), their parameter R-hat fails; whether the *predictive* they
    imply agrees is what matters for model comparison, and this measures it.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with a ``log_likelihood`` group, e.g. from :func:`gmm_utils.run_nuts`.

    Returns
    -------
    numpy.ndarray, shape (chains,)

    Notes
    -----
    ArviZ warns when a Pareto shape ``k`` exceeds ``min(1 - 1/log10(S), 0.7)`` for ``S``
    draws, a lower bar for one chain's draws than for the whole fit's (0.58 for 250
    draws). The per-chain estimates only compare the chains with one another; check the
    reliability of ``elpd_loo`` on the whole fit (``az.loo(idata).pareto_k``). So this
    function does not repeat that warning for every chain.
    """
    idata = _check_idata(idata)
    if "log_likelihood" not in idata.groups():
        raise ValueError("`idata` has no log_likelihood group")
    chains = idata.posterior.sizes["chain"]
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Estimated shape parameter of Pareto", category=UserWarning
        )
        return np.array([az.loo(idata.sel(chain=[c])).elpd_loo for c in range(chains)])

