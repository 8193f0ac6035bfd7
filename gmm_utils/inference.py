"""Run MCMC with the book's defaults, return ArviZ ``InferenceData``, and summarize a fit.

``run_nuts`` is the book's one NUTS runner; ``run_mcmc`` runs any NumPyro kernel (the
Gibbs kernels of :mod:`gmm_utils.latent` use it) and returns the same ``InferenceData``;
``fit_summary`` condenses a fit into the numbers the book's comparison tables show, and
``compare_fits`` and ``speedup`` put several fits side by side.

Every run is timed as a whole, the wall time of ``MCMC.run`` (compilation included); runs
with parallel chains are also timed in two parts, the compilation and the *sampling after
compilation* (the compiled program running: initialization, warm-up and draws).
:func:`compile_then_run` does the split; the
book compares samplers by sampling time, which does not depend on whether a persistent
compilation cache already held the program.
"""

from __future__ import annotations

import time
import warnings
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.distributions import biject_to
from numpyro.infer import MCMC, NUTS, init_to_uniform
from numpyro.infer import log_likelihood as numpyro_log_likelihood
from numpyro.infer.mcmc import MCMCKernel

from ._validation import finite_vector, positive_int
from .distributions import MixtureGaussian
from .models import latent_model, marginal_model

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


def compile_then_run(chain_method: str, timings: dict[str, float]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``chain_method`` for ``numpyro.infer.MCMC`` that compiles first, then runs, timing each.

    NumPyro accepts a JAX transform as ``chain_method`` and applies it to the function that
    runs one chain (initialization, warm-up and draws). This one maps that function over
    the chains as the named method would (``"parallel"``: ``jax.pmap``, one chain per
    device; ``"vectorized"``: ``jax.vmap``; ``"sequential"``: ``jax.lax.map``), compiles
    the result ahead of time and only then runs it. Compiling (tracing, lowering, XLA's
    compilation or loading from the persistent cache) and sampling are therefore timed
    apart, exactly: no compilation happens while the sampling is timed.

    Parameters
    ----------
    chain_method : {"parallel", "vectorized", "sequential"}
        How the chains share the machine. ``"parallel"`` gives the same draws as NumPyro's
        own ``chain_method="parallel"``; the other two give valid chains, but not the
        draws of NumPyro's methods of the same name, which do not compile the chains as
        one program (:func:`run_mcmc` therefore uses this for parallel chains only).
    timings : dict
        Filled in place when the chains run: ``compile_time`` and ``run_time`` (wall
        seconds), ``compile_cpu_time`` and ``run_cpu_time`` (CPU seconds of this process,
        all its threads: less disturbed than wall time by other programs on the machine).

    Returns
    -------
    callable
        Pass it as ``MCMC(..., chain_method=...)`` (with ``num_chains > 1``: NumPyro runs a
        single chain without any chain method).

    Examples
    --------
    >>> timings = {}
    >>> mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=1000, num_chains=4,
    ...             chain_method=compile_then_run("parallel", timings))  # doctest: +SKIP
    >>> mcmc.run(jax.random.PRNGKey(0), x=data.x)  # doctest: +SKIP
    >>> timings  # doctest: +SKIP
    {'compile_time': 4.1, 'run_time': 2.3}
    """
    transforms = {
        "parallel": jax.pmap,
        "vectorized": lambda chain: jax.jit(jax.vmap(chain)),
        "sequential": lambda chain: jax.jit(lambda chains: jax.lax.map(chain, chains)),
    }
    if chain_method not in transforms:
        raise ValueError(f"`chain_method` must be 'parallel', 'vectorized' or 'sequential', got {chain_method!r}")

    def transform(one_chain: Callable[..., Any]) -> Callable[..., Any]:
        all_chains = transforms[chain_method](one_chain)

        def run(chains: Any) -> Any:
            start, start_cpu = time.perf_counter(), time.process_time()
            compiled = all_chains.lower(chains).compile()
            compiled_at, compiled_cpu = time.perf_counter(), time.process_time()
            result = jax.block_until_ready(compiled(chains))
            timings.update(
                compile_time=compiled_at - start,
                run_time=time.perf_counter() - compiled_at,
                compile_cpu_time=compiled_cpu - start_cpu,
                run_cpu_time=time.process_time() - compiled_cpu,
            )
            return result

        return run

    return transform


def map_over_draws(
    fn: Callable[..., Any], *arrays: Any, chunk_size: int = 256, leading_ndim: int | None = None
) -> np.ndarray:
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
    leading_ndim : int, optional
        How many leading axes index the draws, when the arrays' events differ in rank (a
        scalar ``df`` of shape ``(chains, draws)`` beside ``locs`` of shape
        ``(chains, draws, k)``: ``leading_ndim=2``). Default: all axes but the last.

    Returns
    -------
    numpy.ndarray, shape (*leading, ...)
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    leading = arrays[0].shape[:-1] if leading_ndim is None else arrays[0].shape[:leading_ndim]
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


def _base_model(model: Any) -> Any:
    """The function under NumPyro handlers (``config_enumerate``...) and ``functools.partial``."""
    seen = set()
    while id(model) not in seen:
        seen.add(id(model))
        inner = getattr(model, "fn", None) or getattr(model, "func", None) or getattr(model, "__wrapped__", None)
        if inner is None or not callable(inner):
            break
        model = inner
    return model


#: The book's Gaussian mixtures, whose pointwise marginal log-likelihood is :func:`mixture_log_likelihood`
#: whatever the formulation sampled (labels sampled, enumerated or summed out by hand).
GAUSSIAN_MIXTURE_MODELS = (marginal_model, latent_model)


class LogLikelihoodUnavailable(ValueError):
    """Raised by :func:`model_log_likelihood` when a model's pointwise marginal log-likelihood cannot be computed."""


