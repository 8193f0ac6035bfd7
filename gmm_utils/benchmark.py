r"""Speed and scale: what a fit costs, where the time goes, and how the cost grows.

The book's benchmark (``make bench``, or ``python -m gmm_utils.benchmark``) and the tools
of the chapter on speed and scale live here.

Measuring
    :class:`CompileTimer` times JAX's tracing, lowering and compiling;
    :func:`gradient_cost` the cost of one gradient of a model's *whole* potential (the
    negative log posterior NUTS differentiates); :func:`gradient_scaling` how that cost and
    its memory grow with the number of points ``n`` and of components ``k``;
    :func:`gradient_cost_in_fresh_process` a gradient in a new Python process, to compare
    settings read when JAX starts (:func:`gmm_utils.use_xla_reductions`);
    :func:`timed_fit` one fit with every number of the benchmark table;
    :func:`timing_claims` checks the chapters' statements that one timing is smaller than
    another on the benchmark's own measurements (the chapters assert only counts).
Making it fast
    :func:`enable_compilation_cache` keeps compiled samplers on disk between runs;
    :func:`fused_mixture_log_prob` and :class:`FusedMixtureGaussian` compute the mixture
    log density and its gradient in one pass; :func:`with_likelihood` swaps the
    likelihood of a model for another formulation of the same density.
Large data
    :func:`subsampled_marginal_model` is :func:`gmm_utils.marginal_model` with a data
    plate that sees a random subset of the points at each step (for SVI).

The efficiency of a fit is its *gradient bound* over its wall time: the bound is the time
the gradients alone would take, ``gradients * seconds per gradient / cores``, counting
every gradient NUTS took, warm-up included. An efficiency of 1 would mean that the fit did
nothing but compute gradients on every core, compilation included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from numpyro.handlers import condition
from numpyro.infer import MCMC, NUTS, DiscreteHMCGibbs, HMCGibbs, init_to_uniform
from numpyro.distributions import biject_to
from numpyro.infer.util import potential_energy
from numpyro.primitives import Messenger

from ._validation import finite_vector, positive_int
from .data import simulate_gmm
from .distributions import MixtureGaussian
from .devices import usable_cores, xla_reductions_on
from .inference import fit_summary, init_to_data, nuts_kernel
from .models import marginal_model, sample_mixture_parameters

#: The formulations the benchmark compares (see :func:`timed_fit`).
FORMULATIONS = (
    "marginal",
    "mixture_same_family",
    "fused",
    "enumeration",
    "blocked_gibbs",
    "discrete_gibbs",
)
#: NumPyro's ways to run several chains.
CHAIN_METHODS = ("parallel", "vectorized", "sequential")
#: The likelihoods :func:`with_likelihood` can put in a model.
LIKELIHOODS = ("mixture_gaussian", "mixture_same_family", "fused")

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_chain_method(chain_method: str) -> None:
    if chain_method not in CHAIN_METHODS:
        raise ValueError(
            f"`chain_method` must be one of {CHAIN_METHODS}, got {chain_method!r}"
        )
_BENCH_SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "pymc_gmm.py"


# --------------------------------------------------------------------------- compilation


def default_cache_dir() -> Path:
    """``$GMM_BOOK_JAX_CACHE``, else ``$XDG_CACHE_HOME/gmm-numpyro-book/jax`` (``~/.cache/...``)."""
    explicit = os.environ.get("GMM_BOOK_JAX_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gmm-numpyro-book" / "jax"


def enable_compilation_cache(directory: str | os.PathLike[str] | None = None) -> Path:
    """Keep every program JAX compiles on disk, and reuse it in later runs.

    JAX compiles a sampler the first time it runs; a persistent compilation cache stores
    the compiled program, keyed by the program itself (and the JAX version, the devices
    and the XLA flags), so the next run of the same fit, in this process or any later one,
    loads it instead of compiling. Tracing the Python code still happens every time.

    Parameters
    ----------
    directory : str or path-like, optional
        Where to keep the programs. Default :func:`default_cache_dir`. Only you should be
        able to write to it: JAX runs what it finds there.

    Returns
    -------
    pathlib.Path
        The cache directory (created if needed).

    Examples
    --------
    >>> enable_compilation_cache("/tmp/my-jax-cache")  # doctest: +SKIP
    PosixPath('/tmp/my-jax-cache')
    """
    from jax.experimental.compilation_cache import compilation_cache

    path = (
        Path(default_cache_dir() if directory is None else directory)
        .expanduser()
        .resolve()
    )
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Cache every program, also the small ones compiled in well under a second.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()  # take effect even if JAX compiled something already
    return path


class CompileTimer:
    """Measure the time JAX spends tracing, lowering and compiling inside a ``with`` block.

    The three phases nest (a jitted function traced inside another), so the time is the
    length of the *union* of their intervals, not their sum. Loading a program from the
    persistent cache (see :func:`enable_compilation_cache`) counts as compiling.

    Attributes
    ----------
    seconds : float
        Wall seconds of tracing, lowering and compiling.
    cpu_seconds : float
        CPU seconds of this process during those intervals (on a shared machine, less
        disturbed by other programs than the wall time).
    backend_seconds : float
        Wall seconds of XLA's compilation (or cache loading) alone.
    compilations : int
        Programs compiled or loaded.
    cache_hits : int
        Programs loaded from the persistent cache.

    Examples
    --------
    >>> with CompileTimer() as timer:  # doctest: +SKIP
    ...     idata = run_nuts(marginal_model, x=data.x)
    >>> timer.seconds  # doctest: +SKIP
    3.1
    """

    def __init__(self) -> None:
        self._spans: list[tuple[str, float, float]] = []
        self._depth = 0
        self._cpu_start = 0.0
        self.cpu_seconds = 0.0
        self.cache_hits = 0

    def _on_start(self, event: str, value: float, **_: Any) -> None:
        # JAX records the start of each phase as a scalar (its start time).
        if event in _COMPILE_EVENTS:
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

    def __enter__(self) -> "CompileTimer":
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
        total, current = 0.0, None
        for _, start, end in sorted(self._spans, key=lambda span: span[1]):
            if current is None or start > current[1]:
                if current is not None:
                    total += current[1] - current[0]
                current = [start, end]
            else:
                current[1] = max(current[1], end)
        return total + (current[1] - current[0] if current is not None else 0.0)

    @property
    def backend_seconds(self) -> float:
        return sum(
            end - start
            for event, start, end in self._spans
            if event == _COMPILE_EVENTS[2]
        )

    @property
    def compilations(self) -> int:
        return sum(1 for event, _, _ in self._spans if event == _COMPILE_EVENTS[2])


# --------------------------------------------------------------------------- fused density


def _sum_to_shape(gradient: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Sum a broadcast cotangent back down to ``shape`` (reverse of broadcasting)."""
    extra = gradient.ndim - len(shape)
    if extra > 0:
        gradient = gradient.sum(axis=tuple(range(extra)))
    axes = tuple(
        i for i, size in enumerate(shape) if size == 1 and gradient.shape[i] != 1
    )
    if axes:
        gradient = gradient.sum(axis=axes, keepdims=True)
    return gradient.reshape(shape)


def _fused_forward(
    x: jax.Array, weights: jax.Array, locs: jax.Array, scales: jax.Array
) -> tuple[jax.Array, ...]:
    inverse_scales = 1.0 / scales
    standardized = (
        x[..., None] - locs
    ) * inverse_scales  # d_ij = (x_i - mu_j) / sigma_j
    log_terms = (jnp.log(weights) - jnp.log(scales)) - 0.5 * standardized * standardized
    largest = jax.lax.stop_gradient(jnp.max(log_terms, axis=-1, keepdims=True))
    exponentials = jnp.exp(log_terms - largest)
    total = jnp.sum(exponentials, axis=-1, keepdims=True)
    log_prob = (largest + jnp.log(total))[..., 0] - _HALF_LOG_2PI
    return log_prob, standardized, exponentials / total, inverse_scales


