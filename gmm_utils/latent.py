r"""Three ways to fit the latent formulation (one label ``z`` per point) with NumPyro.

Each runner fits :func:`gmm_utils.latent_model` and returns ``arviz.InferenceData`` in the
same form as :func:`gmm_utils.run_nuts` (same groups, the pointwise *marginal*
log-likelihood, the compilation and the sampling after compilation timed apart in
``posterior.attrs``), so chapters 2 and 3 compare them with one
:func:`gmm_utils.compare_fits` table, under one :data:`COMPARISON_PROTOCOL`.

``run_discrete_gibbs``
    ``DiscreteHMCGibbs``: NUTS for the continuous parameters, then one Gibbs sweep over
    the labels, one label at a time. Each single-label update evaluates the whole model
    once per alternative label, so a sweep costs :math:`O(n^2 k)`.
``run_blocked_gibbs``
    ``HMCGibbs``: NUTS for the continuous parameters, then all labels at once from their
    exact conditional (the responsibilities), :math:`O(n k)` per sweep.
``run_enumerated``
    ``config_enumerate`` + NUTS: NumPyro (through funsor) sums the labels out, so NUTS
    samples the same marginal posterior as :func:`gmm_utils.marginal_model`.
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
from .distributions import MixtureGaussian
from .inference import NUTS_EXTRA_FIELDS, nuts_kernel, run_mcmc, run_nuts
from .models import latent_model

#: Per-draw statistics of the NUTS block inside the Gibbs kernels.
GIBBS_EXTRA_FIELDS = tuple(
    f"hmc_state.{field}" for field in NUTS_EXTRA_FIELDS + ("potential_energy",)
)

#: The sampling protocol by which chapters 2 and 3 compare every formulation: the same
#: chains, warm-up, kept draws and seed for each sampler, so that the two chapters fit the
#: same chains and report the same ratios (up to the noise of timing on a shared machine).
COMPARISON_PROTOCOL: dict[str, int] = {"num_chains": 4, "num_warmup": 500, "num_samples": 1000, "seed": 42}


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

    def gibbs_fn(
        rng_key: jax.Array, gibbs_sites: dict[str, Any], hmc_sites: dict[str, Any]
    ) -> dict[str, jax.Array]:
        mixture = MixtureGaussian(hmc_sites["locs"], hmc_sites["scales"], hmc_sites["weights"])
        logits = mixture.component_log_probs(x)  # (n, k): log w_j + log N(x_i | ...)
        labels = jax.random.categorical(rng_key, logits, axis=-1)
        return {"z": labels.astype(gibbs_sites["z"].dtype)}

    return gibbs_fn


def discrete_gibbs_kernel(model: Callable[..., Any] = latent_model, *, modified: bool = False, **nuts_options: Any) -> DiscreteHMCGibbs:
    """NumPyro's ``DiscreteHMCGibbs`` around the book's NUTS kernel: what :func:`run_discrete_gibbs` samples with.

    ``nuts_options`` go to :func:`gmm_utils.nuts_kernel` (``target_accept_prob``,
    ``dense_mass``, ``init_strategy``); ``modified`` to ``DiscreteHMCGibbs``.
    """
    return DiscreteHMCGibbs(nuts_kernel(model, **nuts_options), modified=modified)


def blocked_gibbs_kernel(x: Any, model: Callable[..., Any] = latent_model, **nuts_options: Any) -> HMCGibbs:
    """NumPyro's ``HMCGibbs``: NUTS for the parameters, the labels from their exact conditional.

    What :func:`run_blocked_gibbs` samples with; ``nuts_options`` as in
    :func:`discrete_gibbs_kernel`.
    """
    return HMCGibbs(nuts_kernel(model, **nuts_options), gibbs_fn=label_conditional_gibbs_fn(x), gibbs_sites=["z"])


def _gibbs_run(kernel: Any, x: Any, k: int, keep_labels: bool, sampling: dict[str, Any], model_kwargs: dict[str, Any]) -> az.InferenceData:
    return run_mcmc(
        kernel,
        extra_fields=GIBBS_EXTRA_FIELDS,
        exclude_sites=() if keep_labels else ("z",),
        x=x,
        k=k,
        **sampling,
        **model_kwargs,
    )


def run_discrete_gibbs(
    x: Any,
    k: int = 3,
    *,
    modified: bool = False,
    model: Callable[..., Any] = latent_model,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    target_accept_prob: float = 0.8,
    dense_mass: bool = True,
    init_strategy: Callable[..., Any] | None = None,
    chain_method: str | None = None,
    keep_labels: bool = False,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Fit the latent model with ``DiscreteHMCGibbs``: NUTS, then a Gibbs sweep over labels.

    Each iteration takes one NUTS step for ``weights``, ``locs`` and ``scales`` given the
    labels, then updates the labels one at a time (in random order), each from its
    conditional given everything else. NumPyro finds that conditional generically, by
    evaluating the model's log density once per alternative value, so one sweep costs
    ``n * (k - 1)`` model evaluations of ``O(n)`` each: ``O(n^2 k)``. Use a subset of the
    data when ``n`` is large.

    Parameters
    ----------
    x : array_like, shape (n,)
        The observations.
    k : int
        Number of components.
    modified : bool
        Liu's modified (Metropolised) Gibbs proposal, which never proposes the current
        label; passed to ``DiscreteHMCGibbs``.
    model : callable
        A model with a discrete site ``z``; default :func:`gmm_utils.latent_model`.
    num_chains, num_warmup, num_samples, seed, chain_method
        As in :func:`gmm_utils.run_nuts`. NumPyro's Gibbs kernels cannot run chains
        ``"vectorized"``; the default is ``"parallel"`` with a device per chain, else
        ``"sequential"``.
    target_accept_prob, dense_mass
        Of the NUTS block, as in :func:`gmm_utils.run_nuts` (same defaults, so that a
        comparison with NUTS on a marginalized model uses the same adaptation).
    init_strategy : callable, optional
        Where the continuous parameters start (e.g. :func:`gmm_utils.init_to_data`);
        default NumPyro's ``init_to_uniform``. The labels start from their exact
        conditional given that start: the Gibbs update of ``z`` comes first in each
        iteration.
    keep_labels : bool
        Store the sampled labels ``z`` ``(chains, draws, n)`` in the posterior.
    **model_kwargs
        Passed to the model, e.g. ``ordered=True`` or a ``loc_prior``.

    Returns
    -------
    arviz.InferenceData
        As from :func:`gmm_utils.run_nuts`; ``sample_stats`` describe the NUTS block.
    """
    kernel = discrete_gibbs_kernel(
        model, modified=modified, target_accept_prob=target_accept_prob, dense_mass=dense_mass, init_strategy=init_strategy
    )
    sampling = _sampling_options(num_chains, num_warmup, num_samples, seed, chain_method)
    return _gibbs_run(kernel, x, k, keep_labels, sampling, model_kwargs)


