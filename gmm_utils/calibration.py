"""Simulation-based calibration (SBC): draw from the prior, simulate, fit, rank the truth.

If a sampler is right, the rank of each true parameter value among its posterior draws is
uniform over the simulated data sets (Talts et al. 2018). SBC needs hundreds of fits, so
:func:`fit_datasets` compiles **one** NUTS program (NumPyro's functional API,
``numpyro.infer.hmc.hmc``) and runs it over every data set at once with ``jax.vmap``, the
data sets split over the JAX devices: one chain per data set, no Python loop.
:func:`sbc_ranks`, :func:`uniformity_table` and the two plots read the ranks.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro.distributions as dist
import pandas as pd
from jax import lax, random
from numpyro.infer import Predictive, init_to_uniform, init_to_value
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from scipy import stats

from ._validation import finite_matrix, finite_vector, positive_int
from .inference import MIXTURE_DIMS, SamplerOptions, mixture_pointwise_log_likelihood, tree_depths
from .predictive import ecdf_band, plot_ecdf_band


def sbc_priors(k: int) -> dict[str, dist.Distribution]:
    """The priors of the calibration chapters, for ``k`` components: keyword arguments of the
    book's models.

    In units of a standardized measurement: means within about +-6, standard deviations
    between about 0.55 and 1.8 (95%), and weights that rarely leave a component below about
    15% of the points. Proper, and every draw simulates a data set like a real mixture.

    Examples
    --------
    >>> sorted(sbc_priors(2))
    ['loc_prior', 'scale_prior', 'weights_prior']
    """
    k = positive_int("k", k)
    return {
        "loc_prior": dist.Normal(0.0, 3.0),
        "scale_prior": dist.LogNormal(0.0, 0.3),
        "weights_prior": dist.Dirichlet(jnp.full(k, 5.0)),
    }


def simulate_datasets(
    model: Callable[..., Any], num_datasets: int, num_points: int, model_kwargs: Mapping[str, Any] | None = None,
    *, seed: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draw ``num_datasets`` parameter sets from ``model``'s prior and one data set from each.

    ``model`` is one of the book's models (its data site is ``x``, ``n`` the number of points
    to simulate); ``model_kwargs`` its other arguments (``k``, priors). Returns the true values
    ``{site: (num_datasets, *shape)}`` and the data, shape ``(num_datasets, num_points)``.

    Examples
    --------
    >>> from gmm_utils import marginal_model
    >>> truth, data = simulate_datasets(marginal_model, 4, 30, {"k": 2})
    >>> truth["locs"].shape, data.shape
    ((4, 2), (4, 30))
    """
    num_datasets, num_points = positive_int("num_datasets", num_datasets), positive_int("num_points", num_points)
    draws = Predictive(model, num_samples=num_datasets)(random.PRNGKey(seed), n=num_points, **dict(model_kwargs or {}))
    data = np.asarray(draws.pop("x"))
    return {name: np.asarray(value) for name, value in draws.items()}, data