@jax.custom_vjp
def fused_mixture_log_prob(x: Any, weights: Any, locs: Any, scales: Any) -> jax.Array:
    r"""Log density of a Gaussian mixture, with a hand-written gradient.

    The same function as :meth:`gmm_utils.MixtureGaussian.log_prob`,

    .. math:: \log p(x_i) = \operatorname{logsumexp}_j \big(\log w_j - \log\sigma_j - d_{ij}^2 / 2\big)
        - \tfrac12 \log 2\pi, \qquad d_{ij} = (x_i - \mu_j) / \sigma_j,

    computed the same way (so the value is as accurate), but its reverse-mode derivative
    is written by hand from the responsibilities :math:`r_{ij} = P(z_i = j \mid x_i)`,
    which the forward pass computes anyway. For a cotangent :math:`g_i` (ones, when the
    log densities are summed) the gradient needs only three weighted sums per component,

    .. math:: S^{(m)}_j = \sum_i g_i\, r_{ij}\, x_i^m, \quad m = 0, 1, 2,

    one small matrix product :math:`[1, x, x^2]^\top (g \odot r)` instead of several
    passes over ``(n, k)`` arrays:

    .. math::
        \frac{\partial}{\partial w_j} = \frac{S^{(0)}_j}{w_j}, \quad
        \frac{\partial}{\partial \mu_j} = \frac{S^{(1)}_j - \mu_j S^{(0)}_j}{\sigma_j^2}, \quad
        \frac{\partial}{\partial \sigma_j} = \frac{S^{(2)}_j - 2\mu_j S^{(1)}_j + \mu_j^2 S^{(0)}_j}{\sigma_j^3}
            - \frac{S^{(0)}_j}{\sigma_j}.

    Subtracting the moments loses a few digits in single precision (relative error of
    the gradient about 1e-5 instead of 1e-6 for automatic differentiation, on the
    book's data), which only affects how closely the leapfrog steps follow the
    Hamiltonian. NUTS has no accept step: it draws the next state among the trajectory's
    points with probabilities proportional to ``exp(-H)``, and ``H`` uses this function's
    forward pass, the exact density. Leapfrog steps stay reversible and volume-preserving
    with any position-dependent force, so that draw leaves the posterior invariant: an
    inexact gradient costs efficiency (a wider spread of ``H`` along the trajectory), not
    correctness. Parameters with batch dimensions take the plain elementwise route.
    Only reverse mode (``jax.grad``, what NUTS uses) is defined; ``jax.jacfwd`` raises.

    Parameters
    ----------
    x : array_like, shape (...,)
        Where to evaluate the density.
    weights, locs, scales : array_like, shape (..., k)
        Mixture weights (on the simplex), means and standard deviations (positive),
        broadcasting against each other and against ``x[..., None]``. Not validated:
        use :class:`gmm_utils.MixtureGaussian` (``validate_args=True``) for checked input.

    Returns
    -------
    jax.Array, shape broadcast(x.shape, weights.shape[:-1])

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> fused_mixture_log_prob(jnp.zeros(4), jnp.array([0.5, 0.5]), jnp.array([-1.0, 1.0]), jnp.ones(2)).shape
    (4,)
    """
    return _fused_forward(*(jnp.asarray(a) for a in (x, weights, locs, scales)))[0]


def _fused_vjp_forward(
    x: Any, weights: Any, locs: Any, scales: Any
) -> tuple[jax.Array, tuple[Any, ...]]:
    x, weights, locs, scales = (jnp.asarray(a) for a in (x, weights, locs, scales))
    log_prob, standardized, responsibilities, inverse_scales = _fused_forward(
        x, weights, locs, scales
    )
    return log_prob, (
        x,
        weights,
        locs,
        standardized,
        responsibilities,
        inverse_scales,
        scales.shape,
    )


def _fused_vjp_backward(
    residuals: tuple[Any, ...], cotangent: jax.Array
) -> tuple[jax.Array, ...]:
    x, weights, locs, standardized, responsibilities, inverse_scales, scales_shape = (
        residuals
    )
    weighted = cotangent[..., None] * responsibilities  # g_i r_ij, shape (..., n, k)
    grad_x = _sum_to_shape(
        -jnp.sum(weighted * standardized * inverse_scales, axis=-1), x.shape
    )
    if (
        x.ndim == 1
        and weighted.ndim == 2
        and weights.ndim == locs.ndim == len(scales_shape) == 1
    ):
        # The model's case: n points, k components. The three moments in one product.
        powers = jnp.stack([jnp.ones_like(x), x, x * x])  # (3, n)
        s0, s1, s2 = powers @ weighted  # each (k,)
        first = s1 - locs * s0  # sum_i g_i r_ij (x_i - mu_j)
        second = (
            s2 - 2.0 * locs * s1 + locs * locs * s0
        )  # sum_i g_i r_ij (x_i - mu_j)^2
        inverse_variances = inverse_scales * inverse_scales
        return (
            grad_x,
            s0 / weights,
            first * inverse_variances,
            (second * inverse_variances - s0) * inverse_scales,
        )
    weighted_d = weighted * standardized  # g_i r_ij d_ij
    return (
        grad_x,
        _sum_to_shape(weighted / weights, weights.shape),
        _sum_to_shape(weighted_d * inverse_scales, locs.shape),
        _sum_to_shape(
            (weighted_d * standardized - weighted) * inverse_scales, scales_shape
        ),
    )


fused_mixture_log_prob.defvjp(_fused_vjp_forward, _fused_vjp_backward)


class FusedMixtureGaussian(MixtureGaussian):
    """:class:`gmm_utils.MixtureGaussian` whose ``log_prob`` is :func:`fused_mixture_log_prob`.

    Same parameters, shapes, constraints, validation and sampling; only the log density's
    gradient is computed by hand. Use it through :func:`with_likelihood`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> mixture = FusedMixtureGaussian(jnp.array([-1.0, 1.0]), jnp.ones(2), jnp.array([0.5, 0.5]))
    >>> mixture.log_prob(jnp.zeros(3)).shape
    (3,)
    """

    def log_prob(self, value: Any) -> jax.Array:
        """Log density at ``value``, of shape ``broadcast(value.shape, batch_shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        return fused_mixture_log_prob(value, self.mixing_probs, self.loc, self.scale)


def _same_family(mixture: MixtureGaussian) -> dist.Distribution:
    return dist.MixtureSameFamily(
        dist.Categorical(probs=mixture.mixing_probs),
        dist.Normal(mixture.loc, mixture.scale),
    )


def _fused(mixture: MixtureGaussian) -> dist.Distribution:
    return FusedMixtureGaussian(mixture.loc, mixture.scale, mixture.mixing_probs)


class _SwapMixture(Messenger):
    """Effect handler: replace every ``MixtureGaussian`` sample site's distribution."""

    def __init__(
        self,
        fn: Callable[..., Any] | None,
        make: Callable[[MixtureGaussian], dist.Distribution],
    ):
        self.make = make
        super().__init__(fn)

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] != "sample":
            return
        fn = msg["fn"]
        if isinstance(fn, dist.ExpandedDistribution) and isinstance(
            fn.base_dist, MixtureGaussian
        ):
            msg["fn"] = self.make(fn.base_dist).expand(fn.batch_shape)
        elif isinstance(fn, MixtureGaussian):
            msg["fn"] = self.make(fn)


