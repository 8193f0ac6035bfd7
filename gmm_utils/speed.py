"""Speed and scale (chapters 12 and 13): what a fit costs, where its time goes, how the cost grows.

Measuring: :class:`CompileTimer`, :func:`gradient_cost` (one gradient of a model's whole
potential), :func:`gradient_scaling`, :func:`gradient_cost_in_fresh_process`,
:func:`timed_fit` (a :class:`TimedFit`). Making it fast: :func:`fused_mixture_log_prob`,
:func:`with_likelihood`. Large data: :func:`subsampled_marginal_model`. ``make bench``
(``bench/run.py``) runs the same measurements for every formulation of chapters 2 and 3.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from numpyro.distributions import biject_to
from numpyro.infer import MCMC, DiscreteHMCGibbs, HMCGibbs
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import potential_energy
from numpyro.primitives import Messenger

from ._validation import finite_vector, positive_int
from .data import simulate_gmm
from .devices import usable_cores, xla_reductions_on
from .distributions import MixtureGaussian, component_log_densities
from .inference import CHAIN_METHODS, SamplerOptions, fit_summary, nuts_kernel
from .models import marginal_model, sample_mixture_parameters

#: The formulations of chapters 2 and 3 ``make bench`` times: the marginal model with three likelihoods
#: (:func:`with_likelihood`), then the latent model with enumeration, blocked Gibbs and DiscreteHMCGibbs.
MARGINAL_FORMULATIONS = ("marginal", "mixture_same_family", "fused")
FORMULATIONS = MARGINAL_FORMULATIONS + ("enumeration", "blocked_gibbs", "discrete_gibbs")
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


def _check(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {tuple(allowed)}, got {value!r}")


class CompileTimer:
    """Measure the time JAX spends tracing, lowering and compiling inside a ``with`` block.

    ``seconds`` is the wall time of the *union* of those phases (they nest), ``cpu_seconds``
    this process's CPU time during them; ``compilations`` counts the programs XLA compiled
    (or loaded from the persistent cache), ``cache_hits`` those loaded from the cache.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> with CompileTimer() as timer:
    ...     _ = jax.jit(lambda v: 2.0 * v + 1.0)(jnp.ones(7))
    >>> timer.compilations >= 1 and timer.seconds > 0
    True
    """

    def __init__(self) -> None:
        self._spans: list[tuple[str, float, float]] = []
        self._depth = 0
        self._cpu_start = 0.0
        self.cpu_seconds = 0.0
        self.cache_hits = 0

    def _on_start(self, event: str, value: float, **_: Any) -> None:
        if event in _COMPILE_EVENTS:  # JAX reports a phase's start as a scalar
            if self._depth == 0:
                self._cpu_start = time.process_time()
            self._depth += 1

    def _on_span(self, event: str, start: float, end: float, **_: Any) -> None:
        if event in _COMPILE_EVENTS:
            self._spans.append((event, start, end))
            self._depth = max(self._depth - 1, 0)
            if self._depth == 0:
                self.cpu_seconds += time.process_time() - self._cpu_start

    def _on_event(self, event: str, **_: Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            self.cache_hits += 1

    def __enter__(self) -> CompileTimer:
        jax.monitoring.register_scalar_listener(self._on_start)
        jax.monitoring.register_event_time_span_listener(self._on_span)
        jax.monitoring.register_event_listener(self._on_event)
        return self

    def __exit__(self, *exc: Any) -> None:
        jax.monitoring.unregister_scalar_listener(self._on_start)
        jax.monitoring.unregister_event_time_span_listener(self._on_span)
        jax.monitoring.unregister_event_listener(self._on_event)

    @property
    def seconds(self) -> float:
        total, end_of_union = 0.0, -math.inf
        for _, start, end in sorted(self._spans, key=lambda span: span[1]):
            total += max(end - max(start, end_of_union), 0.0)  # only the part not counted yet
            end_of_union = max(end_of_union, end)
        return total

    @property
    def compilations(self) -> int:
        return sum(1 for event, _, _ in self._spans if event == _COMPILE_EVENTS[2])


# --------------------------------------------------------------------------- fused density


def _fused_forward(x: Any, weights: Any, locs: Any, scales: Any) -> tuple[jax.Array, tuple[Any, ...]]:
    x, weights, locs, scales = (jnp.asarray(a) for a in (x, weights, locs, scales))
    if not weights.ndim == locs.ndim == scales.ndim == 1:
        raise ValueError("`weights`, `locs` and `scales` must have shape (k,)")
    terms = component_log_densities(x, weights, locs, scales)  # log w_j + log N(x_i | mu_j, sigma_j)
    largest = jnp.max(terms, axis=-1, keepdims=True)  # logsumexp, keeping the exponentials
    exponentials = jnp.exp(terms - largest)
    total = jnp.sum(exponentials, axis=-1, keepdims=True)  # responsibilities r_ij = exponentials / total
    return (largest + jnp.log(total))[..., 0], (x, weights, locs, scales, exponentials / total)


def _fused_backward(residuals: tuple[Any, ...], cotangent: jax.Array) -> tuple[jax.Array, ...]:
    x, weights, locs, scales, responsibilities = residuals
    weighted = cotangent[..., None] * responsibilities  # g_i r_ij, shape x.shape + (k,)
    inverse_variances = 1.0 / (scales * scales)
    grad_x = -jnp.sum(weighted * (x[..., None] - locs) * inverse_variances, axis=-1)
    # The three moments S^(m)_j = sum_i g_i r_ij x_i^m in one small matrix product.
    points = x.reshape(-1)
    s0, s1, s2 = jnp.stack([jnp.ones_like(points), points, points * points]) @ weighted.reshape(points.size, -1)
    first = s1 - locs * s0  # sum_i g_i r_ij (x_i - mu_j)
    second = s2 - 2.0 * locs * s1 + locs * locs * s0  # sum_i g_i r_ij (x_i - mu_j)^2
    return grad_x, s0 / weights, first * inverse_variances, (second * inverse_variances - s0) / scales


@jax.custom_vjp
def fused_mixture_log_prob(x: Any, weights: Any, locs: Any, scales: Any) -> jax.Array:
    r"""Log density of a Gaussian mixture, shape ``x.shape``, with a hand-written gradient.

    The forward pass is :class:`gmm_utils.MixtureGaussian`'s. The reverse-mode derivative
    (the only one defined) is written by hand from the responsibilities
    :math:`r_{ij} = P(z_i = j \mid x_i)` the forward pass computes anyway: three sums per
    component, :math:`S^{(m)}_j = \sum_i g_i r_{ij} x_i^m` for a cotangent :math:`g`, in one
    small matrix product (chapter 12 derives it). Subtracting the moments loses a digit in
    single precision, which costs NUTS efficiency, not correctness (``H`` uses the exact
    forward pass). ``x`` has any shape; ``weights, locs, scales`` shape ``(k,)``, unchecked.
    """
    return _fused_forward(x, weights, locs, scales)[0]


fused_mixture_log_prob.defvjp(_fused_forward, _fused_backward)


class _FusedMixtureGaussian(MixtureGaussian):
    def log_prob(self, value: Any) -> jax.Array:
        return fused_mixture_log_prob(value, self.weights, self.locs, self.scales)


_SWAPS: dict[str, Callable[[MixtureGaussian], dist.Distribution]] = {
    "mixture_same_family": lambda mixture: dist.MixtureSameFamily(
        dist.Categorical(probs=mixture.weights), dist.Normal(mixture.locs, mixture.scales)
    ),
    "fused": lambda mixture: _FusedMixtureGaussian(mixture.weights, mixture.locs, mixture.scales),
}


class _SwapMixture(Messenger):
    """Effect handler: give every ``MixtureGaussian`` sample site another implementation."""

    def __init__(self, fn: Callable[..., Any] | None, make: Callable[[MixtureGaussian], dist.Distribution]):
        self.make = make
        super().__init__(fn)

    def process_message(self, msg: dict[str, Any]) -> None:
        fn = msg["fn"] if msg["type"] == "sample" else None
        if isinstance(fn, dist.ExpandedDistribution) and isinstance(fn.base_dist, MixtureGaussian):
            msg["fn"] = self.make(fn.base_dist).expand(fn.batch_shape)
        elif isinstance(fn, MixtureGaussian):
            msg["fn"] = self.make(fn)


def with_likelihood(model: Callable[..., Any], formulation: str) -> Callable[..., Any]:
    """``model`` with the density of its :class:`gmm_utils.MixtureGaussian` sites computed another way.

    An effect handler: priors, site names and arguments are untouched. ``formulation`` is one
    of the first three :data:`FORMULATIONS`: ``"marginal"`` returns ``model`` itself,
    ``"mixture_same_family"`` uses NumPyro's ``MixtureSameFamily(Categorical(w), Normal(mu,
    sigma))``, ``"fused"`` :func:`fused_mixture_log_prob`.

    Examples
    --------
    >>> from gmm_utils import marginal_model
    >>> with_likelihood(marginal_model, "fused").__name__
    'marginal_model_fused'
    """
    _check("formulation", formulation, MARGINAL_FORMULATIONS)
    if not callable(model):
        raise TypeError(f"`model` must be a callable NumPyro model, got {model!r}")
    if formulation == "marginal":
        return model
    name = getattr(model, "__name__", "model")

    def swapped(*args: Any, **kwargs: Any) -> Any:
        with _SwapMixture(None, _SWAPS[formulation]):
            return model(*args, **kwargs)

    swapped.__name__, swapped.__doc__ = f"{name}_{formulation}", f"{name} with the {formulation} likelihood."
    return swapped


def subsampled_marginal_model(
    x: Any, k: int = 3, *, subsample_size: int, with_replacement: bool = True, ordered: bool = True,
    loc_prior: dist.Distribution | None = None, scale_prior: dist.Distribution | None = None,
    weights_prior: dist.Distribution | None = None,
) -> None:
    r""":func:`gmm_utils.marginal_model` seeing a random subset of the data at each step.

    Each run looks at ``m = subsample_size`` (at most ``n``) of the ``n`` points of ``x``,
    drawn at random, and multiplies their log-likelihood by ``n / m``: an unbiased estimate
    of the full one. SVI tolerates its noise; NUTS does not (a noisy density changes the
    distribution it samples). ``with_replacement=True`` draws the indices independently
    (cost ``O(m)``); ``False`` uses ``numpyro.plate("data", n, subsample_size=m)``, a
    partial shuffle of all ``n`` indices at every step. The other arguments are
    :func:`gmm_utils.marginal_model`'s.
    """
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"`x` must be one-dimensional, got shape {x.shape}")
    n = x.shape[0]
    subsample_size = positive_int("subsample_size", subsample_size)
    if subsample_size > n:
        raise ValueError(f"`subsample_size` ({subsample_size}) must not exceed the number of points ({n})")
    mixture = MixtureGaussian(*sample_mixture_parameters(
        k, ordered=ordered, loc_prior=loc_prior, scale_prior=scale_prior, weights_prior=weights_prior
    ))
    if with_replacement:
        index = jax.random.randint(numpyro.prng_key(), (subsample_size,), 0, n)
        with numpyro.plate("data", subsample_size), numpyro.handlers.scale(scale=n / subsample_size):
            numpyro.sample("x", mixture, obs=x[index])
    else:
        with numpyro.plate("data", n, subsample_size=subsample_size) as index:
            numpyro.sample("x", mixture, obs=x[index])


# --------------------------------------------------------------------------- gradient cost


@dataclasses.dataclass(frozen=True)
class GradientCost:
    """Cost of one gradient of a model's whole potential (see :func:`gradient_cost`).

    ``wall_us`` and ``cpu_us`` are microseconds per gradient: of the whole machine, and CPU
    time of this process (all threads; the measure least disturbed by other programs).
    ``memory_bytes`` is XLA's planned peak memory of one gradient. ``mean_potential`` and
    ``mean_gradient_sum`` average the potential and the sum of its gradient over the
    ``num_points`` points: two implementations of one density give the same values.
    ``chain_method`` and ``num_chains`` say how many chains computed gradients at once.
    """

    wall_us: float
    cpu_us: float
    memory_bytes: int
    num_points: int
    mean_potential: float
    mean_gradient_sum: float
    chain_method: str = "sequential"
    num_chains: int = 1


def _flat_potential(
    model: Callable[..., Any], model_kwargs: dict[str, Any], *, enum: bool, seed: int
) -> tuple[Callable[[jax.Array, jax.Array], jax.Array], jax.Array]:
    """The potential as a function of a flat unconstrained vector and the data ``x``, and its origin."""
    nesting = [0]

    def unconstrained_draw(key: jax.Array) -> dict[str, jax.Array]:
        sites = numpyro.handlers.trace(numpyro.handlers.seed(model, rng_seed=key)).get_trace(**model_kwargs)
        nesting[0] = max((len(site["cond_indep_stack"]) for site in sites.values()), default=0)
        return {
            name: biject_to(site["fn"].support).inv(site["value"])
            for name, site in sites.items()
            if site["type"] == "sample" and not site["is_observed"] and not site["fn"].support.is_discrete
        }

    # Only the shapes are needed (an abstract trace computes nothing). The origin of the
    # unconstrained coordinates: equal weights, means 0, 1, 2, ..., standard deviations 1.
    shapes = jax.eval_shape(unconstrained_draw, jax.random.PRNGKey(seed))
    flat, unravel = ravel_pytree(jax.tree.map(lambda shape: jnp.zeros(shape.shape, shape.dtype), shapes))
    static = {key: value for key, value in model_kwargs.items() if key != "x"}
    if enum:  # as NumPyro prepares an enumerated model for NUTS: enumerate left of the plates
        from numpyro.contrib.funsor import config_enumerate, enum as enum_handler

        model = enum_handler(config_enumerate(model), -nesting[0] - 1)

    def potential(vector: jax.Array, x: jax.Array) -> jax.Array:
        return potential_energy(model, (), {"x": x, **static}, unravel(vector), enum=enum)

    return potential, flat


def gradient_cost(
    model: Callable[..., Any], model_kwargs: Mapping[str, Any], *, chain_method: str | None = None,
    num_chains: int = 4, num_points: int | None = None, repeats: int = 5, seed: int = 0, enum: bool = False,
) -> GradientCost:
    """Time one gradient of ``model``'s potential, as the chains of a sampler compute it.

    The potential is the negative log posterior in the sampler's unconstrained coordinates
    (priors and Jacobians included), what NUTS differentiates at every leapfrog step, with
    ``model_kwargs`` (``x`` required, passed to the compiled loop as an argument). Its
    ``jax.value_and_grad`` runs at ``num_points`` distinct points near the origin (default:
    about 10 million mixture terms ``n * k``, between 2 and 1000) inside one compiled loop;
    the fastest of ``repeats`` loops counts. The loop runs as the chains would: alone
    (``"sequential"``), on ``num_chains`` devices at once (``"parallel"``) or batched
    (``"vectorized"``; default: as :class:`gmm_utils.SamplerOptions` chooses for ``num_chains``),
    since XLA's threads pay only while cores are idle. ``enum`` sums out
    discrete sites by enumeration (for ``config_enumerate`` models).
    """
    if model_kwargs.get("x") is None:
        raise ValueError("`model_kwargs` must hold the data `x`")
    chain_method = SamplerOptions(num_chains=positive_int("num_chains", num_chains), chain_method=chain_method).method
    _check("chain_method", chain_method, CHAIN_METHODS)
    x = jnp.asarray(model_kwargs["x"])
    repeats = positive_int("repeats", repeats)
    chains = positive_int("num_chains", num_chains) if chain_method != "sequential" else 1
    if chain_method == "parallel" and chains > jax.local_device_count():
        raise ValueError(f"`num_chains` ({chains}) exceeds the {jax.local_device_count()} JAX devices")
    if num_points is None:
        if "k" not in model_kwargs:
            raise ValueError("`model_kwargs` must hold the number of components `k` when `num_points` is None")
        num_points = int(np.clip(10_000_000 // max(x.size * int(model_kwargs["k"]), 1), 2, 1000))
    num_points = positive_int("num_points", num_points)
    potential, flat = _flat_potential(model, {**model_kwargs, "x": x}, enum=enum, seed=seed)
    value_and_grad = jax.value_and_grad(potential)
    shape = (num_points, flat.size) if chain_method == "sequential" else (chains, num_points, flat.size)
    points = flat + 0.05 * jax.random.normal(jax.random.PRNGKey(seed + 1), shape, flat.dtype)

    def one(point: jax.Array, x: jax.Array) -> jax.Array:
        value, gradient = value_and_grad(point, x)
        return jnp.stack([value, jnp.sum(gradient)])

    def loop(points: jax.Array, x: jax.Array) -> jax.Array:
        step = one
        if chain_method == "vectorized":  # all chains at each step: (points, chains, d)
            step, points = jax.vmap(one, in_axes=(0, None)), jnp.swapaxes(points, 0, 1)

        def body(totals: jax.Array, point: jax.Array) -> tuple[jax.Array, None]:
            return totals + step(point, x).reshape(-1, 2).sum(axis=0), None

        return jax.lax.scan(body, jnp.zeros(2, flat.dtype), points)[0]

    if chain_method == "parallel":
        compiled = jax.pmap(loop, in_axes=(0, None), devices=jax.local_devices()[:chains])
    else:
        compiled = jax.jit(loop)
    run = compiled.lower(points, x).compile()
    # The loop reuses one gradient's temporaries at every point: its plan is one gradient's (one device's).
    memory = run.memory_analysis()
    memory_bytes = (memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
                    - memory.alias_size_in_bytes)
    totals = np.asarray(jax.block_until_ready(run(points, x))).reshape(-1, 2).sum(axis=0)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(run(points, x))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    total = num_points * chains
    return GradientCost(
        wall_us=min(walls) / total * 1e6, cpu_us=min(cpus) / total * 1e6, memory_bytes=int(memory_bytes),
        num_points=num_points, mean_potential=float(totals[0]) / total, mean_gradient_sum=float(totals[1]) / total,
        chain_method=chain_method, num_chains=chains,
    )


def gradient_scaling(
    ns: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000), ks: Sequence[int] = (2, 3, 5, 10), *,
    formulation: str = "marginal", repeats: int = 3, seed: int = 0,
) -> list[dict[str, float]]:
    """Cost and memory of one gradient of the ordered marginal model for each ``n`` and ``k``.

    The data are standard Normal draws (the cost does not depend on their values); ``formulation``
    chooses the likelihood (:func:`with_likelihood`), ``repeats`` and ``seed`` are :func:`gradient_cost`'s.
    Returns one dict per ``(n, k)``, ``n`` first: ``n``, ``k``, ``wall_us``, ``cpu_us``, ``memory_bytes``.
    """
    model, rng, rows = with_likelihood(marginal_model, formulation), np.random.default_rng(seed), []
    for n in ns:
        x = rng.normal(size=positive_int("n", n)).astype(np.float32)
        for k in ks:
            cost = gradient_cost(model, {"x": x, "k": positive_int("k", k), "ordered": True}, repeats=repeats,
                                 seed=seed)
            rows.append({"n": n, "k": k, **{key: getattr(cost, key) for key in ("wall_us", "cpu_us", "memory_bytes")}})
    return rows


def gradient_cost_in_fresh_process(
    formulations: Sequence[str] = ("marginal",), *, xla_reductions: bool = True, chain_method: str = "parallel",
    num_chains: int = 4, timeout: float = 180.0,
) -> dict[str, GradientCost]:
    """:func:`gradient_cost` of the ordered marginal model on the seed data, in a new Python process.

    Settings read when JAX's backend starts cannot change in a running process: the new one
    starts with :func:`gmm_utils.use_xla_reductions` if ``xla_reductions`` (the book's
    setting), else with JAX's default (YNNPACK), and ``num_chains`` host devices. Returns one
    :class:`GradientCost` per formulation (likelihoods of :func:`with_likelihood`); raises
    ``RuntimeError`` (with the process's last line of errors) if it fails or times out.
    """
    formulations = [formulations] if isinstance(formulations, str) else list(formulations)
    for formulation in formulations or [None]:
        _check("formulations", formulation, MARGINAL_FORMULATIONS)
    _check("chain_method", chain_method, CHAIN_METHODS)
    spec = {"formulations": formulations, "xla_reductions": bool(xla_reductions), "chain_method": chain_method,
            "num_chains": positive_int("num_chains", num_chains)}
    environment = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}  # it sets its own
    command = [sys.executable, "-m", "gmm_utils.speed", json.dumps(spec)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from error
    if result.returncode != 0:
        raise RuntimeError((result.stderr.strip().splitlines() or ["failed"])[-1])
    costs = json.loads(result.stdout.strip().splitlines()[-1])
    return {name: GradientCost(**cost) for name, cost in costs.items()}


def _costs_in_this_process(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The new process of :func:`gradient_cost_in_fresh_process` (JAX not started yet)."""
    from .devices import set_host_device_count, use_xla_reductions

    set_host_device_count(spec["num_chains"])
    if spec["xla_reductions"]:
        use_xla_reductions()
    data, options = simulate_gmm(), {"chain_method": spec["chain_method"], "num_chains": spec["num_chains"]}
    model_kwargs = {"x": data.x, "k": len(data.weights), "ordered": True}
    models = {name: with_likelihood(marginal_model, name) for name in spec["formulations"]}
    return {name: dataclasses.asdict(gradient_cost(model, model_kwargs, **options)) for name, model in models.items()}


# --------------------------------------------------------------------------- timed fits


@dataclasses.dataclass(frozen=True)
class TimedFit:
    """One fit measured by :func:`timed_fit`: a row of the benchmark table.

    Seconds end in ``_s``, microseconds in ``_us``; ``cpu`` times are this process's (all
    threads). ``wall_s`` covers ``MCMC.run`` (compilation included), ``compile_s`` the
    compiling or cache loading alone (:class:`CompileTimer`). ``gradients`` counts the
    leapfrog steps of all chains, warm-up included; ``gradient_us`` is the CPU time of one
    gradient as the chains compute it (NaN if not given), ``step_cpu_us`` of one step in the
    fit. ``bound_s = gradients * min(gradient_us, step_cpu_us) / cores`` (a gradient costs at
    most its step) and ``efficiency = bound_s / wall_s``. ESS, R-hat and divergences are
    :func:`gmm_utils.fit_summary`'s of ``idata``, the draws after warm-up (``sample_stats``:
    ``diverging``, ``n_steps``); ``load`` is the load average during the fit.
    """

    n: int
    chain_method: str
    num_chains: int
    num_warmup: int
    num_samples: int
    wall_s: float
    compile_s: float
    cpu_s: float
    compile_cpu_s: float
    cache_hits: int
    gradients: int
    warmup_gradients: int
    mean_steps: float
    gradient_us: float
    step_cpu_us: float
    bound_s: float
    efficiency: float
    min_ess_bulk: float
    ess_per_s: float
    max_rhat: float
    divergences: int
    cores: int
    load: float
    xla_reductions: bool
    idata: Any = dataclasses.field(repr=False, compare=False)


def timed_fit(
    model: Callable[..., Any] | MCMCKernel, model_kwargs: Mapping[str, Any], *, gradient: GradientCost | None = None,
    **options: Any,
) -> TimedFit:
    """Fit ``model`` once and measure everything the benchmark table reports, as a :class:`TimedFit`.

    ``model`` is a NumPyro model, sampled with the kernel :func:`gmm_utils.run_nuts` builds
    from the same sampler ``options`` (so the draws are ``run_nuts``'s), or an MCMC kernel
    such as ``HMCGibbs``; ``model_kwargs`` are its arguments (``x`` required). The warm-up's
    steps are counted too. ``gradient``, one gradient timed as this fit's chains compute it
    (:func:`gradient_cost` with the same ``chain_method`` and ``num_chains``), gives the
    bound; without it the bound is NaN.
    """
    sampler = SamplerOptions(**options)
    chain_method, num_chains, num_warmup = sampler.method, sampler.num_chains, sampler.num_warmup
    at_once = 1 if chain_method == "sequential" else num_chains
    if gradient is not None and (gradient.chain_method, gradient.num_chains) != (chain_method, at_once):
        raise ValueError(
            f"`gradient` was timed as {gradient.num_chains} {gradient.chain_method} chain(s) compute it; "
            f"this fit runs {at_once} {chain_method} chain(s) at once"
        )
    if chain_method == "parallel" and jax.local_device_count() < num_chains:
        raise ValueError(f"`chain_method='parallel'` needs {num_chains} JAX devices, not {jax.local_device_count()}")
    model_kwargs = {**model_kwargs, "x": finite_vector("x", model_kwargs.get("x"))}
    kernel = model if isinstance(model, MCMCKernel) else nuts_kernel(model, **options)
    prefix = "hmc_state." if isinstance(kernel, (HMCGibbs, DiscreteHMCGibbs)) else ""  # a Gibbs kernel's NUTS block
    total = num_warmup + sampler.num_samples
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=sampler.num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=False)
    # Keep the warm-up's statistics too, in the one program run_nuts compiles (NumPyro's
    # MCMC.warmup(collect_warmup=True) would compile warm-up and sampling apart).
    mcmc._set_collection_params(0, total, total)
    fields = (f"{prefix}num_steps", f"{prefix}diverging") + (("~z.z",) if prefix else ())
    load_before = os.getloadavg()[0]
    with CompileTimer() as timer:
        start, start_cpu = time.perf_counter(), time.process_time()
        mcmc.run(jax.random.PRNGKey(sampler.seed), extra_fields=fields, **model_kwargs)
        jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    load = (load_before + os.getloadavg()[0]) / 2

    import arviz as az

    extra = mcmc.get_extra_fields(group_by_chain=True)
    steps = np.asarray(extra[f"{prefix}num_steps"])
    idata = az.from_dict(
        posterior={name: np.asarray(value)[:, num_warmup:]
                   for name, value in mcmc.get_samples(group_by_chain=True).items() if name != "z"},
        sample_stats={"diverging": np.asarray(extra[f"{prefix}diverging"])[:, num_warmup:],
                      "n_steps": steps[:, num_warmup:]},
    )
    idata.posterior.attrs["sampling_time"] = wall
    summary = fit_summary(idata)
    gradients, cores = int(steps.sum()), min(usable_cores(), num_chains)
    step_cpu_us = max(cpu - timer.cpu_seconds, 0.0) / gradients * 1e6
    gradient_us = gradient.cpu_us if gradient is not None else math.nan
    bound = gradients * min(gradient_us, step_cpu_us) * 1e-6 / cores
    return TimedFit(
        n=int(model_kwargs["x"].size), chain_method=chain_method, num_chains=num_chains, num_warmup=num_warmup,
        num_samples=sampler.num_samples, wall_s=wall, compile_s=timer.seconds, cpu_s=cpu,
        compile_cpu_s=timer.cpu_seconds, cache_hits=timer.cache_hits, gradients=gradients,
        warmup_gradients=int(steps[:, :num_warmup].sum()), mean_steps=float(steps[:, num_warmup:].mean()),
        gradient_us=gradient_us, step_cpu_us=step_cpu_us, bound_s=bound, efficiency=bound / wall,
        min_ess_bulk=summary["min_ess_bulk"], ess_per_s=summary["ess_per_second"], max_rhat=summary["max_rhat"],
        divergences=int(summary["divergences"]), cores=cores, load=load, xla_reductions=xla_reductions_on(),
        idata=idata,
    )


if __name__ == "__main__":  # the new process of gradient_cost_in_fresh_process
    print(json.dumps(_costs_in_this_process(json.loads(sys.argv[1]))))