def model_log_likelihood(
    model: Callable[..., Any],
    posterior: Mapping[str, Any],
    model_kwargs: Mapping[str, Any],
    *,
    site: str = "x",
    chunk_size: int = 256,
) -> np.ndarray:
    r"""Pointwise log-likelihood :math:`\log p(x_i \mid \theta^{(s)})` of any NumPyro model, draw by draw.

    NumPyro's own ``numpyro.infer.log_likelihood``: each posterior draw is substituted into
    ``model`` and the observed site's ``log_prob`` is evaluated at the data, so the result
    is the density the model itself samples (a Student-t mixture's for
    :func:`gmm_utils.student_t_mixture_model`). Compiled once per model and chunk size.

    Parameters
    ----------
    model : callable
        The NumPyro model that was fitted.
    posterior : mapping of str to array_like, shape (chains, draws, ...)
        Posterior draws of *every* unobserved sample site of the model.
    model_kwargs : mapping
        The model's arguments, with the observations (``x=...``).
    site : str
        The observed site.
    chunk_size : int
        Draws per compiled call (bounds the memory of ``(draws, n, k)`` intermediates).

    Returns
    -------
    numpy.ndarray, shape (chains, draws, n)

    Raises
    ------
    LogLikelihoodUnavailable
        If ``site`` is not observed, if its log density is not one value per point, or if
        the model has an unobserved sample site that the posterior lacks (labels
        excluded from the draws) or that is discrete or enumerated: then the
        log-likelihood given the draws is not the *marginal* one that PSIS-LOO needs.
    """
    if not posterior:
        raise LogLikelihoodUnavailable("`posterior` holds no draws")
    arrays = {name: np.asarray(value) for name, value in posterior.items()}
    leading = next(iter(arrays.values())).shape[:2]
    if len(leading) != 2 or any(value.shape[:2] != leading for value in arrays.values()):
        raise ValueError("every `posterior` array must have the leading shape (chains, draws)")
    chunk_size = positive_int("chunk_size", chunk_size)
    first = {name: value[0, 0] for name, value in arrays.items()}
    trace = handlers.trace(handlers.seed(handlers.substitute(model, data=first), 0)).get_trace(**model_kwargs)
    if site not in trace or trace[site]["type"] != "sample" or not trace[site]["is_observed"]:
        raise LogLikelihoodUnavailable(f"the model has no observed sample site {site!r}")
    for name, node in trace.items():
        if node["type"] != "sample" or node["is_observed"]:
            continue
        if name not in arrays:
            raise LogLikelihoodUnavailable(f"the posterior has no draws of the model's site {name!r}")
        if getattr(node["fn"], "is_discrete", False) or node.get("infer", {}).get("enumerate"):
            raise LogLikelihoodUnavailable(
                f"the model's site {name!r} is discrete: the log-likelihood given its draws is not the marginal one"
            )
    value = np.asarray(trace[site]["value"])
    shape = np.shape(trace[site]["fn"].log_prob(trace[site]["value"]))
    if value.ndim != 1 or shape != value.shape:
        raise LogLikelihoodUnavailable(
            f"site {site!r} must be a vector of points with one log density each, got value shape "
            f"{value.shape} and log density shape {shape}"
        )
    kwargs, names = dict(model_kwargs), list(arrays)

    @jax.jit
    def block(*values: jax.Array) -> jax.Array:
        return numpyro_log_likelihood(model, dict(zip(names, values)), parallel=True, **kwargs)[site]

    return map_over_draws(block, *arrays.values(), chunk_size=chunk_size, leading_ndim=2)


