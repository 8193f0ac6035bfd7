"""Run MCMC with the book's defaults, return ArviZ ``InferenceData``, and summarize a fit.

``run_nuts`` is the book's one NUTS runner; ``run_mcmc`` runs any NumPyro kernel (the
Gibbs kernels of :mod:`gmm_utils.latent` use it) and returns the same ``InferenceData``;
``fit_summary`` condenses a fit into the numbers the book's comparison tables show.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable, Sequence

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import biject_to
from numpyro.infer import MCMC, NUTS, init_to_uniform
from numpyro.infer.mcmc import MCMCKernel

from ._validation import finite_vector, positive_int
from .distributions import MixtureGaussian

#: Extra per-draw statistics kept from NUTS (ArviZ names them in ``sample_stats``).
NUTS_EXTRA_FIELDS = ("num_steps", "energy", "diverging", "accept_prob", "adapt_state.step_size")

#: ArviZ dims of the book's sample sites (see :mod:`gmm_utils.models`).
MIXTURE_DIMS = {"weights": ["component"], "locs": ["component"], "scales": ["component"], "x": ["point"], "z": ["point"]}

#: NumPyro's name of a per-draw statistic -> ArviZ's name in ``sample_stats``.
_STAT_NAMES = {
    "diverging": "diverging",
    "energy": "energy",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "adapt_state.step_size": "step_size",
    "potential_energy": "lp",
}

#: Prefix of the statistics of the HMC block inside NumPyro's ``HMCGibbs`` states.
_HMC_BLOCK_PREFIX = "hmc_state."


def choose_chain_method(num_chains: int) -> str:
    """``"parallel"`` when there is one JAX device per chain, else ``"vectorized"``."""
    return "parallel" if jax.local_device_count() >= num_chains else "vectorized"


def map_over_draws(fn: Callable[..., Any], *arrays: Any, chunk_size: int = 256) -> np.ndarray:
    """Apply ``fn`` to blocks of posterior draws and stack the results.

    Posterior arrays have leading axes ``(chains, draws)`` (or any leading shape); this
    flattens them, calls ``fn`` on at most ``chunk_size`` draws at a time (which bounds
    the memory of ``(draws, n, k)`` intermediates) and restores the leading shape.

    Parameters
    ----------
    fn : callable
        Maps arrays of shape ``(m, ...)`` to one array of shape ``(m, ...)``.
    *arrays : array_like, shape (*leading, ...)
        Arrays with the same leading shape, e.g. ``weights``, ``locs``, ``scales`` of shape
        ``(chains, draws, k)``: the leading shape is everything but the last axis.
    chunk_size : int
        Draws per call.

    Returns
    -------
    numpy.ndarray, shape (*leading, ...)
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    leading = arrays[0].shape[:-1]
    flat = [a.reshape((-1,) + a.shape[len(leading):]) for a in arrays]
    total = flat[0].shape[0]
    blocks = [np.asarray(fn(*(a[start : start + chunk_size] for a in flat))) for start in range(0, total, chunk_size)]
    result = np.concatenate(blocks, axis=0)
    return result.reshape(leading + result.shape[1:])


def mixture_log_likelihood(weights: Any, locs: Any, scales: Any, x: Any) -> jax.Array:
    r"""Pointwise marginal log-likelihood :math:`\log \sum_j w_j \mathcal{N}(x_i \mid \mu_j, \sigma_j)`.

    Parameters
    ----------
    weights, locs, scales : array_like, shape (..., k)
        Posterior draws, e.g. ``(chains, draws, k)``.
    x : array_like, shape (n,)
        The observations.

    Returns
    -------
    jax.Array, shape (..., n)
        One log density per draw and point: what PSIS-LOO needs. It does not depend on
        how the model treated the labels, so it is the same for the latent and the
        marginalized formulations. Computed by :class:`gmm_utils.MixtureGaussian`, so
        it is exactly the density the marginal model samples.

    Examples
    --------
    >>> mixture_log_likelihood([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0], [0.0]).shape
    (1,)
    """
    x = jnp.asarray(x)
    weights, locs, scales = (jnp.asarray(a)[..., None, :] for a in (weights, locs, scales))
    return MixtureGaussian(locs, scales, weights).log_prob(x)