def run_blocked_gibbs(
    x: Any,
    k: int = 3,
    *,
    model: Callable[..., Any] = latent_model,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    target_accept_prob: float = 0.8,
    dense_mass: bool = True,
    init_strategy: Callable[..., Any] | None = None,
    chain_method: str | None = None,
    keep_labels: bool = False,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Fit the latent model with ``HMCGibbs``: NUTS, then all labels from their exact conditional.

    Each iteration takes one NUTS step for ``weights``, ``locs`` and ``scales`` given the
    labels, then draws every label at once from :func:`label_conditional_gibbs_fn`.
    Arguments and return value as in :func:`run_discrete_gibbs` (without ``modified``);
    ``model`` must name its sites as :func:`gmm_utils.latent_model` does and have Normal
    components, since the conditional is written for them.
    """
    kernel = blocked_gibbs_kernel(
        x, model, target_accept_prob=target_accept_prob, dense_mass=dense_mass, init_strategy=init_strategy
    )
    sampling = _sampling_options(num_chains, num_warmup, num_samples, seed, chain_method)
    return _gibbs_run(kernel, x, k, keep_labels, sampling, model_kwargs)


def run_enumerated(
    x: Any,
    k: int = 3,
    *,
    model: Callable[..., Any] = latent_model,
    **options: Any,
) -> az.InferenceData:
    """Fit the latent model with NUTS after ``config_enumerate``: NumPyro sums ``z`` out.

    ``config_enumerate`` marks the label site ``z`` for parallel enumeration; NUTS then
    evaluates the log density with the labels summed out (by funsor's variable
    elimination), so it samples the same posterior as the marginal model, written by
    NumPyro instead of by hand.

    Parameters
    ----------
    x : array_like, shape (n,)
        The observations.
    k : int
        Number of components.
    model : callable
        Default :func:`gmm_utils.latent_model`.
    **options
        Passed to :func:`gmm_utils.run_nuts` (sampler settings and model arguments).

    Returns
    -------
    arviz.InferenceData
        As from :func:`gmm_utils.run_nuts`.
    """
    return run_nuts(config_enumerate(model), x=x, k=k, **options)


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
    fixed = {name: jnp.asarray(value, dtype=x.dtype) for name, value in zip(("weights", "locs", "scales"), (weights, locs, scales))}
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
    blocked: Mapping[str, float],
    sweep_seconds: float,
    *,
    num_chains: int,
    num_warmup: int,
    num_samples: int,
    cores: int | None = None,
    **_: Any,
) -> dict[str, float]:
    """The :func:`gmm_utils.fit_summary` of ``DiscreteHMCGibbs`` on data it was not run on, projected.

    Given the parameters the labels are independent, so ``DiscreteHMCGibbs``'s one-at-a-time
    sweep from the exact conditionals is the same Markov chain as the blocked update: it
    reaches the blocked fit's effective sample sizes and R-hat, and pays one label sweep
    (timed by :func:`time_label_sweep`) per chain and iteration on top of the blocked
    fit's sampling time, with the chains sharing ``cores`` cores perfectly (optimistic).

    Parameters
    ----------
    blocked : mapping
        :func:`gmm_utils.fit_summary` of the blocked Gibbs fit on the same data and protocol.
    sweep_seconds : float
        Seconds per label sweep on those data. CPU seconds (``time_label_sweep(...,
        clock="cpu")``) make the projection the sweeps' total work, shared perfectly over
        the cores.
    num_chains, num_warmup, num_samples : int
        The protocol of the blocked fit (extra keys, such as ``seed``, are ignored, so
        ``**COMPARISON_PROTOCOL`` can be passed as it is).
    cores : int, optional
        Cores the chains share; default ``min(usable_cores(), num_chains)``.

    Returns
    -------
    dict
        ``blocked`` with ``run_time`` (sampling after compilation) increased by the sweeps,
        ``ess_per_run_second`` recomputed, and ``sweep_time`` (the seconds added); the wall
        time and compilation are NaN: they were never measured.
    """
    from .devices import usable_cores

    if not (np.isfinite(sweep_seconds) and sweep_seconds > 0):
        raise ValueError(f"`sweep_seconds` must be a positive number, got {sweep_seconds!r}")
    num_chains, num_warmup, num_samples = (
        positive_int(name, value) for name, value in (("num_chains", num_chains), ("num_warmup", num_warmup), ("num_samples", num_samples))
    )
    cores = min(usable_cores(), num_chains) if cores is None else positive_int("cores", cores)
    sweep_time = float(sweep_seconds) * (num_warmup + num_samples) * num_chains / cores
    run_time = float(blocked["run_time"]) + sweep_time
    nan = float("nan")
    return {
        **blocked,
        "wall_time": nan,
        "compile_time": nan,
        "run_time": run_time,
        "ess_per_second": nan,
        "ess_per_run_second": float(blocked["min_ess_bulk"]) / run_time,
        "sweep_time": sweep_time,
    }


def _sampling_options(num_chains: int, num_warmup: int, num_samples: int, seed: int, chain_method: str | None) -> dict[str, Any]:
    if chain_method is None:  # Gibbs kernels take one random key per chain: no "vectorized"
        chain_method = "parallel" if jax.local_device_count() >= num_chains else "sequential"
    return {
        "num_chains": num_chains,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "seed": seed,
        "chain_method": chain_method,
    }