def with_likelihood(model: Callable[..., Any], likelihood: str) -> Callable[..., Any]:
    """The same model with its mixture likelihood computed another way.

    Every sample site whose distribution is a :class:`gmm_utils.MixtureGaussian` gets
    the same density from another implementation; priors, site names and arguments are
    untouched. It is a NumPyro effect handler, so it works on any model built on
    ``MixtureGaussian``, e.g. :func:`gmm_utils.marginal_model`.

    Parameters
    ----------
    model : callable
        A NumPyro model.
    likelihood : {"mixture_gaussian", "mixture_same_family", "fused"}
        ``"mixture_gaussian"`` returns ``model`` unchanged; ``"mixture_same_family"``
        uses NumPyro's ``MixtureSameFamily(Categorical(w), Normal(mu, sigma))``;
        ``"fused"`` uses :class:`FusedMixtureGaussian`.

    Returns
    -------
    callable
        A model with the same signature.

    Examples
    --------
    >>> fast_model = with_likelihood(marginal_model, "fused")
    >>> idata = run_nuts(fast_model, x=data.x, k=3, ordered=True)  # doctest: +SKIP
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"`likelihood` must be one of {LIKELIHOODS}, got {likelihood!r}"
        )
    if not callable(model):
        raise TypeError(f"`model` must be a callable NumPyro model, got {model!r}")
    if likelihood == "mixture_gaussian":
        return model
    make = _same_family if likelihood == "mixture_same_family" else _fused

    def swapped(*args: Any, **kwargs: Any) -> Any:
        with _SwapMixture(None, make):
            return model(*args, **kwargs)

    swapped.__name__ = f"{getattr(model, '__name__', 'model')}_{likelihood}"
    swapped.__doc__ = (
        f"{getattr(model, '__name__', 'model')} with the {likelihood} likelihood."
    )
    return swapped


def subsampled_marginal_model(
    x: Any,
    k: int = 3,
    *,
    subsample_size: int,
    with_replacement: bool = True,
    ordered: bool = True,
    loc_prior: dist.Distribution | None = None,
    scale_prior: dist.Distribution | None = None,
    weights_prior: dist.Distribution | None = None,
) -> None:
    r""":func:`gmm_utils.marginal_model` seeing a random subset of the data at each step.

    Each time the model runs it looks at ``m = subsample_size`` of the ``n`` points, drawn
    at random, and multiplies their log-likelihood by ``n / m``: an unbiased estimate of
    the full log-likelihood at a fraction of its cost. Stochastic variational inference
    tolerates the noise of that estimate; NUTS does not (it weights the points of each
    trajectory by ``exp(-H)``, which needs the exact density: a noisy one changes the
    distribution it samples), so use this model with ``SVI`` only.

    Parameters
    ----------
    x : array_like, shape (n,)
        The observations.
    k : int
        Number of components.
    subsample_size : int
        Points per step, at most ``n``.
    with_replacement : bool
        Draw the ``m`` indices independently (``jax.random.randint``, cost ``O(m)``).
        ``False`` uses NumPyro's own ``numpyro.plate("data", n, subsample_size=m)``, which
        draws without replacement; on a CPU it does so by a partial Fisher-Yates shuffle
        of all ``n`` indices, ``m`` sequential swaps, every step. Both estimates are
        unbiased.
    ordered, loc_prior, scale_prior, weights_prior
        As in :func:`gmm_utils.marginal_model`.

    Examples
    --------
    >>> from numpyro.infer import SVI, Trace_ELBO  # doctest: +SKIP
    >>> from numpyro.infer.autoguide import AutoNormal  # doctest: +SKIP
    >>> guide = AutoNormal(subsampled_marginal_model)  # doctest: +SKIP
    >>> svi = SVI(subsampled_marginal_model, guide, numpyro.optim.Adam(0.01), Trace_ELBO())  # doctest: +SKIP
    >>> result = svi.run(key, 2000, x, 3, subsample_size=1000, progress_bar=False)  # doctest: +SKIP
    """
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"`x` must be one-dimensional, got shape {x.shape}")
    n = x.shape[0]
    subsample_size = positive_int("subsample_size", subsample_size)
    if subsample_size > n:
        raise ValueError(
            f"`subsample_size` ({subsample_size}) must not exceed the number of points ({n})"
        )
    weights, locs, scales = sample_mixture_parameters(
        k,
        ordered=ordered,
        loc_prior=loc_prior,
        scale_prior=scale_prior,
        weights_prior=weights_prior,
    )
    mixture = MixtureGaussian(locs, scales, weights)
    if with_replacement:
        index = jax.random.randint(numpyro.prng_key(), (subsample_size,), 0, n)
        with (
            numpyro.plate("data", subsample_size),
            numpyro.handlers.scale(scale=n / subsample_size),
        ):
            numpyro.sample("x", mixture, obs=x[index])
    else:
        with numpyro.plate("data", n, subsample_size=subsample_size) as index:
            numpyro.sample("x", mixture, obs=x[index])


# --------------------------------------------------------------------------- gradient cost


@dataclasses.dataclass(frozen=True)
class GradientCost:
    """Cost of one gradient of a model's whole potential (see :func:`gradient_cost`).

    Attributes
    ----------
    wall_us, cpu_us : float
        Microseconds per gradient, wall clock and CPU time of this process (all its
        threads). The CPU time is what one core needs; it is also the measure least
        disturbed by other programs on a shared machine.
    memory_bytes : int
        XLA's planned peak memory of one gradient: arguments, outputs and temporaries.
    num_points : int
        Points evaluated per timed repeat.
    mean_potential, mean_gradient_sum : float
        The potential and the sum of its gradient's entries, averaged over the points: two
        models with the same density and the same ``seed`` give the same values (a check
        that a faster implementation computes the same function).
    chain_method : str
        How the gradients were computed: as ``"sequential"``, ``"parallel"`` or
        ``"vectorized"`` chains compute them.
    num_chains : int
        Chains computing gradients at once (1 for ``"sequential"``).
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
    model: Callable[..., Any],
    model_kwargs: dict[str, Any],
    *,
    enum: bool = False,
    seed: int = 0,
) -> tuple[Callable[[jax.Array, jax.Array], jax.Array], jax.Array]:
    """The potential as a function of a flat unconstrained vector and the data ``x``."""
    # The parameters' shapes do not depend on the data: trace the model abstractly (no
    # computation, nothing to compile) to find them, and start at zero in the unconstrained
    # coordinates (equal weights, means 0, 1, 2, ..., standard deviations 1). Discrete sites
    # are either observed (conditioned labels) or summed out (enumeration).
    few = {**model_kwargs, "x": jnp.asarray(model_kwargs["x"])[:50]}
    if "z" in getattr(
        model, "data", {}
    ):  # a conditioned latent model: labels per point
        few["x"] = jnp.asarray(model_kwargs["x"])

    nesting = [0]

    def unconstrained_draw(key: jax.Array) -> dict[str, jax.Array]:
        model_trace = numpyro.handlers.trace(
            numpyro.handlers.seed(model, rng_seed=key)
        ).get_trace(**few)
        nesting[0] = max(
            (len(site["cond_indep_stack"]) for site in model_trace.values()), default=0
        )
        return {
            name: biject_to(site["fn"].support).inv(site["value"])
            for name, site in model_trace.items()
            if site["type"] == "sample"
            and not site["is_observed"]
            and not site["fn"].support.is_discrete
        }

    shapes = jax.eval_shape(unconstrained_draw, jax.random.PRNGKey(seed))
    flat, unravel = ravel_pytree(
        jax.tree.map(lambda shape: jnp.zeros(shape.shape, shape.dtype), shapes)
    )
    static = {key: value for key, value in model_kwargs.items() if key != "x"}
    if (
        enum
    ):  # as NumPyro prepares an enumerated model for NUTS: enumerate left of the plates
        from numpyro.contrib.funsor import config_enumerate, enum as enum_handler

        model = enum_handler(config_enumerate(model), -nesting[0] - 1)

    def potential(vector: jax.Array, x: jax.Array) -> jax.Array:
        return potential_energy(
            model, (), {"x": x, **static}, unravel(vector), enum=enum
        )

    return potential, flat