def _init_near(site: dict | None = None, *, values: dict[str, np.ndarray], radius: float) -> Any:
    if site is None:
        return partial(_init_near, values=values, radius=radius)
    if site["type"] == "sample" and not site["is_observed"] and site["name"] in values:
        transform = biject_to(site["fn"].support)
        center = transform.inv(jnp.asarray(values[site["name"]]))
        if radius == 0:
            return transform(center)
        noise = dist.Uniform(-radius, radius)(rng_key=site["kwargs"].get("rng_key"), sample_shape=jnp.shape(center))
        return transform(center + noise)
    return init_to_uniform(site)


def init_to_data(
    x: Any,
    k: int,
    *,
    radius: float = 0.25,
    site_names: tuple[str, str, str] = ("weights", "locs", "scales"),
) -> Callable[..., Any]:
    """A NumPyro init strategy: start each chain near a quantile split of the data.

    The sorted data are cut into ``k`` equal-count groups; the start is ``locs`` = the
    group means, ``scales`` = the group standard deviations and equal ``weights``, moved
    by independent ``Uniform(-radius, radius)`` noise in the sampler's unconstrained
    coordinates, different for each chain (like NumPyro's ``init_to_uniform``, which
    draws in ``(-2, 2)`` around zero). Other sites fall back to ``init_to_uniform``.

    Mixture posteriors have minor modes (two clusters merged into one wide component, a
    component left empty) in which a chain started far away can stay for good, whatever
    the sampler; starting near the data's quantiles avoids them, while the jitter keeps
    the chains' starts distinct.

    Parameters
    ----------
    x : array_like, shape (n,)
        The observations.
    k : int
        Number of components; the model's sites ``weights``, ``locs``, ``scales`` are ``(k,)``.
    radius : float
        Half-width of the jitter in unconstrained coordinates; ``0`` starts every chain at
        the same point.
    site_names : tuple of str
        The model's names of the weights, means and standard deviations; the book's by
        default (the seed notebook's model calls them ``prob_cluster``, ``loc``, ``scale``).

    Returns
    -------
    callable
        Pass it as ``init_strategy`` to :func:`run_nuts` or to ``numpyro.infer.NUTS``.

    Examples
    --------
    >>> strategy = init_to_data(data.x, 3)  # doctest: +SKIP
    >>> idata = run_nuts(marginal_model, x=data.x, k=3, init_strategy=strategy)  # doctest: +SKIP
    """
    x = np.sort(finite_vector("x", x))
    k = positive_int("k", k)
    if x.size < 2 * k:
        raise ValueError(f"`x` needs at least 2 points per component (2 * k = {2 * k}), got {x.size}")
    if not (isinstance(radius, (int, float)) and radius >= 0):
        raise ValueError(f"`radius` must be a non-negative number, got {radius!r}")
    if not (isinstance(site_names, tuple) and len(site_names) == 3 and all(isinstance(n, str) for n in site_names)):
        raise TypeError(f"`site_names` must be a tuple of three site names, got {site_names!r}")
    groups = np.array_split(x, k)
    spread = max(float(np.std(x)), 1e-6)
    weights = np.full(k, 1.0 / k)
    locs = np.array([group.mean() for group in groups])
    scales = np.array([max(float(group.std()), 1e-3 * spread) for group in groups])
    values = dict(zip(site_names, (weights, locs, scales)))
    return partial(_init_near, values=values, radius=float(radius))


def _stat_name(field: str) -> str | None:
    """ArviZ's name for a NumPyro extra field, with or without the ``hmc_state.`` prefix."""
    if field.startswith(_HMC_BLOCK_PREFIX):
        field = field[len(_HMC_BLOCK_PREFIX) :]
    return _STAT_NAMES.get(field)