@dataclasses.dataclass(frozen=True)
class BatchFits:
    """One NUTS chain per data set, from :func:`fit_datasets`.

    ``draws[site]`` has shape ``(num_datasets, num_samples, *site_shape)``; ``stats`` holds each
    draw's ``diverging``, ``n_steps`` (leapfrog steps) and ``energy``, ``(num_datasets,
    num_samples)``, and the properties summarize them per data set. ``compile_seconds`` is zero
    when the program was compiled earlier in this process.
    """

    draws: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    max_tree_depth: int
    compile_seconds: float
    run_seconds: float

    @property
    def num_datasets(self) -> int:
        return self.stats["n_steps"].shape[0]

    @property
    def num_divergent(self) -> np.ndarray:
        """Divergent draws of each chain."""
        return self.stats["diverging"].sum(axis=1)

    @property
    def mean_steps(self) -> np.ndarray:
        """Mean leapfrog steps per draw of each chain."""
        return self.stats["n_steps"].mean(axis=1)

    @property
    def at_max_depth(self) -> np.ndarray:
        """Share of each chain's draws whose trajectory hit ``max_tree_depth``."""
        return (self.stats["n_steps"] >= 2**self.max_tree_depth - 1).mean(axis=1)

    @property
    def fits_per_second(self) -> float:
        """Data sets fitted per wall second, compilation included."""
        return self.num_datasets / (self.compile_seconds + self.run_seconds)

    def as_chains(self, rows: Any = slice(None), x: Any = None) -> az.InferenceData:
        """The fits of ``rows`` (data sets of the same data and model) as the chains of one fit.

        ``posterior`` and ``sample_stats`` (with ``tree_depth``, and ``max_tree_depth`` in its
        attrs) as :func:`gmm_utils.run_nuts` returns them, so :func:`gmm_utils.check_convergence`
        runs every check on them. Given the data ``x`` the rows were fitted to, also
        ``observed_data`` and the Gaussian mixture's pointwise ``log_likelihood``, for LOO.
        """
        stats = {name: value[rows] for name, value in self.stats.items()}
        if np.ndim(stats["n_steps"]) != 2 or len(stats["n_steps"]) == 0:
            raise ValueError(f"`rows` must select data sets (a slice or an index array), got {rows!r}")
        stats["tree_depth"] = tree_depths(stats["n_steps"])
        groups: dict[str, Any] = {"posterior": {name: value[rows] for name, value in self.draws.items()},
                                  "sample_stats": stats}
        if x is not None:
            x = finite_matrix("x", x) if np.ndim(x) == 2 else finite_vector("x", x)
            groups["observed_data"] = {"x": x}
            groups["log_likelihood"] = {"x": mixture_pointwise_log_likelihood(x, groups["posterior"])}
        idata = az.from_dict(**groups, dims=MIXTURE_DIMS)
        idata.sample_stats.attrs["max_tree_depth"] = self.max_tree_depth
        return idata


def _split_kwargs(model_kwargs: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], dict[str, Any]]:
    """Static arguments (ints, bools, strings: part of the program) apart from array-valued ones
    (arrays, floats and NumPyro distributions, which are pytrees: arguments of the program)."""
    dynamic_types = (dist.Distribution, jax.Array, np.ndarray, float)
    dynamic = {name: value for name, value in model_kwargs.items() if isinstance(value, dynamic_types)}
    static = tuple(sorted((name, value) for name, value in model_kwargs.items() if name not in dynamic))
    return static, dynamic


_PROGRAMS: dict[Any, Any] = {}  # compiled batch samplers of this process, by model, settings and shapes


def _batch_sampler(model: Callable[..., Any], static: tuple[tuple[str, Any], ...], settings: SamplerOptions,
                   num_devices: int, vectorize: bool) -> Callable[..., Any]:
    init_strategy = settings.init_strategy or init_to_uniform

    def one_chain(x: jax.Array, rng_key: jax.Array, dynamic: dict[str, Any], row: dict[str, Any],
                  start: dict[str, Any]) -> tuple[Any, ...]:
        kwargs = {**dict(static), **dynamic, **row}
        init_key, run_key = random.split(rng_key)
        strategy = init_to_value(values=start) if start else init_strategy
        info = initialize_model(init_key, model, model_args=(x,), model_kwargs=kwargs, dynamic_args=True,
                                init_strategy=strategy)
        init_kernel, sample_kernel = hmc(potential_fn_gen=info.potential_fn, algo="NUTS")
        state = init_kernel(info.param_info, num_warmup=settings.num_warmup, rng_key=run_key,
                            target_accept_prob=settings.target_accept_prob, dense_mass=settings.dense_mass,
                            max_tree_depth=settings.max_tree_depth, model_args=(x,), model_kwargs=kwargs)

        def transition(state: Any, _: None) -> tuple[Any, tuple[Any, ...]]:
            state = sample_kernel(state, model_args=(x,), model_kwargs=kwargs)
            return state, (state.z, state.diverging, state.num_steps, state.energy)

        # One scan over warm-up and draws (two scans would compile NUTS twice); keep the draws.
        length = settings.num_warmup + settings.num_samples
        _, history = lax.scan(transition, state, None, length=length)
        z, diverging, num_steps, energy = jax.tree.map(lambda value: value[settings.num_warmup:], history)
        return jax.vmap(info.postprocess_fn(x, **kwargs))(z), {"diverging": diverging, "n_steps": num_steps,
                                                               "energy": energy}

    def one_after_another(x: jax.Array, keys: jax.Array, dynamic: dict[str, Any], rows: dict[str, Any],
                          starts: dict[str, Any]) -> Any:
        return lax.map(lambda row: one_chain(row[0], row[1], dynamic, row[2], row[3]), (x, keys, rows, starts))

    batched = jax.vmap(one_chain, in_axes=(0, 0, None, 0, 0)) if vectorize else one_after_another
    return jax.pmap(batched, in_axes=(0, 0, None, 0, 0)) if num_devices > 1 else jax.jit(batched)