def to_inference_data(
    mcmc: MCMC,
    x: Any | None = None,
    *,
    log_likelihood: bool = True,
    wall_time: float | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """Convert a finished NumPyro ``MCMC`` run to ``arviz.InferenceData``.

    Groups: ``posterior`` (dims ``chain, draw, component``; sampled labels ``z`` get the
    dim ``point``), ``sample_stats`` (ArviZ's ``diverging``, ``energy``, ``n_steps``,
    ``tree_depth``, ``acceptance_rate``, ``step_size``, ``lp``, whichever the run
    recorded; for ``HMCGibbs`` kernels those of the HMC block, recorded as
    ``hmc_state.<field>``), ``observed_data`` and, if ``log_likelihood`` and ``x`` are
    given, ``log_likelihood``, the pointwise *marginal* log-likelihood of ``x``:

    * for the book's Gaussian mixtures (:data:`GAUSSIAN_MIXTURE_MODELS`, also wrapped in
      ``config_enumerate`` or sampled with their labels), :func:`mixture_log_likelihood`,
      whatever the formulation sampled;
    * for any other model, given its ``model_kwargs`` (:func:`run_mcmc` passes them),
      :func:`model_log_likelihood`, the density the model itself samples, e.g. the
      Student-t mixture's for :func:`gmm_utils.student_t_mixture_model`. Without
      ``model_kwargs``, or when that density is not per point or not marginal (discrete
      sites), the group is left out, with a warning if the posterior has the book's
      ``weights``, ``locs`` and ``scales``: a log-likelihood is never guessed.

    ``wall_time`` (seconds, compilation included) is stored in ``posterior.attrs["sampling_time"]``.
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
        if log_likelihood:
            pointwise = _pointwise_log_likelihood(mcmc, posterior, x, model_kwargs)
            if pointwise is not None:
                groups["log_likelihood"] = {"x": pointwise}
    idata = az.from_dict(**groups, dims=dims)
    if wall_time is not None:
        idata.posterior.attrs["sampling_time"] = float(wall_time)
    return idata


def _pointwise_log_likelihood(
    mcmc: MCMC, posterior: dict[str, np.ndarray], x: np.ndarray, model_kwargs: Mapping[str, Any] | None
) -> np.ndarray | None:
    """The ``log_likelihood`` group's array for :func:`to_inference_data`, or None (see there)."""
    book_sites = all(name in posterior for name in ("weights", "locs", "scales"))
    model = getattr(mcmc.sampler, "model", None)
    if _base_model(model) in GAUSSIAN_MIXTURE_MODELS and book_sites:
        # jitted: about ten times faster than eager op-by-op dispatch here
        return map_over_draws(
            jax.jit(lambda w, m, s: mixture_log_likelihood(w, m, s, x)),
            posterior["weights"],
            posterior["locs"],
            posterior["scales"],
        )
    reason = "its arguments `model_kwargs` were not given"
    if model is not None and model_kwargs is not None:
        kwargs = {**model_kwargs, "x": x}
        try:
            return model_log_likelihood(model, posterior, kwargs)
        except LogLikelihoodUnavailable as error:
            reason = str(error)
    if book_sites:
        warnings.warn(
            f"no log_likelihood group stored: the pointwise log-likelihood of model "
            f"{getattr(_base_model(model), '__name__', model)!r} cannot be computed ({reason}); "
            "pass log_likelihood=False to silence this",
            stacklevel=3,
        )
    return None


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
        kernel's class name), ``num_chains``, ``chain_method``, and, timed apart by
        :func:`compile_then_run`, ``compile_time`` (tracing and compiling, or loading from
        the persistent cache) and ``run_time`` (sampling after compilation: initialization,
        warm-up and draws), in wall seconds, and the same two in CPU seconds
        (``compile_cpu_time``, ``run_cpu_time``). ``sampling_time`` is the wall time of the
        whole ``MCMC.run``, compilation included. The two parts are measured for chains run
        in parallel (the book's set-up: one device per chain); for one chain, and for
        NumPyro's ``"sequential"`` and ``"vectorized"`` methods, whose draws the book keeps
        exactly as NumPyro makes them, they are NaN.
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

    if chain_method == "parallel" and jax.local_device_count() < num_chains:
        warnings.warn(  # as NumPyro does
            f"There are not enough devices to run parallel chains: expected {num_chains} but got "
            f"{jax.local_device_count()}. Chains will be drawn sequentially.",
            stacklevel=2,
        )
        chain_method = "sequential"
    timings = dict.fromkeys(("compile_time", "run_time", "compile_cpu_time", "run_cpu_time"), float("nan"))
    # Parallel chains compiled ahead give NumPyro's own draws, timed in two parts. NumPyro's
    # sequential and vectorized methods are kept as they are (compiled ahead, their draws
    # would differ from NumPyro's), and so is a single chain: those runs are timed whole.
    split = chain_method == "parallel" and num_chains > 1
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=compile_then_run(chain_method, timings) if split else chain_method,
        progress_bar=progress_bar and not split,
    )
    fields = tuple(extra_fields) + tuple(f"~z.{site}" for site in exclude_sites)
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), extra_fields=fields, **model_kwargs)
    jax.block_until_ready(mcmc.get_samples(group_by_chain=True))  # no reshaping to time
    wall_time = time.perf_counter() - start
    idata = to_inference_data(
        mcmc, model_kwargs.get("x"), log_likelihood=log_likelihood, wall_time=wall_time, model_kwargs=model_kwargs
    )
    idata.posterior.attrs.update(
        sampler=type(kernel).__name__, num_chains=num_chains, chain_method=chain_method, **timings
    )
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
        Store the pointwise marginal log-likelihood of ``x`` (needed by LOO): the
        Gaussian mixture's for the book's two Gaussian models, and for any other model
        the density the model samples, computed by NumPyro (:func:`model_log_likelihood`;
        see :func:`to_inference_data`).
    init_strategy : callable, optional
        Where chains start, a NumPyro init strategy such as :func:`init_to_data`.
        Default NumPyro's ``init_to_uniform``.
    **model_kwargs
        Passed to the model, e.g. ``x=data.x, k=3, ordered=True``.

    Returns
    -------
    arviz.InferenceData
        See :func:`to_inference_data` and :func:`run_mcmc`.
        ``idata.posterior.attrs["sampling_time"]`` holds the wall time in seconds,
        compilation included; ``compile_time`` and ``run_time`` split it into compiling and
        sampling after compilation (for two or more chains run in parallel).

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
        ``wall_time`` (seconds of the whole ``MCMC.run``, from
        ``posterior.attrs["sampling_time"]``, compilation included; NaN if absent),
        ``compile_time`` and ``run_time`` (its two parts, timed apart by
        :func:`compile_then_run`: compiling or loading from the cache, and sampling after
        compilation, that is initialization, warm-up and draws; NaN if not measured),
        ``min_ess_bulk`` and ``min_ess_tail`` (the smallest over all scalar components of
        the variables, ArviZ's rank-normalized ESS), ``ess_per_second``
        (``min_ess_bulk / wall_time``), ``ess_per_run_second`` (``min_ess_bulk /
        run_time``: what the book compares, since it does not depend on the compilation
        cache), ``max_rhat`` (ArviZ's rank-normalized split R-hat; NaN propagates, it is
        never skipped) and ``divergences`` (total over chains and draws; NaN if the
        sampler does not record them).

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
    wall_time, compile_time, run_time = (
        float(posterior.attrs.get(name, np.nan)) for name in ("sampling_time", "compile_time", "run_time")
    )
    stats = getattr(idata, "sample_stats", None)
    if stats is not None and "diverging" in stats:
        divergences: float = int(np.sum(stats["diverging"].values))
    else:
        divergences = float("nan")
    return {
        "wall_time": wall_time,
        "compile_time": compile_time,
        "run_time": run_time,
        "min_ess_bulk": ess_bulk,
        "min_ess_tail": ess_tail,
        "ess_per_second": ess_bulk / wall_time,
        "ess_per_run_second": ess_bulk / run_time,
        "max_rhat": max_rhat,
        "divergences": divergences,
    }


#: Column headers of :func:`compare_fits`, one per :func:`fit_summary` key it shows.
COMPARISON_COLUMNS = {
    "compile_time": "compile s",
    "run_time": "sampling s (after compilation)",
    "min_ess_bulk": "min bulk ESS",
    "min_ess_tail": "min tail ESS",
    "ess_per_run_second": "bulk ESS / s of sampling",
    "max_rhat": "max R-hat",
    "divergences": "divergences",
}


def compare_fits(summaries: Mapping[Any, Mapping[str, float]]) -> Any:
    """The book's side-by-side table of fits, one row per fit, timed after compilation.

    Chapters 2 and 3 build their comparison tables with this one function, so both show
    the same columns computed the same way: seconds of compilation and of sampling after
    compilation (see :func:`compile_then_run`), the smallest bulk and tail ESS, bulk ESS
    per second of sampling, the largest R-hat and the divergences.

    Parameters
    ----------
    summaries : mapping
        Row label (a string or a tuple, for a two-level index) -> :func:`fit_summary` of
        the fit (or a dict with the same keys, e.g. a projected row).

    Returns
    -------
    pandas.DataFrame
        Columns named by :data:`COMPARISON_COLUMNS`.
    """
    import pandas as pd

    if not summaries:
        raise ValueError("`summaries` must hold at least one fit")
    table = pd.DataFrame({label: dict(summary) for label, summary in summaries.items()}).T
    missing = [key for key in COMPARISON_COLUMNS if key not in table.columns]
    if missing:
        raise ValueError(f"each summary needs the keys of fit_summary, missing {missing}")
    return table[list(COMPARISON_COLUMNS)].rename(columns=COMPARISON_COLUMNS).astype(float)


def speedup(faster: Mapping[str, float], slower: Mapping[str, float]) -> float:
    """``faster``'s effective draws per second of sampling divided by ``slower``'s.

    The ratio of ``ess_per_run_second`` (:func:`fit_summary`): bulk ESS of the worst
    parameter per second of sampling after compilation. Compilation is left out on both
    sides, so the ratio does not depend on which programs a compilation cache held.
    """
    values = [float(summary["ess_per_run_second"]) for summary in (faster, slower)]
    if not all(np.isfinite(value) and value > 0 for value in values):
        raise ValueError(f"both fits need a measured, positive `ess_per_run_second`, got {values}")
    return values[0] / values[1]
