"""Run MCMC with the book's defaults, return ArviZ ``InferenceData``, and summarize a fit.

``run_nuts`` and ``run_mcmc`` (any NumPyro kernel) take the model's arguments as one mapping and
the sampler options, declared once in :class:`SamplerOptions`, as keywords; ``fit_summary``,
``compare_fits`` and ``speedup`` put fits side by side.
"""

from __future__ import annotations

import dataclasses
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

from ._validation import finite_matrix, finite_vector, positive_int
from .distributions import mixture_log_likelihood
from .models import latent_model, marginal_model, stick_breaking_model
from .multivariate import multivariate_component_log_densities, multivariate_mixture_model

#: Per-draw statistics kept from NUTS: NumPyro's name -> ArviZ's name in ``sample_stats``.
NUTS_EXTRA_FIELDS = {
    "num_steps": "n_steps", "energy": "energy", "diverging": "diverging", "accept_prob": "acceptance_rate",
    "adapt_state.step_size": "step_size", "potential_energy": "lp",
}
#: ArviZ dims of the book's sample sites (see :mod:`gmm_utils.models`).
MIXTURE_DIMS = {"weights": ["component"], "locs": ["component"], "scales": ["component"], "x": ["point"], "z": ["point"]}
CHAIN_METHODS = ("parallel", "vectorized", "sequential")


def choose_chain_method(num_chains: int) -> str:
    """The book's one default: ``"parallel"`` with a JAX device per chain, else ``"sequential"``."""
    return "parallel" if jax.local_device_count() >= num_chains else "sequential"


@dataclasses.dataclass(frozen=True)
class SamplerOptions:
    """Every sampler option of the book's runners, declared once.

    :func:`run_nuts`, :func:`run_mcmc`, the runners of :mod:`gmm_utils.latent` and
    :func:`gmm_utils.timed_fit` take these as keywords and check them here (an unknown name is a
    ``TypeError`` naming it). ``chain_method=None`` is :func:`choose_chain_method`'s (see
    :attr:`method`); ``log_likelihood`` stores the pointwise one, for LOO
    (:func:`to_inference_data`); the last four shape the NUTS kernel (:func:`nuts_kernel`):
    ``dense_mass=True`` learns the correlations of a mixture's parameters (chapter 12).

    Examples
    --------
    >>> SamplerOptions(num_chains=2, seed=1).num_warmup
    1000
    >>> SamplerOptions(num_chain=2)
    Traceback (most recent call last):
    TypeError: SamplerOptions.__init__() got an unexpected keyword argument 'num_chain'
    """

    num_chains: int = 4
    num_warmup: int = 1000  # warm-up iterations per chain
    num_samples: int = 1000  # kept draws per chain
    seed: int = 0  # of the jax.random.PRNGKey: the same seed gives the same draws
    chain_method: str | None = None  # one of CHAIN_METHODS; None: choose_chain_method
    progress_bar: bool = False  # no progress-bar debris on rendered pages
    log_likelihood: bool = True
    target_accept_prob: float = 0.8
    dense_mass: bool = True
    max_tree_depth: int = 10
    init_strategy: Callable[..., Any] | None = None  # e.g. init_to_data; None: NumPyro's init_to_uniform

    def __post_init__(self) -> None:
        for name in ("num_chains", "num_warmup", "num_samples", "max_tree_depth"):
            positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise TypeError(f"`seed` must be an integer, got {self.seed!r}")
        if self.chain_method not in (None, *CHAIN_METHODS):
            raise ValueError(f"`chain_method` must be one of {CHAIN_METHODS} or None, got {self.chain_method!r}")
        if not 0.0 < self.target_accept_prob < 1.0:
            raise ValueError(f"`target_accept_prob` must lie in (0, 1), got {self.target_accept_prob!r}")

    @property
    def method(self) -> str:
        """``chain_method``, or :func:`choose_chain_method` when it is None."""
        return self.chain_method or choose_chain_method(self.num_chains)