def to_inference_data(
    mcmc: MCMC,
    x: Any | None = None,
    *,
    log_likelihood: bool = True,
    wall_time: float | None = None,
) -> az.InferenceData:
    """Convert a finished NumPyro ``MCMC`` run to ``arviz.InferenceData``.

    Groups: ``posterior`` (dims ``chain, draw, component``; sampled labels ``z`` get the
    dim ``point``), ``sample_stats`` (ArviZ's ``diverging``, ``energy``, ``n_steps``,
    ``tree_depth``, ``acceptance_rate``, ``step_size``, ``lp``, whichever the run
    recorded; for ``HMCGibbs`` kernels those of the HMC block, recorded as
    ``hmc_state.<field>``), ``observed_data`` and, if ``log_likelihood`` and ``x`` are
    given, ``log_likelihood`` with the pointwise *marginal* log-likelihood of ``x`` (see
    :func:`mixture_log_likelihood`), whatever the formulation sampled. ``wall_time``
    (seconds) is stored in ``posterior.attrs["sampling_time"]``.
    """
    samples = mcmc.get_samples(group_by_chain=True)
    posterior = {name: np.asarray(value) for name, value in samples.items()}
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats: dict[str, np.ndarray] = {}
    for field, value in extra.items():
        name = _stat_name(field)
        if name is not None:
            stats[name] = np.asarray(value)
    if "lp" in stats:
        stats["lp"] = -stats["lp"]  # NumPyro records the potential energy, -log density
    if "n_steps" in stats:
        # NUTS doubles its trajectory: depth d allows up to 2**d - 1 leapfrog steps.
        stats["tree_depth"] = np.ceil(np.log2(stats["n_steps"] + 1)).astype(int)

    dims = {name: dims for name, dims in MIXTURE_DIMS.items() if name in posterior or name == "x"}
    groups: dict[str, Any] = {"posterior": posterior, "sample_stats": stats}
    if x is not None:
        x = np.asarray(x)
        groups["observed_data"] = {"x": x}
        if log_likelihood and all(name in posterior for name in ("weights", "locs", "scales")):
            groups["log_likelihood"] = {
                # jitted: about ten times faster than eager op-by-op dispatch here
                "x": map_over_draws(
                    jax.jit(lambda w, m, s: mixture_log_likelihood(w, m, s, x)),
                    posterior["weights"],
                    posterior["locs"],
                    posterior["scales"],
                )
            }
    idata = az.from_dict(**groups, dims=dims)
    if wall_time is not None:
        idata.posterior.attrs["sampling_time"] = float(wall_time)
    return idata


def run_mcmc(
    kernel: MCMCKernel,
    *,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    chain_method: str | None = None,
    progress_bar: bool = False,
    log_likelihood: bool = True,
    extra_fields: Sequence[str] = NUTS_EXTRA_FIELDS + ("potential_energy",),
    exclude_sites: Sequence[str] = (),
    **model_kwargs: Any,
) -> az.InferenceData:
    """Run any NumPyro MCMC kernel with the book's defaults; return ``arviz.InferenceData``.

    :func:`run_nuts` builds a ``NUTS`` kernel and calls this; the runners of
    :mod:`gmm_utils.latent` call it with ``HMCGibbs`` and ``DiscreteHMCGibbs`` kernels,
    so every fit in the book comes back in the same form.

    Parameters
    ----------
    kernel : numpyro.infer.mcmc.MCMCKernel
        E.g. ``NUTS(model)`` or ``HMCGibbs(NUTS(model), gibbs_fn, ["z"])``.
    num_chains, num_warmup, num_samples, seed, chain_method, progress_bar, log_likelihood
        As in :func:`run_nuts`.
    extra_fields : sequence of str
        Per-draw statistics to record (NumPyro names, see :data:`NUTS_EXTRA_FIELDS`;
        prefix them with ``hmc_state.`` for ``HMCGibbs`` kernels).
    exclude_sites : sequence of str
        Sample sites not to store, e.g. ``("z",)`` to drop ``(chains, draws, n)`` labels.
    **model_kwargs
        Passed to the model, e.g. ``x=data.x, k=3``.

    Returns
    -------
    arviz.InferenceData
        See :func:`to_inference_data`; ``posterior.attrs`` also records ``sampler`` (the
        kernel's class name), ``num_chains`` and ``chain_method``.
    """
    num_chains = positive_int("num_chains", num_chains)
    num_warmup = positive_int("num_warmup", num_warmup)
    num_samples = positive_int("num_samples", num_samples)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an integer, got {seed!r}")
    if chain_method is None:
        chain_method = choose_chain_method(num_chains)
    if chain_method not in ("parallel", "vectorized", "sequential"):
        raise ValueError(f"`chain_method` must be 'parallel', 'vectorized' or 'sequential', got {chain_method!r}")
    x = model_kwargs.get("x")
    if x is not None and isinstance(x, (list, tuple, np.ndarray)):
        model_kwargs["x"] = finite_vector("x", x)

    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress_bar,
    )
    fields = tuple(extra_fields) + tuple(f"~z.{site}" for site in exclude_sites)
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), extra_fields=fields, **model_kwargs)
    jax.block_until_ready(mcmc.get_samples(group_by_chain=True))  # no reshaping to time
    wall_time = time.perf_counter() - start
    idata = to_inference_data(mcmc, model_kwargs.get("x"), log_likelihood=log_likelihood, wall_time=wall_time)
    idata.posterior.attrs.update(sampler=type(kernel).__name__, num_chains=num_chains, chain_method=chain_method)
    return idata