def fit_datasets(
    model: Callable[..., Any], data: Any, model_kwargs: Mapping[str, Any] | None = None, *,
    per_dataset: Mapping[str, Any] | None = None, starts: Mapping[str, Any] | None = None, vectorize: bool = True,
    **options: Any,
) -> BatchFits:
    """Fit ``model`` to every row of ``data`` with NUTS, one chain each, in one compiled program.

    ``data`` has shape ``(num_datasets, num_points)``, or ``(num_datasets, num_points, d)`` for
    :func:`gmm_utils.multivariate_mixture_model`; ``model(x, **model_kwargs)`` is a book model. ``options`` are :class:`gmm_utils.SamplerOptions`: ``num_warmup``, ``num_samples``,
    ``seed``, ``target_accept_prob``, ``dense_mass``, ``max_tree_depth``, ``init_strategy``
    are used (one chain per data set, so ``num_chains`` and ``chain_method`` are not). Integer,
    boolean and string model arguments are part of the program; arrays, floats and NumPyro
    distributions (priors) are its arguments, so fits that differ only in the data or in a
    prior's parameters share one compiled program. ``per_dataset`` are model arguments that
    differ between rows: arrays whose first axis has one entry per data set, each row's fit
    sees its own entry. ``starts`` are initial values of sample sites (constrained, as the model
    samples them), one per row on the first axis, e.g. a prior draw or an EM solution for each
    chain: arguments of the program too, so fits that differ only in their starts share it (with
    ``starts``, the sites not in it start as ``init_to_uniform`` starts them). The data sets are split over the JAX devices when their number
    divides evenly; on each device the fits run in lockstep (``vectorize=True``, ``jax.vmap``:
    fastest for many fits of similar cost, as in SBC) or one after another (``False``,
    ``lax.map``: half the compilation time, and no fit waits for the slowest, for a few fits of
    different cost).

    Examples
    --------
    >>> from gmm_utils import marginal_model
    >>> truth, data = simulate_datasets(marginal_model, 4, 30, {"k": 2})
    >>> fits = fit_datasets(marginal_model, data, {"k": 2, "ordered": True}, num_warmup=50, num_samples=20)
    >>> fits.draws["locs"].shape, fits.stats["n_steps"].shape
    ((4, 20, 2), (4, 20))
    """
    if not callable(model):
        raise TypeError(f"`model` must be a callable NumPyro model, got {model!r}")
    data = np.asarray(data)
    if data.ndim not in (2, 3) or 0 in data.shape:
        raise ValueError(f"`data` must have shape (num_datasets, num_points) or (num_datasets, num_points, d), "
                         f"got {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("`data` must be finite, got NaN or infinity")
    settings = SamplerOptions(**options)
    static, dynamic = _split_kwargs(dict(model_kwargs or {}))
    num_datasets = data.shape[0]
    rows = {name: jnp.asarray(value) for name, value in dict(per_dataset or {}).items()}
    start_values = {name: jnp.asarray(value, dtype=jnp.float32) for name, value in dict(starts or {}).items()}
    for argument, values in (("per_dataset", rows), ("starts", start_values)):
        for name, value in values.items():
            if value.ndim == 0 or value.shape[0] != num_datasets:
                raise ValueError(f"`{argument}[{name!r}]` must have one entry per data set ({num_datasets}) on its "
                                 f"first axis, got shape {value.shape}")
    num_devices = jax.local_device_count()
    num_devices = num_devices if num_devices > 1 and num_datasets % num_devices == 0 else 1
    keys = random.split(random.PRNGKey(settings.seed), num_datasets)
    x = jnp.asarray(data, dtype=jnp.float32)
    if num_devices > 1:
        x, keys, rows, start_values = (
            jax.tree.map(lambda value: value.reshape(num_devices, -1, *value.shape[1:]), tree)
            for tree in (x, keys, rows, start_values))
    arguments = (x, keys, dynamic, rows, start_values)
    if not isinstance(vectorize, bool):
        raise TypeError(f"`vectorize` must be True or False, got {vectorize!r}")
    shapes = tuple((jnp.shape(leaf), jnp.result_type(leaf)) for leaf in jax.tree.leaves(arguments))
    program_key = (model, static, dataclasses.replace(settings, seed=0), num_devices, vectorize,
                   jax.tree.structure(arguments), shapes)
    start = time.perf_counter()
    if program_key not in _PROGRAMS:
        sampler = _batch_sampler(model, static, settings, num_devices, vectorize)
        _PROGRAMS[program_key] = sampler.lower(*arguments).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    draws, draw_stats = jax.block_until_ready(_PROGRAMS[program_key](*arguments))
    run_seconds = time.perf_counter() - start

    def by_dataset(value: Any) -> np.ndarray:
        value = np.asarray(value)
        return value.reshape(num_datasets, *value.shape[2:]) if num_devices > 1 else value

    return BatchFits(draws={name: by_dataset(value) for name, value in draws.items()},
                     stats={name: by_dataset(value) for name, value in draw_stats.items()},
                     max_tree_depth=settings.max_tree_depth, compile_seconds=compile_seconds, run_seconds=run_seconds)


@dataclasses.dataclass(frozen=True)
class SBCRanks:
    """Ranks of the true values among ``num_draws`` posterior draws: ``ranks[name]`` has shape
    ``(num_datasets, *shape)`` and values ``0, ..., num_draws``, uniform if the fits are right."""

    ranks: dict[str, np.ndarray]
    num_draws: int

    def columns(self) -> dict[str, np.ndarray]:
        """One rank vector per scalar quantity, named ``"locs[0]"``, ...: the tables' rows."""
        columns = {}
        for name, ranks in self.ranks.items():
            flat = ranks.reshape(ranks.shape[0], -1)
            for index in range(flat.shape[1]):
                columns[name if ranks.ndim == 1 else f"{name}[{index}]"] = flat[:, index]
        return columns

    def fractions(self, name: str) -> np.ndarray:
        """The ranks of one column as numbers in (0, 1): ``(rank + 1/2) / (num_draws + 1)``."""
        return (self.columns()[name] + 0.5) / (self.num_draws + 1)


def sbc_ranks(truth: Mapping[str, Any], draws: Mapping[str, Any], num_draws: int = 99) -> SBCRanks:
    """Rank each true value among ``num_draws`` equally spaced posterior draws.

    ``truth[name]`` has shape ``(num_datasets, *shape)``, ``draws[name]`` shape
    ``(num_datasets, num_samples, *shape)``; every name of ``truth`` must be in ``draws``.
    Thinning to about the effective sample size keeps the draws nearly independent, which the
    uniformity of ranks assumes (Talts et al. 2018): ``num_samples`` 1,000 thinned to 99.
    ``num_draws + 1`` rank values then fall evenly into 10, 20, 25 or 50 histogram bins.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ranks = sbc_ranks({"mu": rng.normal(size=200)}, {"mu": rng.normal(size=(200, 990))})
    >>> int(ranks.ranks["mu"].min()) >= 0, int(ranks.ranks["mu"].max()) <= 99
    (True, True)
    """
    num_draws = positive_int("num_draws", num_draws)
    if not truth:
        raise ValueError("`truth` must name at least one quantity")
    ranks = {}
    for name, true_values in truth.items():
        if name not in draws:
            raise ValueError(f"`draws` has no {name!r}, which `truth` has (draws has {sorted(draws)})")
        true_values, samples = np.asarray(true_values), np.asarray(draws[name])
        if samples.shape[:1] + samples.shape[2:] != true_values.shape:
            raise ValueError(f"`draws[{name!r}]` must have shape (num_datasets, num_samples, *{true_values.shape[1:]}) "
                             f"to match `truth[{name!r}]` {true_values.shape}, got {samples.shape}")
        if samples.shape[1] < num_draws:
            raise ValueError(f"`num_draws` ({num_draws}) exceeds the {samples.shape[1]} draws of {name!r}")
        if not (np.all(np.isfinite(true_values)) and np.all(np.isfinite(samples))):
            raise ValueError(f"`truth[{name!r}]` and `draws[{name!r}]` must be finite")
        thinned = samples[:, :: samples.shape[1] // num_draws][:, :num_draws]
        ranks[name] = (thinned < true_values[:, None]).sum(axis=1)
    return SBCRanks(ranks=ranks, num_draws=num_draws)


def uniformity_table(ranks: SBCRanks, *, num_bins: int = 20, prob: float = 0.99) -> pd.DataFrame:
    """Test every quantity's ranks for uniformity: one row per quantity.

    Columns: ``chi2_pvalue`` of the rank histogram with ``num_bins`` bins (Talts et al.
    2018), ``ecdf_inside``, whether the ranks' ECDF stays inside the ``prob`` simultaneous
    band (Säilynoja, Bürkner and Vehtari 2022; :func:`gmm_utils.ecdf_band`), and the mean
    fractional rank (0.5 if centred; below it the posterior sits too high, above it too low).
    """
    num_bins = positive_int("num_bins", num_bins)
    if (ranks.num_draws + 1) % num_bins:
        raise ValueError(f"`num_bins` ({num_bins}) must divide the {ranks.num_draws + 1} possible ranks")
    rows = []
    for name, column in ranks.columns().items():
        counts = np.bincount(column * num_bins // (ranks.num_draws + 1), minlength=num_bins)
        band = ecdf_band(ranks.fractions(name), prob=prob)
        rows.append({"quantity": name, "chi2_pvalue": stats.chisquare(counts).pvalue, "ecdf_inside": band.inside,
                     "mean_rank_fraction": ranks.fractions(name).mean()})
    return pd.DataFrame(rows).set_index("quantity")


def _grid(num_panels: int, width: float = 2.6) -> tuple[plt.Figure, np.ndarray]:
    columns = min(num_panels, 4)
    rows = -(-num_panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, 2.2 * rows), squeeze=False, sharey=True)
    for ax in axes.flat[num_panels:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_rank_histograms(ranks: SBCRanks, *, num_bins: int = 20, prob: float = 0.99) -> plt.Figure:
    """One rank histogram per quantity, with the ``prob`` interval of a bin's count under uniformity."""
    columns = ranks.columns()
    num_datasets = next(iter(columns.values())).shape[0]
    low, high = stats.binom.interval(prob, num_datasets, 1 / num_bins)
    fig, axes = _grid(len(columns))
    edges = np.linspace(0, ranks.num_draws + 1, num_bins + 1)
    for ax, (name, column) in zip(axes, columns.items()):
        ax.axhspan(low, high, color="0.88", lw=0)
        ax.hist(column, bins=edges, color="C0", edgecolor="white", lw=0.5)
        ax.set(title=name, xlabel="rank", xlim=(0, ranks.num_draws + 1))
    return fig


def plot_rank_ecdfs(ranks: SBCRanks, *, prob: float = 0.99) -> plt.Figure:
    """One ECDF-difference plot of the fractional ranks per quantity, with the simultaneous band."""
    columns = ranks.columns()
    fig, axes = _grid(len(columns))
    for ax, name in zip(axes, columns):
        plot_ecdf_band(ecdf_band(ranks.fractions(name), prob=prob), ax, label="ranks")
        ax.set(title=name, xlabel="fractional rank", ylabel="ECDF − uniform")
    return fig