def gradient_cost(
    model: Callable[..., Any],
    *,
    chain_method: str = "sequential",
    num_chains: int = 4,
    num_points: int | None = None,
    repeats: int = 5,
    seed: int = 0,
    enum: bool = False,
    **model_kwargs: Any,
) -> GradientCost:
    """Time one gradient of ``model``'s potential, as the chains of a sampler compute it.

    The potential is the negative log posterior in the sampler's unconstrained
    coordinates, priors and Jacobians of the transforms included: the function NUTS
    differentiates at every leapfrog step. The function is compiled once, then
    ``jax.value_and_grad`` runs ``num_points`` times inside one compiled loop, at
    distinct points (so nothing can be reused from one evaluation to the next) around the
    origin of the unconstrained coordinates; the fastest of ``repeats`` timed loops counts.

    The cost depends on what else runs: XLA may split one large operation over several
    threads, which pays when cores are idle and not when every core already runs a chain.
    So the loop runs as the chains would: alone (``"sequential"``: one chain at a time),
    on ``num_chains`` devices at once (``"parallel"``, devices from
    :func:`gmm_utils.set_host_device_count`), or batched over ``num_chains`` chains
    (``"vectorized"``).

    Parameters
    ----------
    model : callable
        A NumPyro model taking the data as ``x``, e.g. :func:`gmm_utils.marginal_model`.
    chain_method : {"sequential", "parallel", "vectorized"}
        How the chains run (see above); default one chain alone.
    num_chains : int
        Chains for ``"parallel"`` (at most the number of JAX devices) and ``"vectorized"``.
    num_points : int, optional
        Gradients per chain and timed loop. Default: enough for about 10 million mixture
        terms (``n * k``), between 2 and 1000.
    repeats : int
        Timed loops; the fastest counts.
    seed : int
        Seed of the jitter around the starting point.
    enum : bool
        Sum out discrete sites by enumeration (for ``config_enumerate`` models).
    **model_kwargs
        Passed to the model; ``x`` is required and passed to the compiled function as an
        argument (not baked in as a constant).

    Returns
    -------
    GradientCost
        Per gradient: ``cpu_us`` is the CPU time of all threads over all gradients
        computed, ``wall_us`` the wall time over the same (so with parallel chains on
        several cores it is the cost per gradient of the whole machine).

    Examples
    --------
    >>> cost = gradient_cost(marginal_model, x=data.x, k=3, ordered=True)  # doctest: +SKIP
    >>> cost.cpu_us  # doctest: +SKIP
    45.2
    """
    if "x" not in model_kwargs or model_kwargs["x"] is None:
        raise ValueError("`x` (the data) is required")
    _check_chain_method(chain_method)
    x = jnp.asarray(model_kwargs["x"])
    repeats = positive_int("repeats", repeats)
    chains = (
        positive_int("num_chains", num_chains) if chain_method != "sequential" else 1
    )
    if chain_method == "parallel" and chains > jax.local_device_count():
        raise ValueError(
            f"`num_chains` ({chains}) exceeds the {jax.local_device_count()} JAX devices: "
            "call gmm_utils.set_host_device_count first"
        )
    terms = x.size * int(model_kwargs.get("k", 3))
    if num_points is None:
        num_points = int(np.clip(10_000_000 // max(terms, 1), 2, 1000))
    num_points = positive_int("num_points", num_points)
    potential, flat = _flat_potential(
        model, {**model_kwargs, "x": x}, enum=enum, seed=seed
    )
    value_and_grad = jax.value_and_grad(potential)
    shape = (
        (num_points, flat.size)
        if chain_method == "sequential"
        else (chains, num_points, flat.size)
    )
    points = flat + 0.05 * jax.random.normal(
        jax.random.PRNGKey(seed + 1), shape, flat.dtype
    )

    def one(point: jax.Array, x: jax.Array) -> jax.Array:
        value, gradient = value_and_grad(point, x)
        return jnp.stack([value, jnp.sum(gradient)])

    def loop(points: jax.Array, x: jax.Array) -> jax.Array:
        step = one if chain_method != "vectorized" else jax.vmap(one, in_axes=(0, None))
        if chain_method == "vectorized":
            points = jnp.swapaxes(
                points, 0, 1
            )  # (points, chains, d): all chains per step

        def body(totals: jax.Array, point: jax.Array) -> tuple[jax.Array, None]:
            return totals + step(point, x).reshape(-1, 2).sum(axis=0), None

        return jax.lax.scan(body, jnp.zeros(2, flat.dtype), points)[0]

    if chain_method == "parallel":
        devices = jax.local_devices()[:chains]
        run = jax.pmap(loop, in_axes=(0, None), devices=devices).lower(points, x).compile()
    else:
        run = jax.jit(loop).lower(points, x).compile()
    # The loop reuses one gradient's temporaries at every point: its plan is one
    # gradient's (plus the few bytes of the points themselves); for parallel chains, the
    # plan of one device (one chain), compiled once for all of them.
    memory_bytes = _memory_bytes(run)
    totals = (
        np.asarray(jax.block_until_ready(run(points, x))).reshape(-1, 2).sum(axis=0)
    )
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(run(points, x))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    total = num_points * chains
    return GradientCost(
        wall_us=min(walls) / total * 1e6,
        cpu_us=min(cpus) / total * 1e6,
        memory_bytes=memory_bytes,
        num_points=num_points,
        mean_potential=float(totals[0]) / total,
        mean_gradient_sum=float(totals[1]) / total,
        chain_method=chain_method,
        num_chains=chains,
    )


def _memory_bytes(compiled: Any) -> int:
    """XLA's planned memory of a compiled program: arguments, outputs and temporaries."""
    memory = compiled.memory_analysis()
    return int(
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )


def gradient_scaling(
    ns: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
    ks: Sequence[int] = (2, 3, 5, 10),
    *,
    likelihood: str = "mixture_gaussian",
    repeats: int = 3,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Cost and memory of one gradient of the marginal model for each ``n`` and ``k``.

    The data are standard Normal draws (the cost does not depend on their values); the
    model is :func:`gmm_utils.marginal_model` with ordered means and the given likelihood.

    Parameters
    ----------
    ns, ks : sequence of int
        Numbers of points and of components.
    likelihood : str
        See :func:`with_likelihood`.
    repeats, seed
        As in :func:`gradient_cost`.

    Returns
    -------
    list of dict
        One row per ``(n, k)``: ``n``, ``k``, ``wall_us``, ``cpu_us``, ``memory_bytes``.
    """
    model = with_likelihood(marginal_model, likelihood)
    rng = np.random.default_rng(seed)
    rows = []
    for n in ns:
        x = rng.normal(size=positive_int("n", n)).astype(np.float32)
        for k in ks:
            cost = gradient_cost(
                model,
                x=x,
                k=positive_int("k", k),
                ordered=True,
                repeats=repeats,
                seed=seed,
            )
            rows.append(
                {
                    "n": n,
                    "k": k,
                    "wall_us": cost.wall_us,
                    "cpu_us": cost.cpu_us,
                    "memory_bytes": cost.memory_bytes,
                }
            )
    return rows


# --------------------------------------------------------------------------- timed fits


def _kernel_and_model(
    formulation: str,
    x: np.ndarray,
    *,
    dense_mass: bool,
    target_accept_prob: float,
    init_strategy: Callable[..., Any],
) -> tuple[Any, Callable[..., Any], bool, str]:
    """The MCMC kernel, the model whose potential NUTS differentiates, enum, field prefix."""
    from numpyro.contrib.funsor import config_enumerate

    from .latent import label_conditional_gibbs_fn
    from .models import latent_model

    def nuts(model: Callable[..., Any]) -> NUTS:
        return nuts_kernel(
            model,
            target_accept_prob=target_accept_prob,
            dense_mass=dense_mass,
            init_strategy=init_strategy,
        )

    if formulation in ("marginal", "mixture_same_family", "fused"):
        likelihood = {"marginal": "mixture_gaussian"}.get(formulation, formulation)
        model = with_likelihood(marginal_model, likelihood)
        return nuts(model), model, False, ""
    if formulation == "enumeration":
        model = config_enumerate(latent_model)
        return nuts(model), model, True, ""
    # The Gibbs kernels: NUTS moves the parameters given the labels, so its potential is
    # the latent model's with z held fixed (at the true labels, for the timing).
    labels = jnp.arange(x.size) % 3  # any labels: the cost does not depend on them
    fixed = condition(latent_model, data={"z": labels})
    if formulation == "blocked_gibbs":
        kernel = HMCGibbs(
            nuts(latent_model),
            gibbs_fn=label_conditional_gibbs_fn(x),
            gibbs_sites=["z"],
        )
        return kernel, fixed, False, "hmc_state."
    if formulation == "discrete_gibbs":
        return DiscreteHMCGibbs(nuts(latent_model)), fixed, False, "hmc_state."
    raise ValueError(
        f"`formulation` must be one of {FORMULATIONS}, got {formulation!r}"
    )


def timed_fit(
    formulation: str = "marginal",
    *,
    x: Any = None,
    k: int = 3,
    chain_method: str = "parallel",
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 2000,
    seed: int = 0,
    dense_mass: bool = True,
    target_accept_prob: float = 0.8,
    init: str = "data",
    gradient_repeats: int = 5,
    gradient: GradientCost | None = None,
    measure_bound: bool = True,
    return_idata: bool = False,
) -> dict[str, Any] | tuple[dict[str, Any], Any]:
    """Fit one formulation with one chain method and measure everything the benchmark reports.

    The kernel is built exactly as the book's runners build it (:func:`gmm_utils.run_nuts`
    for the NUTS formulations, :mod:`gmm_utils.latent` for the Gibbs ones), on the ordered
    model. The only difference: the per-draw statistics of the warm-up are kept too, so
    that every gradient is counted. The wall time covers ``MCMC.run`` until the draws are
    ready, compilation included, as in ``run_nuts``.

    Parameters
    ----------
    formulation : str
        One of :data:`FORMULATIONS`: the marginal model with ``MixtureGaussian``
        (``"marginal"``, the book's main fit), with NumPyro's ``MixtureSameFamily``, with the
        hand-fused density (``"fused"``); the latent model with enumeration
        (``"enumeration"``), blocked Gibbs (``"blocked_gibbs"``) or ``DiscreteHMCGibbs``
        (``"discrete_gibbs"``).
    x : array_like, shape (n,), optional
        The data; default the seed data (:func:`gmm_utils.simulate_gmm`).
    k : int
        Number of components.
    chain_method : {"parallel", "vectorized", "sequential"}
        How the chains run; ``"parallel"`` needs ``num_chains`` JAX devices.
    num_chains, num_warmup, num_samples, seed, dense_mass, target_accept_prob
        As in :func:`gmm_utils.run_nuts`.
    init : {"data", "uniform"}
        Start near a quantile split of the data (:func:`gmm_utils.init_to_data`, as the
        book's chapters do) or NumPyro's ``init_to_uniform``.
    gradient_repeats : int
        Repeats of the gradient timing (:func:`gradient_cost`).
    gradient : GradientCost, optional
        The cost of one gradient of this formulation's potential, timed as the chains
        compute it (:func:`gradient_cost` with the same ``chain_method`` and
        ``num_chains``), if already measured: skips the timing.
    measure_bound : bool
        Time the gradient (if not given) for the bound and the efficiency. ``False`` skips
        it: ``gradient_us``, ``bound_s`` and ``efficiency`` are NaN.
    return_idata : bool
        Also return the draws after warm-up as ``arviz.InferenceData`` (``posterior``
        and ``sample_stats`` with ``diverging`` and ``n_steps``).

    Returns
    -------
    dict, or (dict, arviz.InferenceData) if ``return_idata``
        ``formulation``, ``chain_method``, ``n``, ``wall_s`` (compilation included),
        ``compile_s``, ``cpu_s`` and ``compile_cpu_s`` (CPU seconds of this process in
        all and while compiling), ``cache_hits``, ``gradients`` (warm-up included),
        ``mean_steps`` (leapfrog steps per draw after warm-up), ``gradient_us`` (CPU
        microseconds per gradient, computed as the fit's chains compute them: all at
        once), ``step_cpu_us`` (CPU microseconds per leapfrog step inside this fit,
        compiling excluded), ``bound_s`` (``gradients * min(gradient_us, step_cpu_us) /
        cores``: the time the gradients alone need), ``efficiency`` (``bound_s / wall_s``),
        ``min_ess_bulk``, ``min_ess_tail``, ``ess_per_s``, ``max_rhat``, ``divergences``,
        ``cores``, ``load``, ``xla_reductions`` (whether
        :func:`gmm_utils.use_xla_reductions` was on).

    Raises
    ------
    ValueError
        If ``gradient`` was timed with another chain method or number of chains.
    """
    if formulation not in FORMULATIONS:
        raise ValueError(
            f"`formulation` must be one of {FORMULATIONS}, got {formulation!r}"
        )
    _check_chain_method(chain_method)
    if init not in ("data", "uniform"):
        raise ValueError(f"`init` must be 'data' or 'uniform', got {init!r}")
    num_chains = positive_int("num_chains", num_chains)
    num_warmup = positive_int("num_warmup", num_warmup)
    num_samples = positive_int("num_samples", num_samples)
    chains_at_once = 1 if chain_method == "sequential" else num_chains
    if gradient is not None and (gradient.chain_method, gradient.num_chains) != (
        chain_method,
        chains_at_once,
    ):
        raise ValueError(
            f"`gradient` was timed as {gradient.num_chains} {gradient.chain_method} chain(s) "
            f"compute it; this fit runs {chains_at_once} {chain_method} chain(s) at once: "
            f"time it with gradient_cost(..., chain_method={chain_method!r}, "
            f"num_chains={num_chains})"
        )
    if chain_method == "parallel" and jax.local_device_count() < num_chains:
        raise ValueError(
            f"`chain_method='parallel'` needs {num_chains} JAX devices, JAX has {jax.local_device_count()}: "
            "call gmm_utils.set_host_device_count first"
        )
    x = simulate_gmm().x if x is None else x
    x = finite_vector("x", x)
    strategy = init_to_data(x, k) if init == "data" else init_to_uniform
    kernel, potential_model, enum, prefix = _kernel_and_model(
        formulation,
        x,
        dense_mass=dense_mass,
        target_accept_prob=target_accept_prob,
        init_strategy=strategy,
    )
    model_kwargs = {"x": x, "k": k, "ordered": True}
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=False,
    )
    # Keep the warm-up's statistics as well (one program, as run_nuts compiles): NumPyro's
    # own MCMC.warmup(collect_warmup=True) would compile warm-up and sampling separately.
    mcmc._set_collection_params(0, num_warmup + num_samples, num_warmup + num_samples)
    fields = (f"{prefix}num_steps", f"{prefix}diverging") + (
        ("~z.z",) if prefix else ()
    )
    load_before = os.getloadavg()[0]
    with CompileTimer() as timer:
        start, start_cpu = time.perf_counter(), time.process_time()
        mcmc.run(jax.random.PRNGKey(seed), extra_fields=fields, **model_kwargs)
        jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    load_after = os.getloadavg()[0]

    samples = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    steps = np.asarray(extra[f"{prefix}num_steps"])
    posterior = {
        name: np.asarray(samples[name])[:, num_warmup:]
        for name in ("weights", "locs", "scales")
    }
    diverging = np.asarray(extra[f"{prefix}diverging"])[:, num_warmup:]
    import arviz as az

    idata = az.from_dict(
        posterior=posterior,
        sample_stats={"diverging": diverging, "n_steps": steps[:, num_warmup:]},
        dims={name: ["component"] for name in posterior},
    )
    idata.posterior.attrs["sampling_time"] = wall
    summary = fit_summary(idata)

    if gradient is None and measure_bound:  # as the chains compute them, all at once
        gradient = gradient_cost(
            potential_model,
            chain_method=chain_method,
            num_chains=num_chains,
            repeats=gradient_repeats,
            enum=enum,
            **model_kwargs,
        )

    gradients = int(steps.sum())
    cores = min(usable_cores(), num_chains)
    # CPU per leapfrog step inside the fit: the gradient plus NUTS's work around it.
    step_cpu_us = max(cpu - timer.cpu_seconds, 0.0) / gradients * 1e6
    # The bound takes the cheaper of the two: a gradient cannot cost more than the step
    # that contains it, and some gradients (MixtureSameFamily's) cost more in a
    # microbenchmark than inside the sampler.
    gradient_us = gradient.cpu_us if gradient is not None else math.nan
    bound = gradients * min(gradient_us, step_cpu_us) * 1e-6 / cores
    row = {
        "formulation": formulation,
        "chain_method": chain_method,
        "n": int(x.size),
        "k": k,
        "num_chains": num_chains,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "dense_mass": dense_mass,
        "wall_s": wall,
        "compile_s": timer.seconds,
        "cpu_s": cpu,
        "compile_cpu_s": timer.cpu_seconds,
        "cache_hits": timer.cache_hits,
        "gradients": gradients,
        "warmup_gradients": int(steps[:, :num_warmup].sum()),
        "mean_steps": float(steps[:, num_warmup:].mean()),
        "gradient_us": gradient_us,
        "step_cpu_us": step_cpu_us,
        "bound_s": bound,
        "efficiency": bound / wall,
        "min_ess_bulk": summary["min_ess_bulk"],
        "min_ess_tail": summary["min_ess_tail"],
        "ess_per_s": summary["ess_per_second"],
        "max_rhat": summary["max_rhat"],
        "divergences": summary["divergences"],
        "cores": cores,
        "load": (load_before + load_after) / 2,
        "xla_reductions": xla_reductions_on(),
    }
    return (row, idata) if return_idata else row


# --------------------------------------------------------------------------- the benchmark


def _child_row(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one :func:`timed_fit` described by ``spec`` (in a fresh process)."""
    spec = dict(spec)
    cache_dir = spec.pop("cache_dir", None)
    n_subset = spec.pop("n_subset", None)
    if cache_dir:
        enable_compilation_cache(cache_dir)
    x = simulate_gmm().x
    if n_subset:
        x = x[:n_subset]
    return timed_fit(x=x, **spec)


def _child_gradients(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Time the gradients described by ``spec`` (in a fresh process)."""
    spec = dict(spec)
    likelihoods = spec.pop("likelihoods")
    x = simulate_gmm().x
    return {
        name: dataclasses.asdict(
            gradient_cost(
                with_likelihood(marginal_model, name), x=x, k=3, ordered=True, **spec
            )
        )
        for name in likelihoods
    }


def gradient_cost_in_fresh_process(
    likelihoods: Sequence[str] = ("mixture_gaussian",),
    *,
    xla_reductions: bool = True,
    chain_method: str = "parallel",
    num_chains: int = 4,
    timeout: float = 180.0,
) -> dict[str, GradientCost]:
    """:func:`gradient_cost` of the main model on the seed data, in a new Python process.

    Settings read when JAX's backend starts, such as :func:`gmm_utils.use_xla_reductions`,
    cannot change inside a running process; a fresh one can compare them side by side.

    Parameters
    ----------
    likelihoods : sequence of str
        Some of :data:`LIKELIHOODS` (see :func:`with_likelihood`), each timed in turn.
    xla_reductions : bool
        Start the new process's JAX with :func:`gmm_utils.use_xla_reductions` (the book's
        setting) or with JAX's default (reductions in YNNPACK).
    chain_method, num_chains
        As in :func:`gradient_cost`; the new process has ``num_chains`` host devices.
    timeout : float
        Seconds allowed.

    Returns
    -------
    dict
        One :class:`GradientCost` per likelihood.

    Raises
    ------
    ValueError
        If a likelihood is unknown.
    RuntimeError
        If the new process fails or runs out of time.
    """
    likelihoods = [likelihoods] if isinstance(likelihoods, str) else list(likelihoods)
    unknown = [name for name in likelihoods if name not in LIKELIHOODS]
    if unknown or not likelihoods:
        raise ValueError(
            f"`likelihoods` must be some of {LIKELIHOODS}, got {likelihoods!r}"
        )
    _check_chain_method(chain_method)
    spec = {
        "xla_reductions": bool(xla_reductions),
        "likelihoods": likelihoods,
        "chain_method": chain_method,
        "num_chains": positive_int("num_chains", num_chains),
    }
    costs = _run_child("--gradient", spec, timeout)
    return {name: GradientCost(**cost) for name, cost in costs.items()}


def _run_child(option: str, spec: dict[str, Any], timeout: float) -> Any:
    """``python -m gmm_utils.benchmark <option> <spec>`` in a new process: its JSON answer.

    Raises ``RuntimeError`` with the child's last line of error output if it fails.
    """
    command = [sys.executable, "-m", "gmm_utils.benchmark", option, json.dumps(spec)]
    environment = dict(os.environ)
    environment.pop("XLA_FLAGS", None)  # the new process sets its own
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=environment
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from error
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or ["failed"]
        raise RuntimeError(last[0])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _run_in_subprocess(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One benchmark row in a new process; a failure becomes the row's ``error``."""
    try:
        return _run_child("--row", spec, timeout)
    except RuntimeError as error:
        return {**spec, "error": str(error)}


def run_pymc(
    python: str | os.PathLike[str],
    *,
    init: str = "auto",
    cores: int | None = None,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 2000,
    seed: int = 0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Fit the same model with PyMC's NUTS in another Python (its own virtual environment).

    Runs ``bench/pymc_gmm.py`` with ``python`` on the seed data, ordered means and the
    book's priors, and scores its draws with this environment's ArviZ, exactly as the
    NumPyro fits are scored. The wall time covers ``pm.sample`` (PyMC compiles its log
    density inside it); the script first runs a short fit so that PyTensor's on-disk
    compilation cache is warm, as it is for anyone who has run the model once.

    Parameters
    ----------
    python : path
        A Python with PyMC installed (``make bench`` creates ``.venv-bench``).
    init : str
        PyMC's ``init``: ``"auto"`` (its default, ``jitter+adapt_diag``) or
        ``"jitter+adapt_full"``.
    cores : int, optional
        PyMC's ``cores``; ``None`` keeps its default (``cpu_count() // 2``, capped at 4).
    num_chains, num_warmup, num_samples, seed
        As for the NumPyro fits.
    timeout : float
        Seconds before giving up.

    Returns
    -------
    dict
        ``sampler``, ``wall_s``, ``warmup_compile_s`` (the short fit that warmed the
        cache), ``mean_steps``, ``min_ess_bulk``, ``min_ess_tail``, ``ess_per_s``,
        ``max_rhat``, ``divergences``, ``cores``, ``versions``; or ``error``.
    """
    import arviz as az


    with tempfile.TemporaryDirectory() as folder:
        data_path, out_path = Path(folder) / "x.npy", Path(folder) / "out.npz"
        np.save(data_path, simulate_gmm().x)
        command = [
            str(python),
            str(_BENCH_SCRIPT),
            str(data_path),
            str(out_path),
            "--chains",
            str(num_chains),
            "--tune",
            str(num_warmup),
            "--draws",
            str(num_samples),
            "--seed",
            str(seed),
            "--init",
            init,
            "--warm-cache",
        ] + (["--cores", str(cores)] if cores else [])
        label = f"PyMC NUTS, init={init}" + (
            f", cores={cores}" if cores else ", default cores"
        )
        load_before = os.getloadavg()[0]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"sampler": label, "error": f"timed out after {timeout:.0f} s"}
        except OSError as error:  # no such Python
            return {"sampler": label, "error": f"cannot run {python}: {error}"}
        if result.returncode != 0 or not out_path.exists():
            tail = result.stderr.strip().splitlines()[-1:] or ["failed"]
            return {"sampler": label, "error": tail[0]}
        draws = np.load(out_path)
        meta = json.loads(str(draws["meta"]))
    idata = az.from_dict(
        posterior={name: draws[name] for name in ("weights", "locs", "scales")},
        sample_stats={"diverging": draws["diverging"]},
    )
    idata.posterior.attrs["sampling_time"] = meta["wall"]
    summary = fit_summary(idata)
    return {
        "sampler": label,
        "wall_s": meta["wall"],
        "warmup_compile_s": meta["warm_cache_s"],
        "mean_steps": float(np.mean(draws["n_steps"])),
        "min_ess_bulk": summary["min_ess_bulk"],
        "min_ess_tail": summary["min_ess_tail"],
        "ess_per_s": summary["ess_per_second"],
        "max_rhat": summary["max_rhat"],
        "divergences": summary["divergences"],
        "cores": meta["cores"],
        "versions": {"pymc": meta["pymc"], "pytensor": meta["pytensor"]},
        "load": (load_before + os.getloadavg()[0]) / 2,
    }


#: The chain methods the standard plan tries for each formulation (``complete=False``).
STANDARD_CHAIN_METHODS = {
    "marginal": ("parallel", "vectorized", "sequential"),
    "mixture_same_family": ("parallel", "vectorized"),
}


def benchmark_plan(
    *,
    formulations: Iterable[str] = FORMULATIONS,
    chain_methods: Iterable[str] = CHAIN_METHODS,
    complete: bool = False,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 2000,
    grid_warmup: int = 500,
    grid_samples: int = 1000,
    n_subset: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The fits the benchmark runs, as :func:`timed_fit` arguments (plus ``role``).

    First the book's main fit (the marginal model, chains in parallel) at the full
    setting, twice on one fresh persistent compilation cache: ``"main, cold cache"`` then
    ``"main, warm cache"``; then once more with JAX's default reductions (YNNPACK, see
    :func:`gmm_utils.use_xla_reductions`), which compiles anew. Then the other formulations on a shorter run (``grid_warmup``
    + ``grid_samples`` draws per chain), each with its chains in parallel; the main
    formulation also with vectorized and sequential chains, ``MixtureSameFamily`` also
    vectorized. With ``complete=True``, every formulation with every chain method (about
    twice as long: NumPyro compiles the vectorized and sequential chains' initialization
    one operation at a time). ``DiscreteHMCGibbs`` sees the first ``n_subset`` points only
    (its label sweep costs ``O(n^2 k)``), and the Gibbs kernels cannot run chains
    ``"vectorized"``.
    """
    formulations, chain_methods = list(formulations), list(chain_methods)
    for name in formulations:
        if name not in FORMULATIONS:
            raise ValueError(
                f"unknown formulation {name!r}; choose from {FORMULATIONS}"
            )
    for name in chain_methods:
        if name not in CHAIN_METHODS:
            raise ValueError(
                f"unknown chain method {name!r}; choose from {CHAIN_METHODS}"
            )
    common = {"num_chains": num_chains, "seed": seed}
    main = {
        "formulation": "marginal",
        "chain_method": "parallel",
        "num_warmup": num_warmup,
        "num_samples": num_samples,
    }
    plan = [
        {"role": "main, cold cache", **main, **common},
        {"role": "main, warm cache", **main, **common},
        {
            "role": "main, YNNPACK, cold cache",
            **main,
            **common,
            "xla_reductions": False,
        },
    ]
    for formulation in formulations:
        methods = (
            chain_methods
            if complete
            else STANDARD_CHAIN_METHODS.get(formulation, ("parallel",))
        )
        for method in methods:
            if method not in chain_methods:
                continue
            if (
                formulation in ("blocked_gibbs", "discrete_gibbs")
                and method == "vectorized"
            ):
                continue
            if formulation == "marginal" and method == "parallel":
                continue  # the main fit above is this row
            row = {
                "role": "grid",
                "formulation": formulation,
                "chain_method": method,
                **common,
                "num_warmup": grid_warmup,
                "num_samples": grid_samples,
            }
            if formulation == "discrete_gibbs":
                row["n_subset"] = n_subset
            plan.append(row)
    return plan


def run_benchmark(
    plan: Sequence[dict[str, Any]],
    *,
    pymc_python: str | os.PathLike[str] | None = None,
    pymc_variants: Sequence[dict[str, Any]] = ({"init": "auto"},),
    timeout: float = 300.0,
    report: Callable[[str], None] | None = None,
    gradients: bool = True,
) -> dict[str, Any]:
    """Run the benchmark: each fit of ``plan`` in a fresh Python process, then PyMC.

    A fresh process per fit is what a reader pays for one fit in a new kernel: nothing
    compiled by an earlier fit is reused, except through the persistent cache of the
    ``"main"`` rows, which share one new cache directory.

    Parameters
    ----------
    plan : sequence of dict
        From :func:`benchmark_plan`.
    pymc_python : path, optional
        A Python with PyMC (see :func:`run_pymc`); ``None`` skips PyMC.
    pymc_variants : sequence of dict
        Keyword arguments of :func:`run_pymc`, one PyMC fit each.
    timeout : float
        Seconds allowed per fit.
    report : callable, optional
        Called with a line of progress after each fit (the command line prints it).
    gradients : bool
        Also time one gradient of each likelihood in two fresh processes, with XLA's own
        reductions and with JAX's default (:func:`gradient_cost_in_fresh_process`), for
        the chapters' claims about them (see :func:`timing_claims`).

    Returns
    -------
    dict
        ``machine`` (platform, cores, load averages, versions), ``rows`` (one dict per
        NumPyro fit, see :func:`timed_fit`), ``pymc`` (one dict per PyMC fit),
        ``gradients`` (``{"xla": {likelihood: GradientCost fields}, "ynnpack": ...}``, or
        an ``error``), ``summary`` (the main fit's ESS/s against PyMC's default) and
        ``claims`` (:func:`timing_claims`).
    """
    from .display import package_versions

    start = time.perf_counter()
    machine = {
        "platform": platform.platform(terse=True),
        "processor": platform.processor() or platform.machine(),
        "cores": usable_cores(),
        "load_at_start": list(os.getloadavg()),
        "versions": package_versions(("jax", "jaxlib", "numpyro", "arviz", "numpy")),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="gmm-bench-cache-") as cache_dir:
        for spec in plan:
            child = {key: value for key, value in spec.items() if key != "role"}
            if spec["role"].startswith("main"):
                child["cache_dir"] = cache_dir
            row = {"role": spec["role"], **_run_in_subprocess(child, timeout)}
            rows.append(row)
            if report:
                report(_progress_line(row))
    pymc_rows = []
    if pymc_python is not None:
        num = {
            key: plan[0][key]
            for key in ("num_chains", "num_warmup", "num_samples", "seed")
        }
        for variant in pymc_variants:
            row = run_pymc(pymc_python, timeout=timeout * 2, **num, **variant)
            pymc_rows.append(row)
            if report:
                report(_progress_line(row))
    gradient_costs: dict[str, Any] = {}
    if gradients:
        for key, names, xla in (
            ("xla", LIKELIHOODS, True),
            ("ynnpack", ("mixture_gaussian", "fused"), False),
        ):
            try:
                costs = gradient_cost_in_fresh_process(
                    names, xla_reductions=xla, timeout=timeout
                )
                gradient_costs[key] = {
                    name: dataclasses.asdict(cost) for name, cost in costs.items()
                }
            except RuntimeError as error:
                gradient_costs[key] = {"error": str(error)}
            if report:
                report(
                    f"gradients ({key}): "
                    + ", ".join(
                        f"{name} {cost['cpu_us']:.1f} CPU us"
                        for name, cost in gradient_costs[key].items()
                        if isinstance(cost, dict)
                    )
                    if "error" not in gradient_costs[key]
                    else f"gradients ({key}): ERROR {gradient_costs[key]['error']}"
                )
    machine["load_at_end"] = list(os.getloadavg())
    machine["benchmark_seconds"] = time.perf_counter() - start
    result = {
        "machine": machine,
        "rows": rows,
        "pymc": pymc_rows,
        "gradients": gradient_costs,
        "summary": _summary(rows, pymc_rows),
    }
    result["claims"] = timing_claims(result)
    return result


def _sampling_s_per_gradient(row: dict[str, Any]) -> float:
    """Wall seconds of sampling (compilation excluded) per leapfrog step of a fit."""
    return (row["wall_s"] - row["compile_s"]) / row["gradients"]


def timing_claims(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The chapters' statements that one timing is smaller than another, checked on this run.

    Two timings a few tens of percent apart can swap places under ordinary noise, so the
    chapters do not assert their order (they glue what they measured and assert counts:
    gradients, leapfrog steps, effective sample sizes); the benchmark, run on a quiet
    machine, checks each such statement here instead. ``make bench`` fails when one does
    not hold.

    Parameters
    ----------
    result : dict
        From :func:`run_benchmark` (``rows`` and ``gradients`` are read).

    Returns
    -------
    list of dict
        One per statement: ``chapter``, ``claim``, ``smaller`` and ``larger`` (the two
        values, ``smaller`` expected below ``larger``), ``unit``, and ``holds`` (``True``,
        ``False``, or ``None`` when the run lacks a row or gradient it needs).
    """
    rows = {
        (row.get("role"), row.get("formulation"), row.get("chain_method")): row
        for row in result.get("rows", [])
        if "error" not in row
    }

    def row_of(role: str, formulation: str = "marginal", method: str = "parallel") -> Any:
        return rows.get((role, formulation, method))

    gradients = result.get("gradients", {})

    def cpu_us(setting: str, likelihood: str) -> float | None:
        cost = gradients.get(setting, {}).get(likelihood)
        return cost["cpu_us"] if isinstance(cost, dict) else None

    cold = row_of("main, cold cache")
    warm = row_of("main, warm cache")
    ynnpack = row_of("main, YNNPACK, cold cache")
    msf = row_of("grid", "mixture_same_family")
    vectorized = row_of("grid", "marginal", "vectorized")
    sequential = row_of("grid", "marginal", "sequential")

    def pick(row: Any, value: Callable[[dict[str, Any]], float]) -> float | None:
        return None if row is None else value(row)

    fused_xla = cpu_us("xla", "fused")
    candidates = [
        (7, "MixtureSameFamily's gradient costs more than MixtureGaussian's",
         cpu_us("xla", "mixture_gaussian"), cpu_us("xla", "mixture_same_family"), "CPU us"),
        (7, "XLA's own reductions make MixtureGaussian's gradient cheaper than YNNPACK's",
         cpu_us("xla", "mixture_gaussian"), cpu_us("ynnpack", "mixture_gaussian"), "CPU us"),
        (7, "with YNNPACK's reductions the hand-fused gradient is cheaper than MixtureGaussian's",
         cpu_us("ynnpack", "fused"), cpu_us("ynnpack", "mixture_gaussian"), "CPU us"),
        (7, "with XLA's reductions the hand-fused gradient is not 10% cheaper than MixtureGaussian's",
         0.9 * cpu_us("xla", "mixture_gaussian") if cpu_us("xla", "mixture_gaussian") else None,
         fused_xla, "CPU us (0.9 x MixtureGaussian's)"),
        (7, "the main fit from a warm cache takes less wall time than from a cold one",
         pick(warm, lambda row: row["wall_s"]), pick(cold, lambda row: row["wall_s"]), "s"),
        (7, "a warm cache removes at least half of the main fit's compilation",
         pick(warm, lambda row: row["compile_s"]),
         pick(cold, lambda row: 0.5 * row["compile_s"]), "s (half the cold compile)"),
        (7, "the main fit buys more ESS per second with XLA's reductions than with YNNPACK's",
         pick(ynnpack, lambda row: row["ess_per_s"]), pick(cold, lambda row: row["ess_per_s"]),
         "ESS/s"),
        (7, "inside the sampler a MixtureSameFamily leapfrog step costs less than its gradient timed alone",
         pick(msf, lambda row: row["step_cpu_us"]), pick(msf, lambda row: row["gradient_us"]),
         "CPU us"),
        (8, "parallel chains sample faster than vectorized ones (per leapfrog step)",
         pick(warm, _sampling_s_per_gradient), pick(vectorized, _sampling_s_per_gradient),
         "s per step"),
        (8, "parallel chains sample faster than sequential ones (per leapfrog step)",
         pick(warm, _sampling_s_per_gradient), pick(sequential, _sampling_s_per_gradient),
         "s per step"),
    ]
    claims = []
    for chapter, claim, smaller, larger, unit in candidates:
        known = smaller is not None and larger is not None
        claims.append(
            {
                "chapter": chapter,
                "claim": claim,
                "smaller": smaller,
                "larger": larger,
                "unit": unit,
                "holds": (bool(smaller < larger) if known else None),
            }
        )
    return claims


def _role_key(role: str) -> str:
    """``"main, YNNPACK, cold cache"`` -> ``"ynnpack_cold_cache"``."""
    return re.sub(r"[^a-z]+", "_", role.split(", ", 1)[1].lower()).strip("_")


def _summary(
    rows: Sequence[dict[str, Any]], pymc_rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    main = {
        row["role"]: row
        for row in rows
        if row["role"].startswith("main") and "error" not in row
    }
    summary: dict[str, Any] = {}
    for role, row in main.items():
        key = _role_key(role)
        summary[f"main_{key}_ess_per_s"] = row["ess_per_s"]
        summary[f"main_{key}_efficiency"] = row["efficiency"]
        summary[f"main_{key}_max_rhat"] = row["max_rhat"]
    default = next(
        (
            row
            for row in pymc_rows
            if "error" not in row
            and row["sampler"].endswith("default cores")
            and "init=auto" in row["sampler"]
        ),
        None,
    )
    if default is not None:
        summary["pymc_default_ess_per_s"] = default["ess_per_s"]
        for role, row in main.items():
            key = _role_key(role)
            summary[f"speedup_{key}"] = row["ess_per_s"] / default["ess_per_s"]
    return summary


def _progress_line(row: dict[str, Any]) -> str:
    name = (
        row.get("sampler")
        or f"{row.get('role', '')}: {row.get('formulation')} / {row.get('chain_method')}"
    )
    if "error" in row:
        return f"{name}: ERROR {row['error']}"
    return f"{name}: wall {row['wall_s']:.1f} s, ESS/s {row['ess_per_s']:.0f}, R-hat {row['max_rhat']:.3f}"


def format_table(result: dict[str, Any]) -> str:
    """The benchmark's result as a plain-text table (what ``make bench`` prints)."""
    columns = (
        ("n", 6, "n", "d"),
        ("wall s", 7, "wall_s", ".2f"),
        ("compile s", 9, "compile_s", ".2f"),
        ("grad us", 8, "gradient_us", ".1f"),
        ("step us", 8, "step_cpu_us", ".1f"),
        ("steps", 6, "mean_steps", ".2f"),
        ("gradients", 9, "gradients", "d"),
        ("bound s", 7, "bound_s", ".2f"),
        ("effic.", 6, "efficiency", ".2f"),
        ("min ESS", 8, "min_ess_bulk", ".0f"),
        ("ESS/s", 7, "ess_per_s", ".0f"),
        ("R-hat", 6, "max_rhat", ".3f"),
        ("div", 4, "divergences", ""),
    )

    def line(name: str, row: dict[str, Any]) -> str:
        cells = []
        for _, width, key, spec in columns:
            value = row.get(key)
            cells.append(
                f"{'':>{width}}" if value is None else f"{value:>{width}{spec}}"
            )
        return f"{name:<36} " + " ".join(cells)

    header = f"{'fit':<36} " + " ".join(
        f"{title:>{width}}" for title, width, _, _ in columns
    )
    lines = [header, "-" * len(header)]
    for row in result["rows"]:
        name = f"{row.get('formulation')} / {row.get('chain_method')}"
        if row["role"].startswith("main"):
            name = f"MAIN ({row['role'].split(', ', 1)[1]})"
        lines.append(
            f"{name:<36} ERROR: {row['error']}" if "error" in row else line(name, row)
        )
    for row in result["pymc"]:
        name = row["sampler"]
        lines.append(
            f"{name:<36} ERROR: {row['error']}"
            if "error" in row
            else line(name, {"n": 2500, **row})
        )
    machine = result["machine"]
    lines.append("")
    lines.append(
        f"{machine['cores']} cores, load average {machine['load_at_start'][0]:.2f} at start, "
        f"{machine['load_at_end'][0]:.2f} at end; {machine['benchmark_seconds']:.0f} s in all."
    )
    for key, value in result["summary"].items():
        lines.append(f"{key}: {value:.3g}")
    claims = result.get("claims", [])
    if claims:
        lines.append("")
        lines.append("Timing claims of the chapters (the smaller value first):")
        for claim in claims:
            verdict = {True: "holds", False: "FAILS", None: "not run"}[claim["holds"]]
            values = (
                f" ({claim['smaller']:.4g} < {claim['larger']:.4g} {claim['unit']})"
                if claim["holds"] is not None
                else ""
            )
            lines.append(f"  [{verdict}] chapter {claim['chapter']}: {claim['claim']}{values}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m gmm_utils.benchmark [--quick] [--json PATH] [--pymc-python PATH]``."""
    parser = argparse.ArgumentParser(
        prog="python -m gmm_utils.benchmark",
        description="Time the book's formulations and chain methods; compare with PyMC.",
    )
    parser.add_argument(
        "--json", type=Path, help="also write the results to this JSON file"
    )
    parser.add_argument(
        "--pymc-python",
        help="a Python with PyMC installed (e.g. .venv-bench/bin/python)",
    )
    parser.add_argument(
        "--pymc-full",
        action="store_true",
        help="also time PyMC with cores=2 and adapt_full",
    )
    parser.add_argument("--formulations", default=",".join(FORMULATIONS))
    parser.add_argument("--chain-methods", default=",".join(CHAIN_METHODS))
    parser.add_argument(
        "--complete",
        action="store_true",
        help="every formulation with every chain method (about twice as long)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny runs, to check that everything works"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per fit"
    )
    parser.add_argument(
        "--row", help=argparse.SUPPRESS
    )  # internal: run one fit, print JSON
    parser.add_argument(
        "--gradient", help=argparse.SUPPRESS
    )  # internal: time gradients, print JSON
    args = parser.parse_args(argv)

    if args.row or args.gradient:
        from .devices import set_host_device_count, use_xla_reductions

        spec = json.loads(args.row or args.gradient)
        set_host_device_count(spec.get("num_chains", 4))
        if spec.pop("xla_reductions", True):
            use_xla_reductions()
        if args.gradient:
            print(json.dumps(_child_gradients(spec)))
        else:
            print(json.dumps(_child_row(spec)))
        return 0

    sizes = {
        "num_warmup": 1000,
        "num_samples": 2000,
        "grid_warmup": 500,
        "grid_samples": 1000,
    }
    if args.quick:
        sizes = {
            "num_warmup": 50,
            "num_samples": 50,
            "grid_warmup": 20,
            "grid_samples": 20,
        }
    plan = benchmark_plan(
        formulations=[name for name in args.formulations.split(",") if name],
        chain_methods=[name for name in args.chain_methods.split(",") if name],
        complete=args.complete,
        **sizes,
    )
    variants: list[dict[str, Any]] = [{"init": "auto"}]
    if args.pymc_full:
        variants += [{"init": "auto", "cores": 2}, {"init": "jitter+adapt_full"}]
    if args.quick:
        variants = [{"init": "auto"}]

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run_benchmark(
        plan,
        pymc_python=args.pymc_python,
        pymc_variants=variants,
        timeout=args.timeout,
        report=report,
    )
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=float))
    failed = [claim for claim in result["claims"] if claim["holds"] is False]
    if failed and not args.quick:  # --quick's tiny runs time nothing worth comparing
        print(
            f"{len(failed)} timing claim(s) of the chapters failed on this run; on a busy "
            "machine (see the load average above) run `make bench` again when it is quiet.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