def nuts_kernel(
    model: Callable[..., Any],
    *,
    target_accept_prob: float = 0.8,
    dense_mass: bool = True,
    max_tree_depth: int = 10,
    init_strategy: Callable[..., Any] | None = None,
) -> NUTS:
    """The book's NUTS kernel for ``model``: the one :func:`run_nuts`, the Gibbs runners of
    :mod:`gmm_utils.latent` and :func:`gmm_utils.timed_fit` all sample with.

    Arguments as in :func:`run_nuts`; ``init_strategy=None`` means NumPyro's ``init_to_uniform``.
    """
    if not 0.0 < target_accept_prob < 1.0:
        raise ValueError(f"`target_accept_prob` must lie in (0, 1), got {target_accept_prob!r}")
    return NUTS(
        model,
        target_accept_prob=target_accept_prob,
        dense_mass=dense_mass,
        max_tree_depth=max_tree_depth,
        init_strategy=init_to_uniform if init_strategy is None else init_strategy,
    )


def run_nuts(
    model: Callable[..., Any],
    *,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    target_accept_prob: float = 0.8,
    dense_mass: bool = True,
    max_tree_depth: int = 10,
    chain_method: str | None = None,
    progress_bar: bool = False,
    log_likelihood: bool = True,
    init_strategy: Callable[..., Any] | None = None,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Sample ``model`` with NUTS and return ``arviz.InferenceData``.

    Parameters
    ----------
    model : callable
        A NumPyro model, e.g. :func:`gmm_utils.marginal_model`, or a model with
        enumerated discrete sites (``config_enumerate(gmm_utils.latent_model)``), which
        NUTS then sums out.
    num_chains, num_warmup, num_samples : int
        Chains, warm-up iterations and kept draws per chain.
    seed : int
        Seed of the ``jax.random.PRNGKey``; the same seed gives the same draws.
    target_accept_prob, dense_mass, max_tree_depth
        Passed to ``numpyro.infer.NUTS``. ``dense_mass=True`` (the default) adapts a full
        mass matrix during warm-up: it learns the posterior's correlations (means, weights
        and standard deviations of a mixture are correlated), which takes NUTS from about
        15 to about 6.5 leapfrog steps per draw on the book's data (chapter 7).
    chain_method : {"parallel", "vectorized", "sequential"}, optional
        Default: ``"parallel"`` when JAX has a device per chain (see
        :func:`gmm_utils.set_host_device_count`), else ``"vectorized"``.
    progress_bar : bool
        Off by default, so rendered pages carry no progress-bar debris.
    log_likelihood : bool
        Store the pointwise marginal log-likelihood of ``x`` (needed by LOO).
    init_strategy : callable, optional
        Where chains start, a NumPyro init strategy such as :func:`init_to_data`.
        Default NumPyro's ``init_to_uniform``.
    **model_kwargs
        Passed to the model, e.g. ``x=data.x, k=3, ordered=True``.

    Returns
    -------
    arviz.InferenceData
        See :func:`to_inference_data`. ``idata.posterior.attrs["sampling_time"]`` holds
        the wall time in seconds, compilation included.

    Examples
    --------
    >>> idata = run_nuts(marginal_model, x=data.x, k=3, ordered=True)  # doctest: +SKIP
    >>> idata.posterior["locs"].shape  # doctest: +SKIP
    (4, 1000, 3)
    """
    kernel = nuts_kernel(
        model,
        target_accept_prob=target_accept_prob,
        dense_mass=dense_mass,
        max_tree_depth=max_tree_depth,
        init_strategy=init_strategy,
    )
    idata = run_mcmc(
        kernel,
        num_chains=num_chains,
        num_warmup=num_warmup,
        num_samples=num_samples,
        seed=seed,
        chain_method=chain_method,
        progress_bar=progress_bar,
        log_likelihood=log_likelihood,
        **model_kwargs,
    )
    # What the diagnostics need to know about the sampler's settings (check_convergence
    # reads max_tree_depth to count saturated trajectories).
    idata.sample_stats.attrs.update(
        max_tree_depth=int(max_tree_depth),
        target_accept_prob=float(target_accept_prob),
        dense_mass=bool(dense_mass),
    )
    return idata


def fit_summary(idata: az.InferenceData, var_names: Sequence[str] | None = None) -> dict[str, float]:
    """The numbers by which the book compares fits: time, efficiency, convergence.

    Parameters
    ----------
    idata : arviz.InferenceData
        Any fit with a ``posterior`` group, e.g. from :func:`run_nuts`.
    var_names : sequence of str, optional
        Posterior variables to summarize. Default: every floating-point variable
        (discrete labels such as ``z`` are left out: ESS and R-hat are not defined
        for them in the usual sense).

    Returns
    -------
    dict
        ``wall_time`` (seconds, from ``posterior.attrs["sampling_time"]``, compilation
        included; NaN if absent), ``min_ess_bulk`` and ``min_ess_tail`` (the smallest
        over all scalar components of the variables, ArviZ's rank-normalized ESS),
        ``ess_per_second`` (``min_ess_bulk / wall_time``), ``max_rhat`` (ArviZ's
        rank-normalized split R-hat; NaN propagates, it is never skipped) and
        ``divergences`` (total over chains and draws; NaN if the sampler does not record
        them).

    Examples
    --------
    >>> import pandas as pd
    >>> pd.DataFrame({"NUTS": fit_summary(idata)}).T  # doctest: +SKIP
    """
    if not hasattr(idata, "posterior"):
        raise ValueError("`idata` must have a posterior group")
    posterior = idata.posterior
    if var_names is None:
        var_names = [name for name, value in posterior.data_vars.items() if np.issubdtype(value.dtype, np.floating)]
    var_names = list(var_names)
    missing = [name for name in var_names if name not in posterior.data_vars]
    if missing or not var_names:
        raise ValueError(f"`var_names` must name posterior variables, got {var_names} (missing {missing})")

    def extreme(dataset: Any, reduce: Callable[[np.ndarray], Any]) -> float:
        return float(reduce(np.concatenate([np.ravel(dataset[name].values) for name in var_names])))

    ess_bulk = extreme(az.ess(idata, var_names=var_names, method="bulk"), np.min)
    ess_tail = extreme(az.ess(idata, var_names=var_names, method="tail"), np.min)
    max_rhat = extreme(az.rhat(idata, var_names=var_names), np.max)
    wall_time = float(posterior.attrs.get("sampling_time", np.nan))
    stats = getattr(idata, "sample_stats", None)
    if stats is not None and "diverging" in stats:
        divergences: float = int(np.sum(stats["diverging"].values))
    else:
        divergences = float("nan")
    return {
        "wall_time": wall_time,
        "min_ess_bulk": ess_bulk,
        "min_ess_tail": ess_tail,
        "ess_per_second": ess_bulk / wall_time,
        "max_rhat": max_rhat,
        "divergences": divergences,
    }