def compile_then_run(chain_method: str, timings: dict[str, float]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``chain_method`` for ``numpyro.infer.MCMC`` that compiles first, then runs, timing each.

    NumPyro applies a JAX transform given as ``chain_method`` to the function that runs one chain
    (initialization, warm-up and draws). This one maps it over the chains as the named method
    would (``jax.pmap``, ``jax.vmap``, ``jax.lax.map``), compiles the result ahead of time, then
    runs it, and fills ``timings``: ``compile_time``, ``run_time`` (wall seconds) and
    ``compile_cpu_time``, ``run_cpu_time`` (CPU seconds). ``"parallel"`` gives NumPyro's own
    draws, the other two not (so :func:`run_mcmc` uses it for parallel chains only). Pass the
    result as ``MCMC(..., chain_method=...)`` with ``num_chains > 1``.
    """
    transforms = {
        "parallel": jax.pmap,
        "vectorized": lambda chain: jax.jit(jax.vmap(chain)),
        "sequential": lambda chain: jax.jit(lambda chains: jax.lax.map(chain, chains)),
    }
    if chain_method not in transforms:
        raise ValueError(f"`chain_method` must be one of {CHAIN_METHODS}, got {chain_method!r}")

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
    """Apply ``fn`` to blocks of at most ``chunk_size`` posterior draws and stack the results.

    ``arrays`` share a leading shape, e.g. ``(chains, draws)``: all axes but the last unless
    ``leading_ndim`` says how many; ``fn`` maps arrays of shape ``(m, ...)`` to one of shape
    ``(m, ...)``. Blocks bound the memory of ``(draws, n, k)`` intermediates.

    Examples
    --------
    >>> map_over_draws(lambda a: a * 2, np.ones((2, 3, 4)), chunk_size=4).shape
    (2, 3, 4)
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    leading = arrays[0].shape[:-1] if leading_ndim is None else arrays[0].shape[:leading_ndim]
    flat = [a.reshape((-1,) + a.shape[len(leading):]) for a in arrays]
    starts = range(0, len(flat[0]), chunk_size)
    blocks = [np.asarray(fn(*(a[start : start + chunk_size] for a in flat))) for start in starts]
    result = np.concatenate(blocks, axis=0)
    return result.reshape(leading + result.shape[1:])


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


def init_near(values: Mapping[str, Any], *, radius: float = 0.25) -> Callable[..., Any]:
    """A NumPyro init strategy: start each chain near given values, e.g. an EM solution.

    ``values`` maps sample sites to values (constrained, as the model samples them); each chain
    starts at them moved by independent ``Uniform(-radius, radius)`` noise in unconstrained
    coordinates (``radius=0``: every chain at the same point). Other sites start as
    ``init_to_uniform`` starts them. Pass the result as ``init_strategy`` (:class:`SamplerOptions`).
    """
    if not isinstance(values, Mapping) or not all(isinstance(name, str) for name in values):
        raise TypeError(f"`values` must map site names to values, got {type(values).__name__}")
    if isinstance(radius, bool) or not (isinstance(radius, (int, float)) and radius >= 0):
        raise ValueError(f"`radius` must be a non-negative number, got {radius!r}")
    return partial(_init_near, values={name: np.asarray(value) for name, value in values.items()},
                   radius=float(radius))


def init_to_data(
    x: Any, k: int, *, radius: float = 0.25, site_names: tuple[str, str, str] = ("weights", "locs", "scales")
) -> Callable[..., Any]:
    """A NumPyro init strategy: start each chain near a quantile split of the data.

    The sorted data are cut into ``k`` equal-count groups; the start is ``locs`` = the group
    means, ``scales`` = their standard deviations and equal ``weights``, moved by independent
    ``Uniform(-radius, radius)`` noise in unconstrained coordinates, different for each chain
    (``radius=0``: every chain at the same point). ``site_names`` are the model's names of the
    weights, means and standard deviations; other sites start as ``init_to_uniform`` starts them.
    Pass the result as ``init_strategy`` (:class:`SamplerOptions`).
    """
    x = np.sort(finite_vector("x", x))
    k = positive_int("k", k)
    if x.size < 2 * k:
        raise ValueError(f"`x` needs at least 2 points per component (2 * k = {2 * k}), got {x.size}")
    if not (isinstance(site_names, tuple) and len(site_names) == 3 and all(isinstance(n, str) for n in site_names)):
        raise TypeError(f"`site_names` must be a tuple of three site names, got {site_names!r}")
    groups = np.array_split(x, k)
    spread = max(float(np.std(x)), 1e-6)
    locs = np.array([group.mean() for group in groups])
    scales = np.array([max(float(group.std()), 1e-3 * spread) for group in groups])
    return init_near(dict(zip(site_names, (np.full(k, 1.0 / k), locs, scales))), radius=radius)


def _base_model(model: Any) -> Any:
    """The function under NumPyro handlers (``config_enumerate``...) and ``functools.partial``."""
    while callable(inner := getattr(model, "fn", None) or getattr(model, "func", None)):
        model = inner
    return model


@jax.jit
def _multivariate_log_likelihood(x: jax.Array, weights: jax.Array, locs: jax.Array, scales: jax.Array,
                                 corr_cholesky: jax.Array) -> jax.Array:
    trils = scales[..., None] * corr_cholesky
    log_densities = multivariate_component_log_densities(x, weights[..., None, :], locs[..., None, :, :],
                                                         trils[..., None, :, :, :])
    return jax.nn.logsumexp(log_densities, axis=-1)


_jitted_log_likelihood = jax.jit(mixture_log_likelihood)  # compiled once per shape: ~10x faster than op by op


def mixture_pointwise_log_likelihood(x: np.ndarray, posterior: Mapping[str, np.ndarray]) -> np.ndarray:
    """The pointwise log-likelihood of every draw of a Gaussian mixture: ``(chains, draws, n)``.

    :func:`gmm_utils.mixture_log_likelihood` of ``posterior``'s ``weights``, ``locs``, ``scales``,
    or, if it has ``corr_cholesky`` (:func:`gmm_utils.multivariate_mixture_model`), the
    multivariate mixture's, for points ``x`` of shape ``(n, d)``.
    """
    if "corr_cholesky" in posterior:
        names, log_likelihood = ("weights", "locs", "scales", "corr_cholesky"), _multivariate_log_likelihood
    else:
        names, log_likelihood = ("weights", "locs", "scales"), _jitted_log_likelihood
    return map_over_draws(partial(log_likelihood, x), *(posterior[name] for name in names), leading_ndim=2)


def tree_depths(n_steps: np.ndarray) -> np.ndarray:
    """The NUTS tree depth of each draw from its leapfrog steps: depth d allows up to 2**d - 1."""
    return np.ceil(np.log2(np.asarray(n_steps) + 1)).astype(int)

#: The book's Gaussian mixtures: their pointwise marginal log-likelihood is
#: :func:`gmm_utils.mixture_log_likelihood`, whatever the formulation sampled.
GAUSSIAN_MIXTURE_MODELS = (marginal_model, latent_model, stick_breaking_model, multivariate_mixture_model)


class LogLikelihoodUnavailable(ValueError):
    """Raised by :func:`model_log_likelihood` when a model's pointwise marginal log-likelihood cannot be computed."""


def model_log_likelihood(
    model: Callable[..., Any], posterior: Mapping[str, Any], model_kwargs: Mapping[str, Any], *, site: str = "x",
    chunk_size: int = 256,
) -> np.ndarray:
    r"""Pointwise log-likelihood :math:`\log p(x_i \mid \theta^{(s)})` of any NumPyro model, ``(chains, draws, n)``.

    NumPyro's ``numpyro.infer.log_likelihood``, compiled, ``chunk_size`` draws at a time: each
    draw of ``posterior`` (``(chains, draws, ...)`` arrays of *every* unobserved sample site) is
    substituted into ``model`` and the observed ``site``'s ``log_prob`` evaluated at the data in
    ``model_kwargs``. Raises :class:`LogLikelihoodUnavailable` if ``site`` is not observed, its
    log density is not one value per point, or the model has an unobserved site the posterior
    lacks or that is discrete or enumerated (the log-likelihood is then not the marginal one).
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
        if node["fn"].is_discrete or node["infer"].get("enumerate"):
            raise LogLikelihoodUnavailable(f"the model's site {name!r} is discrete: its log-likelihood is not marginal")
    value, shape = np.shape(trace[site]["value"]), np.shape(trace[site]["fn"].log_prob(trace[site]["value"]))
    if len(shape) != 1 or shape != value[:1]:
        raise LogLikelihoodUnavailable(
            f"site {site!r} must hold points (scalars or vectors) with one log density each, got shapes {value} and {shape}"
        )
    kwargs, names = dict(model_kwargs), list(arrays)

    @jax.jit
    def block(*values: jax.Array) -> jax.Array:
        return numpyro_log_likelihood(model, dict(zip(names, values)), parallel=True, **kwargs)[site]

    return map_over_draws(block, *arrays.values(), chunk_size=chunk_size, leading_ndim=2)


def to_inference_data(
    mcmc: MCMC, x: Any | None = None, *, log_likelihood: bool = True, wall_time: float | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """Convert a finished NumPyro ``MCMC`` run to ``arviz.InferenceData``.

    Groups: ``posterior``, ``sample_stats`` (the recorded :data:`NUTS_EXTRA_FIELDS`, also as
    ``hmc_state.<field>``, under ArviZ's names, plus ``tree_depth``), ``observed_data`` and,
    if ``log_likelihood`` and ``x`` are given, the pointwise *marginal* log-likelihood of ``x``:
    the Gaussian mixture's for :data:`GAUSSIAN_MIXTURE_MODELS` (enumerated, or with sampled
    labels, too), else :func:`model_log_likelihood` given ``model_kwargs``, else none (with a
    warning if the posterior has ``weights``, ``locs`` and ``scales``): it is never guessed.
    ``wall_time`` (seconds) goes to ``posterior.attrs["sampling_time"]``.
    """
    posterior = {name: np.asarray(value) for name, value in mcmc.get_samples(group_by_chain=True).items()}
    extra = mcmc.get_extra_fields(group_by_chain=True).items()
    names = {field: NUTS_EXTRA_FIELDS.get(field.removeprefix("hmc_state.")) for field, _ in extra}
    stats = {names[field]: np.asarray(value) for field, value in extra if names[field] is not None}
    if "lp" in stats:
        stats["lp"] = -stats["lp"]  # NumPyro records the potential energy, -log density
    if "n_steps" in stats:  # depth d allows up to 2**d - 1 leapfrog steps
        stats["tree_depth"] = tree_depths(stats["n_steps"])

    dims = {name: dims for name, dims in MIXTURE_DIMS.items() if name in posterior or name == "x"}
    groups: dict[str, Any] = {"posterior": posterior, "sample_stats": stats}
    if x is not None:
        x = np.asarray(x)
        groups["observed_data"] = {"x": x}
        pointwise = _pointwise_log_likelihood(mcmc, posterior, x, model_kwargs) if log_likelihood else None
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
        return mixture_pointwise_log_likelihood(x, posterior)
    reason = "its arguments `model_kwargs` were not given"
    if model is not None and model_kwargs is not None:
        try:
            return model_log_likelihood(model, posterior, {**model_kwargs, "x": x})
        except LogLikelihoodUnavailable as error:
            reason = str(error)
    if book_sites:
        name = getattr(_base_model(model), "__name__", model)
        message = f"no log_likelihood group stored: that of model {name!r} cannot be computed ({reason})"
        warnings.warn(f"{message}; pass log_likelihood=False to silence this", stacklevel=3)
    return None


def run_mcmc(
    kernel: MCMCKernel, model_kwargs: Mapping[str, Any] | None = None, *,
    extra_fields: Sequence[str] = tuple(NUTS_EXTRA_FIELDS), exclude_sites: Sequence[str] = (), **options: Any,
) -> az.InferenceData:
    """Run any NumPyro MCMC kernel with the book's defaults; return ``arviz.InferenceData``.

    ``kernel`` is e.g. ``nuts_kernel(model, **options)`` or ``HMCGibbs(...)``; ``model_kwargs``
    the model's arguments, e.g. ``{"x": data.x, "k": 3}``; ``extra_fields`` the per-draw
    statistics to record (:data:`NUTS_EXTRA_FIELDS`, ``hmc_state.``-prefixed for ``HMCGibbs``);
    ``exclude_sites`` sample sites not to store (``("z",)`` drops ``(chains, draws, n)`` labels);
    ``options`` :class:`SamplerOptions` (the kernel's own, such as ``dense_mass``, are those it
    was built with). The result is :func:`to_inference_data`'s; ``posterior.attrs`` also record
    ``sampler`` (the kernel's class), ``num_chains``, ``chain_method``, ``sampling_time`` (wall
    seconds of ``MCMC.run``, compilation included) and, for two or more chains run in parallel,
    its parts timed by :func:`compile_then_run` (NaN otherwise).
    """
    settings = SamplerOptions(**options)
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"`model_kwargs` must be a mapping of the model's arguments, got {type(model_kwargs).__name__}")
    model_kwargs = dict(model_kwargs or {})
    if isinstance(model_kwargs.get("x"), (list, tuple, np.ndarray)):
        check = finite_matrix if np.ndim(model_kwargs["x"]) == 2 else finite_vector
        model_kwargs["x"] = check("x", model_kwargs["x"])
    chain_method, num_chains = settings.method, settings.num_chains
    timings = dict.fromkeys(("compile_time", "run_time", "compile_cpu_time", "run_cpu_time"), float("nan"))
    # Parallel chains compiled ahead give NumPyro's own draws, timed in two parts. Other runs are
    # NumPyro's own, timed whole: one chain, sequential and vectorized chains (compiled ahead they
    # would give other draws) and parallel ones without a device each (NumPyro runs them sequentially).
    split = chain_method == "parallel" and 1 < num_chains <= jax.local_device_count()
    mcmc = MCMC(kernel, num_warmup=settings.num_warmup, num_samples=settings.num_samples, num_chains=num_chains,
                chain_method=compile_then_run(chain_method, timings) if split else chain_method,
                progress_bar=settings.progress_bar and not split)
    start = time.perf_counter()
    fields = tuple(extra_fields) + tuple(f"~z.{site}" for site in exclude_sites)
    mcmc.run(jax.random.PRNGKey(settings.seed), extra_fields=fields, **model_kwargs)
    jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    wall_time = time.perf_counter() - start
    idata = to_inference_data(
        mcmc, model_kwargs.get("x"), log_likelihood=settings.log_likelihood, wall_time=wall_time, model_kwargs=model_kwargs
    )
    if chain_method == "parallel" and num_chains > jax.local_device_count():
        chain_method = "sequential"  # as NumPyro ran them
    idata.posterior.attrs.update(sampler=type(kernel).__name__, num_chains=num_chains, chain_method=chain_method, **timings)
    return idata


def nuts_kernel(model: Callable[..., Any], **options: Any) -> NUTS:
    """The book's NUTS kernel for ``model``: the one every runner samples with.

    ``options`` are :class:`SamplerOptions`; the kernel uses ``target_accept_prob``, ``dense_mass``,
    ``max_tree_depth`` and ``init_strategy``.
    """
    settings = SamplerOptions(**options)
    return NUTS(model, target_accept_prob=settings.target_accept_prob, dense_mass=settings.dense_mass,
                max_tree_depth=settings.max_tree_depth, init_strategy=settings.init_strategy or init_to_uniform)


def run_nuts(model: Callable[..., Any], model_kwargs: Mapping[str, Any] | None = None, **options: Any) -> az.InferenceData:
    """Sample ``model`` with NUTS and return ``arviz.InferenceData``.

    ``model`` is a NumPyro model, e.g. :func:`gmm_utils.marginal_model`, or one with enumerated
    discrete sites (``config_enumerate(gmm_utils.latent_model)``), which NUTS sums out;
    ``model_kwargs`` its arguments, e.g. ``{"x": data.x, "k": 3, "ordered": True}``; ``options``
    :class:`SamplerOptions`, e.g. ``num_chains=4, seed=1``. The result is :func:`run_mcmc`'s,
    with ``max_tree_depth``, ``target_accept_prob`` and ``dense_mass`` in ``sample_stats.attrs``
    (the diagnostics read them).
    """
    settings = SamplerOptions(**options)
    idata = run_mcmc(nuts_kernel(model, **options), model_kwargs, **options)
    idata.sample_stats.attrs.update(max_tree_depth=settings.max_tree_depth, dense_mass=bool(settings.dense_mass),
                                    target_accept_prob=float(settings.target_accept_prob))
    return idata


def fit_summary(idata: az.InferenceData, var_names: Sequence[str] | None = None) -> dict[str, float]:
    """The numbers by which the book compares fits: time, efficiency, convergence.

    ``var_names`` are the posterior variables to summarize, by default every floating-point one
    (not the labels ``z``). Returns a dict: ``wall_time``, ``compile_time`` and ``run_time``
    (seconds, from ``posterior.attrs``, see :func:`run_mcmc`; NaN if absent), ``min_ess_bulk``
    and ``min_ess_tail`` (ArviZ's, the smallest over all scalar components), ``ess_per_second``
    (``min_ess_bulk / wall_time``), ``ess_per_run_second`` (``min_ess_bulk / run_time``: what
    the book compares, since it does not depend on the compilation cache), ``max_rhat`` (NaN
    propagates) and ``divergences`` (in all chains; NaN if not recorded).
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
    wall_time, compile_time, run_time = (
        float(posterior.attrs.get(name, np.nan)) for name in ("sampling_time", "compile_time", "run_time")
    )
    stats = getattr(idata, "sample_stats", None)
    diverging = stats is not None and "diverging" in stats
    return {
        "wall_time": wall_time,
        "compile_time": compile_time,
        "run_time": run_time,
        "min_ess_bulk": ess_bulk,
        "min_ess_tail": extreme(az.ess(idata, var_names=var_names, method="tail"), np.min),
        "ess_per_second": ess_bulk / wall_time,
        "ess_per_run_second": ess_bulk / run_time,
        "max_rhat": extreme(az.rhat(idata, var_names=var_names), np.max),
        "divergences": int(np.sum(stats["diverging"].values)) if diverging else float("nan"),
    }


#: Column headers of :func:`compare_fits`, one per :func:`fit_summary` key it shows.
COMPARISON_COLUMNS = {
    "compile_time": "compile s", "run_time": "sampling s (after compilation)", "min_ess_bulk": "min bulk ESS",
    "min_ess_tail": "min tail ESS", "ess_per_run_second": "bulk ESS / s of sampling", "max_rhat": "max R-hat",
    "divergences": "divergences",
}


def compare_fits(summaries: Mapping[Any, Mapping[str, float]]) -> Any:
    """The book's side-by-side table of fits (chapters 2 and 3), one row per fit.

    ``summaries`` maps a row label (a string, or a tuple for a two-level index) to a
    :func:`fit_summary` (or a dict with its keys, e.g. a projected row). Returns a
    ``pandas.DataFrame`` with the columns named by :data:`COMPARISON_COLUMNS`.
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
    """``faster``'s ``ess_per_run_second`` (:func:`fit_summary`) divided by ``slower``'s.

    Effective draws per second of sampling after compilation: the ratio does not depend on
    which programs a compilation cache held.
    """
    values = [float(summary["ess_per_run_second"]) for summary in (faster, slower)]
    if not all(np.isfinite(value) and value > 0 for value in values):
        raise ValueError(f"both fits need a measured, positive `ess_per_run_second`, got {values}")
    return values[0] / values[1]
