r"""Three ways to fit the latent formulation (one label ``z`` per point) with NumPyro.

Each runner fits :func:`gmm_utils.latent_model` and returns ``arviz.InferenceData`` in the
same form as :func:`gmm_utils.run_nuts`, taking the model's arguments as one mapping and the
:class:`gmm_utils.SamplerOptions` as keywords, so chapters 2 and 3 compare them in one
:func:`gmm_utils.compare_fits` table, under one :data:`COMPARISON_PROTOCOL`.

``run_discrete_gibbs``
    ``DiscreteHMCGibbs``: NUTS for the continuous parameters, then one Gibbs sweep over
    the labels, one label at a time, :math:`O(n^2 k)` per sweep.
``run_blocked_gibbs``
    ``HMCGibbs``: NUTS for the continuous parameters, then all labels at once from their
    exact conditional (the responsibilities), :math:`O(n k)` per sweep.
``run_enumerated``
    ``config_enumerate`` + NUTS: NumPyro (through funsor) sums the labels out.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.contrib.funsor import config_enumerate
from numpyro.handlers import condition
from numpyro.infer import DiscreteHMCGibbs, HMCGibbs
from numpyro.infer.gibbs import DiscreteGibbs

from ._validation import finite_vector, positive_int
from .distributions import component_log_densities
from .inference import NUTS_EXTRA_FIELDS, SamplerOptions, nuts_kernel, run_mcmc, run_nuts
from .models import latent_model

#: Per-draw statistics of the NUTS block inside the Gibbs kernels.
GIBBS_EXTRA_FIELDS = tuple(f"hmc_state.{field}" for field in NUTS_EXTRA_FIELDS)

#: The sampler options by which chapters 2 and 3 compare every formulation (keywords of
#: :class:`gmm_utils.SamplerOptions`): the same chains, warm-up, draws and seed for each.
COMPARISON_PROTOCOL: Mapping[str, int] = {"num_chains": 4, "num_warmup": 500, "num_samples": 1000, "seed": 42}


def label_conditional_gibbs_fn(x: Any) -> Callable[..., dict[str, jax.Array]]:
    r"""A ``gibbs_fn`` for ``HMCGibbs`` that draws every label from its exact conditional.

    Given the parameters, the labels are independent, and each follows

    .. math::
        P(z_i = j \mid x_i, w, \mu, \sigma)
        = \frac{w_j\, \mathcal{N}(x_i \mid \mu_j, \sigma_j)}
               {\sum_l w_l\, \mathcal{N}(x_i \mid \mu_l, \sigma_l)},

    so one vectorized categorical draw updates all ``n`` labels at once.

    Parameters
    ----------
    x : array_like, shape (n,)
        The observations the model conditions on.

    Returns
    -------
    callable
        ``gibbs_fn(rng_key, gibbs_sites, hmc_sites) -> {"z": labels}`` with labels of
        shape ``(n,)``; ``hmc_sites`` must hold ``weights``, ``locs`` and ``scales``.
    """
    x = jnp.asarray(finite_vector("x", x))

    def gibbs_fn(rng_key: jax.Array, gibbs_sites: dict[str, Any], hmc_sites: dict[str, Any]) -> dict[str, jax.Array]:
        logits = component_log_densities(x, hmc_sites["weights"], hmc_sites["locs"], hmc_sites["scales"])  # (n, k)
        labels = jax.random.categorical(rng_key, logits, axis=-1)
        return {"z": labels.astype(gibbs_sites["z"].dtype)}

    return gibbs_fn


def discrete_gibbs_kernel(
    model: Callable[..., Any] = latent_model, *, modified: bool = False, **options: Any
) -> DiscreteHMCGibbs:
    """NumPyro's ``DiscreteHMCGibbs`` around the book's NUTS kernel: what :func:`run_discrete_gibbs` samples with.

    ``options`` go to :func:`gmm_utils.nuts_kernel`; ``modified`` to ``DiscreteHMCGibbs``.
    """
    return DiscreteHMCGibbs(nuts_kernel(model, **options), modified=modified)


def blocked_gibbs_kernel(x: Any, model: Callable[..., Any] = latent_model, **options: Any) -> HMCGibbs:
    """NumPyro's ``HMCGibbs``: NUTS for the parameters, the labels from their exact conditional.

    What :func:`run_blocked_gibbs` samples with; ``options`` go to :func:`gmm_utils.nuts_kernel`.
    """
    return HMCGibbs(nuts_kernel(model, **options), gibbs_fn=label_conditional_gibbs_fn(x), gibbs_sites=["z"])


def _run_gibbs(kernel: Any, model_kwargs: Mapping[str, Any], keep_labels: bool, options: Any) -> az.InferenceData:
    exclude = () if keep_labels else ("z",)
    return run_mcmc(kernel, model_kwargs, extra_fields=GIBBS_EXTRA_FIELDS, exclude_sites=exclude, **options)


def _observations(model_kwargs: Mapping[str, Any]) -> Any:
    if not isinstance(model_kwargs, Mapping) or "x" not in model_kwargs:
        raise ValueError(f"`model_kwargs` must be a mapping with the observations `x`, got {model_kwargs!r}")
    return model_kwargs["x"]


def run_discrete_gibbs(
    model_kwargs: Mapping[str, Any],
    *,
    model: Callable[..., Any] = latent_model,
    modified: bool = False,
    keep_labels: bool = False,
    **options: Any,
) -> az.InferenceData:
    """Fit the latent model with ``DiscreteHMCGibbs``: NUTS, then a Gibbs sweep over the labels.

    Each iteration takes one NUTS step for ``weights``, ``locs`` and ``scales`` given the
    labels, then updates the labels one at a time, each from its conditional, which NumPyro
    finds by evaluating the model once per alternative label: ``O(n^2 k)`` per sweep.

    Parameters
    ----------
    model_kwargs : mapping
        The model's arguments, with the observations: ``{"x": x, "k": 3, "ordered": True}``.
    model : callable
        A model with a discrete site ``z``; default :func:`gmm_utils.latent_model`.
    modified : bool
        Liu's modified (Metropolised) Gibbs proposal, passed to ``DiscreteHMCGibbs``.
    keep_labels : bool
        Store the sampled labels ``z`` ``(chains, draws, n)`` in the posterior.
    **options
        :class:`gmm_utils.SamplerOptions`; ``init_strategy`` places the continuous
        parameters (the labels' Gibbs update comes first in each iteration).

    Returns
    -------
    arviz.InferenceData
        As from :func:`gmm_utils.run_nuts`; ``sample_stats`` describe the NUTS block.
    """
    _observations(model_kwargs)
    return _run_gibbs(discrete_gibbs_kernel(model, modified=modified, **options), model_kwargs, keep_labels, options)


def run_blocked_gibbs(
    model_kwargs: Mapping[str, Any],
    *,
    model: Callable[..., Any] = latent_model,
    keep_labels: bool = False,
    **options: Any,
) -> az.InferenceData:
    """Fit the latent model with ``HMCGibbs``: NUTS, then all labels from their exact conditional.

    As :func:`run_discrete_gibbs` (without ``modified``), the labels drawn at once by
    :func:`label_conditional_gibbs_fn`; ``model`` must name its sites as
    :func:`gmm_utils.latent_model` does and have Normal components.
    """
    kernel = blocked_gibbs_kernel(_observations(model_kwargs), model, **options)
    return _run_gibbs(kernel, model_kwargs, keep_labels, options)


def run_enumerated(
    model_kwargs: Mapping[str, Any] | None = None, *, model: Callable[..., Any] = latent_model, **options: Any
) -> az.InferenceData:
    """Fit the latent model with NUTS after ``config_enumerate``: NumPyro sums ``z`` out.

    NUTS then evaluates the log density with the labels summed out (funsor's variable
    elimination), so it samples the posterior of the marginal model, written by NumPyro.
    Arguments as in :func:`gmm_utils.run_nuts`.
    """
    return run_nuts(config_enumerate(model), model_kwargs, **options)


def time_label_sweep(
    x: Any,
    weights: Any,
    locs: Any,
    scales: Any,
    *,
    repeats: int = 3,
    seed: int = 0,
    model: Callable[..., Any] = latent_model,
    clock: str = "wall",
) -> float:
    """Seconds per label sweep of ``DiscreteHMCGibbs`` on the data ``x``, measured.

    Runs NumPyro's own ``DiscreteGibbs`` kernel (the label half of ``DiscreteHMCGibbs``)
    on the latent model with the parameters fixed, compiles its sweep once, and times
    ``repeats`` sweeps. One sweep updates all ``n`` labels, each by evaluating the
    model's log density at every alternative label: ``n * (k - 1)`` evaluations of cost
    ``O(n)``.

    Parameters
    ----------
    x : array_like, shape (n,)
        The observations.
    weights, locs, scales : array_like, shape (k,)
        Where to hold the parameters (e.g. posterior means); the cost barely depends on it.
    repeats : int
        Sweeps timed after the compiling one; the fastest is returned.
    seed : int
        Seed of the initial labels and the sweeps.
    model : callable
        Default :func:`gmm_utils.latent_model`.
    clock : {"wall", "cpu"}
        ``"wall"``: elapsed seconds. ``"cpu"``: CPU seconds of this process
        (``time.process_time``), which do not count the time spent waiting for a core
        that other programs hold: on a shared machine, the steadier measure of what a
        sweep costs. They do add up the threads XLA may spread one sweep over, so on an
        idle machine they can exceed the wall seconds.

    Returns
    -------
    float
        Seconds per sweep, compilation excluded.
    """
    x = jnp.asarray(finite_vector("x", x))
    repeats = positive_int("repeats", repeats)
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    if clock not in clocks:
        raise ValueError(f"`clock` must be 'wall' or 'cpu', got {clock!r}")
    now = clocks[clock]
    names = ("weights", "locs", "scales")
    fixed = {name: jnp.asarray(value, dtype=x.dtype) for name, value in zip(names, (weights, locs, scales))}
    model_kwargs = {"x": x, "k": int(fixed["locs"].shape[-1])}
    kernel = DiscreteGibbs(condition(model, data=fixed))
    # Compiled, the start costs a third of its op-by-op (eager) CPU time.
    state = jax.jit(lambda key: kernel.init(key, 0, None, (), model_kwargs))(jax.random.PRNGKey(seed))
    sweep = jax.jit(lambda current: kernel.sample(current, (), model_kwargs))
    state = jax.block_until_ready(sweep(state))  # compile
    timings = []
    for _ in range(repeats):
        start = now()
        state = jax.block_until_ready(sweep(state))
        timings.append(now() - start)
    return min(timings)


def project_discrete_gibbs(
    blocked: Mapping[str, float], sweep_seconds: float, *, cores: int | None = None, **options: Any
) -> dict[str, float]:
    """The :func:`gmm_utils.fit_summary` of ``DiscreteHMCGibbs`` on data it was not run on, projected.

    Given the parameters the labels are independent, so the one-at-a-time sweep from the
    exact conditionals is the same Markov chain as the blocked update: it reaches the
    blocked fit's ESS and R-hat, and pays one label sweep (:func:`time_label_sweep`) per
    chain and iteration on top of the blocked fit's sampling time, with the chains sharing
    ``cores`` cores perfectly (optimistic).

    Parameters
    ----------
    blocked : mapping
        :func:`gmm_utils.fit_summary` of the blocked Gibbs fit on the same data and options.
    sweep_seconds : float
        Seconds per label sweep (CPU seconds make the projection the sweeps' total work).
    cores : int, optional
        Cores the chains share; default ``min(usable_cores(), num_chains)``.
    **options
        The blocked fit's :class:`gmm_utils.SamplerOptions` (chains, warm-up and draws count).

    Returns
    -------
    dict
        ``blocked`` with ``run_time`` increased by the sweeps, ``ess_per_run_second``
        recomputed, and ``sweep_time`` (the seconds added); wall time and compilation are NaN.
    """
    from .devices import usable_cores

    if not (np.isfinite(sweep_seconds) and sweep_seconds > 0):
        raise ValueError(f"`sweep_seconds` must be a positive number, got {sweep_seconds!r}")
    settings = SamplerOptions(**options)
    cores = min(usable_cores(), settings.num_chains) if cores is None else positive_int("cores", cores)
    sweep_time = float(sweep_seconds) * (settings.num_warmup + settings.num_samples) * settings.num_chains / cores
    run_time = float(blocked["run_time"]) + sweep_time
    nan = float("nan")
    projected = dict(blocked, wall_time=nan, compile_time=nan, ess_per_second=nan, sweep_time=sweep_time)
    projected.update(run_time=run_time, ess_per_run_second=float(blocked["min_ess_bulk"]) / run_time)
    return projected
