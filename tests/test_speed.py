"""Tests of gmm_utils.speed: the fused density, the swapped likelihoods, the timers and the timed fit.

Everything optimized must compute the same function as the reference: log densities and
gradients agree with ``MixtureGaussian`` to 1e-6 in double precision. Timings are only
checked to be measured (positive, consistent with each other), never ordered: noise could
flip an order; ``make bench`` checks the chapters' timing claims on a quiet machine.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.handlers import seed, substitute, trace
from numpyro.infer.util import log_density

import gmm_utils
from gmm_utils import MixtureGaussian, marginal_model
from gmm_utils.speed import (
    FORMULATIONS,
    MARGINAL_FORMULATIONS,
    CompileTimer,
    GradientCost,
    fused_mixture_log_prob,
    gradient_cost,
    gradient_cost_in_fresh_process,
    gradient_scaling,
    subsampled_marginal_model,
    timed_fit,
    with_likelihood,
)

RNG = np.random.default_rng(20240607)


def random_mixture(k: int) -> tuple[np.ndarray, ...]:
    return RNG.dirichlet(np.ones(k)), RNG.normal(0.0, 3.0, k), RNG.uniform(0.1, 2.0, k)


@pytest.mark.parametrize(("x_shape", "k"), [((50,), 3), ((7,), 1), ((40,), 10), ((4, 6), 2)])
def test_fused_log_prob_and_gradients_equal_mixture_gaussian(x_shape, k):
    x = RNG.normal(0.0, 4.0, x_shape)
    with jax.enable_x64(True):
        args = tuple(jnp.asarray(a, jnp.float64) for a in (x, *random_mixture(k)))
        cotangent = jnp.arange(1.0, 1.0 + x.size).reshape(x_shape)  # not uniform: checks the VJP itself

        def reference(*a):
            return jnp.sum(MixtureGaussian(*a[1:]).log_prob(a[0]) * cotangent)

        def fused(*a):
            return jnp.sum(fused_mixture_log_prob(*a) * cotangent)

        value, expected_value = fused_mixture_log_prob(*args), MixtureGaussian(*args[1:]).log_prob(args[0])
        grads = jax.grad(fused, argnums=(0, 1, 2, 3))(*args)
        expected_grads = jax.grad(reference, argnums=(0, 1, 2, 3))(*args)
    assert value.shape == expected_value.shape == x_shape
    np.testing.assert_allclose(value, expected_value, rtol=1e-6, atol=1e-6)
    for name, got, want in zip(("x", "weights", "locs", "scales"), grads, expected_grads, strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)


def test_fused_log_prob_in_single_precision_is_as_accurate_as_the_reference():
    data = gmm_utils.simulate_gmm()
    with jax.enable_x64(True):
        exact = np.asarray(MixtureGaussian(data.weights, data.locs, data.scales).log_prob(data.x))
    single = [jnp.asarray(a, jnp.float32) for a in (data.x, data.weights, data.locs, data.scales)]
    fused = np.asarray(fused_mixture_log_prob(*single))
    reference = np.asarray(MixtureGaussian(*single[1:]).log_prob(single[0]))
    assert fused.dtype == np.float32
    assert np.max(np.abs(fused - exact)) <= 4 * np.max(np.abs(reference - exact)) + 1e-6


def test_fused_log_prob_stays_finite_far_in_the_tails():
    weights, scales = jnp.array([0.5, 0.5]), jnp.array([0.1, 0.1])
    value = fused_mixture_log_prob(jnp.array([-1e3, 0.0, 1e3]), weights, jnp.array([-1.0, 1.0]), scales)
    grads = jax.grad(lambda m: fused_mixture_log_prob(jnp.array([1e3]), weights, m, scales).sum())(jnp.array([-1.0, 1.0]))
    assert bool(jnp.all(jnp.isfinite(value))) and bool(jnp.all(jnp.isfinite(grads)))


def test_fused_log_prob_refuses_batched_parameters():
    with pytest.raises(ValueError, match="must have shape"):
        fused_mixture_log_prob(jnp.zeros(3), jnp.full((2, 2), 0.5), jnp.zeros((2, 2)), jnp.ones((2, 2)))


@pytest.mark.parametrize("formulation", ["mixture_same_family", "fused"])
def test_swapped_likelihoods_give_the_same_whole_potential_and_gradient(formulation):
    data = gmm_utils.simulate_gmm(n=300, seed=1)
    model_kwargs = {"x": data.x, "k": 3, "ordered": True}
    swapped = with_likelihood(marginal_model, formulation)

    def potential(model, point):
        return numpyro.infer.util.potential_energy(model, (), model_kwargs, point)

    with jax.enable_x64(True):
        for _ in range(3):
            point = {"weights": jnp.asarray(RNG.normal(size=2)), "locs": jnp.asarray(RNG.normal(size=3)),
                     "scales": jnp.asarray(RNG.normal(size=3))}
            for want, got in zip(jax.value_and_grad(potential, argnums=1)(marginal_model, point),
                                 jax.value_and_grad(potential, argnums=1)(swapped, point), strict=True):
                jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), want, got)


def test_with_likelihood_swaps_only_the_mixture_site():
    x = gmm_utils.simulate_gmm(n=20).x
    sites = trace(seed(with_likelihood(marginal_model, "mixture_same_family"), 0)).get_trace(x=x, k=3, ordered=True)
    assert isinstance(getattr(sites["x"]["fn"], "base_dist", sites["x"]["fn"]), dist.MixtureSameFamily)
    assert isinstance(sites["locs"]["fn"], gmm_utils.OrderStatistics)
    assert with_likelihood(marginal_model, "marginal") is marginal_model
    assert set(MARGINAL_FORMULATIONS) == {"marginal", "mixture_same_family", "fused"}


def test_the_fused_site_keeps_mixture_gaussian_s_sampling():
    fused = with_likelihood(marginal_model, "fused")
    params = {"weights": jnp.array([0.2, 0.3, 0.5]), "locs": jnp.array([-1.0, 1.0, 4.0]), "scales": jnp.array([0.2, 0.9, 0.5])}
    sites = trace(seed(substitute(fused, params), 0)).get_trace(x=None, n=2000, k=3, ordered=True)
    mixture = getattr(sites["x"]["fn"], "base_dist", sites["x"]["fn"])
    assert isinstance(mixture, MixtureGaussian) and type(mixture) is not MixtureGaussian
    assert abs(float(sites["x"]["value"].mean()) - float(mixture.mean)) < 0.15


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [((marginal_model, "enumeration"), ValueError, "`formulation` must be one of"), ((None, "fused"), TypeError, "`model`")],
)
def test_with_likelihood_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        with_likelihood(*args)


def test_compile_timer_sees_a_compilation_and_not_a_cached_call():
    jitted = jax.jit(lambda v: jnp.sin(v) * 3.0 + jnp.cos(jax.jit(jnp.exp)(v)) ** 2)  # nested: phases overlap
    start = time.perf_counter()
    with CompileTimer() as first:
        jax.block_until_ready(jitted(jnp.arange(17.0)))
    elapsed = time.perf_counter() - start
    with CompileTimer() as second:
        jax.block_until_ready(jitted(jnp.arange(17.0)))
    # The union of nested phases: never more than the block's wall time.
    assert first.compilations >= 1 and 0 < first.seconds <= elapsed and first.cpu_seconds > 0
    assert second.compilations == 0 and second.seconds == 0.0 and second.cpu_seconds == 0.0


def test_gradient_cost_memory_grows_with_the_data():
    small = gradient_cost(marginal_model, {"x": np.linspace(-3, 3, 1_000), "k": 3, "ordered": True}, repeats=1)
    large = gradient_cost(marginal_model, {"x": np.linspace(-3, 3, 100_000), "k": 3, "ordered": True}, repeats=1)
    assert small.cpu_us > 0 and small.wall_us > 0 and large.cpu_us > 0
    # 100x the data: the (n, k) arrays dominate the memory, so it grows almost 100x.
    assert 30 < large.memory_bytes / small.memory_bytes < 150


def test_the_gradient_of_a_million_points_fits_in_a_gibibyte():
    x = np.random.default_rng(0).normal(size=1_000_000).astype(np.float32)
    cost = gradient_cost(marginal_model, {"x": x, "k": 3, "ordered": True}, repeats=1, num_points=2)
    assert x.nbytes < cost.memory_bytes < 2**30


def test_gradient_scaling_rows():
    rows = gradient_scaling(ns=(100, 1000), ks=(2, 3), repeats=1)
    assert [(row["n"], row["k"]) for row in rows] == [(100, 2), (100, 3), (1000, 2), (1000, 3)]
    assert all(row["cpu_us"] > 0 and row["memory_bytes"] > 0 for row in rows)


def test_parallel_chains_plan_the_memory_of_one_chain_and_compute_the_same_function():
    model_kwargs = {"x": np.linspace(-3, 3, 300), "k": 3, "ordered": True}
    parallel = gradient_cost(marginal_model, model_kwargs, chain_method="parallel", num_chains=1, repeats=1, num_points=4)
    alone = gradient_cost(marginal_model, model_kwargs, chain_method="sequential", repeats=1, num_points=4)
    assert parallel.chain_method == "parallel" and parallel.num_chains == 1 and alone.num_chains == 1
    vectorized = gradient_cost(marginal_model, model_kwargs, chain_method="vectorized", num_chains=1, repeats=1, num_points=4)
    assert parallel.memory_bytes == pytest.approx(alone.memory_bytes, rel=0.01)
    assert parallel.mean_potential == pytest.approx(alone.mean_potential, rel=1e-5)
    assert vectorized.mean_potential == pytest.approx(parallel.mean_potential, rel=1e-5)  # the same points


@pytest.mark.parametrize(
    ("model_kwargs", "options", "message"),
    [({"k": 3}, {}, "`x`"), ({"x": np.zeros(5)}, {"chain_method": "threads"}, "`chain_method` must be one of"),
     ({"x": np.zeros(5)}, {"chain_method": "parallel", "num_chains": 64}, "exceeds the")],
)
def test_gradient_cost_bad_input(model_kwargs, options, message):
    with pytest.raises(ValueError, match=message):
        gradient_cost(marginal_model, model_kwargs, **options)


@pytest.mark.parametrize("with_replacement", [True, False])
def test_subsampled_model_scales_the_subset_up_to_the_whole_data(with_replacement):
    x = gmm_utils.simulate_gmm(n=1000, seed=2).x
    site = trace(seed(subsampled_marginal_model, 0)).get_trace(x, 3, subsample_size=100, with_replacement=with_replacement)["x"]
    assert site["value"].shape == (100,)
    assert site["scale"] == pytest.approx(10.0)
    assert np.isin(np.asarray(site["value"]), np.asarray(x, np.float32)).all()
    if not with_replacement:
        assert np.unique(np.asarray(site["value"])).size == 100


SEED_PARAMS = {"weights": jnp.array([0.2, 0.3, 0.5]), "locs": jnp.array([-1.0, 1.0, 4.0]), "scales": jnp.array([0.2, 0.9, 0.5])}


@pytest.fixture(scope="module")
def thousand_points():
    """1,000 points and the marginal model's log density of all of them at SEED_PARAMS."""
    x = gmm_utils.simulate_gmm(n=1000, seed=2).x
    return x, log_density(marginal_model, (), {"x": x, "k": 3, "ordered": True}, SEED_PARAMS)[0]


def test_subsampled_model_with_every_point_is_the_marginal_model(thousand_points):
    x, full = thousand_points
    sub, _ = log_density(subsampled_marginal_model, (x, 3), {"subsample_size": 1000, "with_replacement": False}, SEED_PARAMS)
    np.testing.assert_allclose(sub, full, rtol=1e-5)


def test_minibatches_with_replacement_estimate_the_log_likelihood_without_bias(thousand_points):
    x, full = thousand_points

    def estimate(key):
        return log_density(seed(subsampled_marginal_model, key), (x, 3), {"subsample_size": 50}, SEED_PARAMS)[0]

    estimates = jax.vmap(estimate)(jax.random.split(jax.random.PRNGKey(0), 2000))
    standard_error = float(jnp.std(estimates)) / np.sqrt(estimates.size)
    assert abs(float(jnp.mean(estimates)) - float(full)) < 4 * standard_error


@pytest.mark.parametrize(("size", "message"), [(0, "`subsample_size` must be a positive integer"), (2000, "must not exceed")])
def test_subsampled_model_bad_input(size, message):
    with pytest.raises(ValueError, match=message):
        trace(seed(subsampled_marginal_model, 0)).get_trace(np.zeros(1000), 3, subsample_size=size)


def measured_gradient(*, cpu_us: float, chain_method: str, num_chains: int) -> GradientCost:
    """A GradientCost as if timed for ``num_chains`` ``chain_method`` chains."""
    return GradientCost(wall_us=cpu_us, cpu_us=cpu_us, memory_bytes=1, num_points=1, mean_potential=0.0,
                        mean_gradient_sum=0.0, chain_method=chain_method, num_chains=num_chains)


SMALL_FIT = {"num_chains": 1, "num_warmup": 40, "num_samples": 30, "seed": 3, "chain_method": "sequential"}


@pytest.fixture(scope="module")
def small_fit():
    """One small timed fit and run_nuts's fit with the same options."""
    data = gmm_utils.simulate_gmm(n=150, seed=4)
    model_kwargs = {"x": data.x, "k": 3, "ordered": True}
    options = {**SMALL_FIT, "init_strategy": gmm_utils.init_to_data(data.x, 3)}
    gradient = measured_gradient(cpu_us=60.0, chain_method="sequential", num_chains=1)
    timed = timed_fit(marginal_model, model_kwargs, gradient=gradient, **options)
    return timed, gmm_utils.run_nuts(marginal_model, model_kwargs, log_likelihood=False, **options)


def test_timed_fit_measures_exactly_the_fit_run_nuts_makes(small_fit):
    timed, reference = small_fit
    # Same kernel, same seed: the same draws; the warm-up's steps are counted on top.
    np.testing.assert_allclose(timed.idata.posterior["locs"].values, reference.posterior["locs"].values, rtol=1e-6)
    np.testing.assert_array_equal(timed.idata.sample_stats["n_steps"].values, reference.sample_stats["n_steps"].values)
    assert timed.gradients == timed.warmup_gradients + int(reference.sample_stats["n_steps"].values.sum())
    assert timed.mean_steps == pytest.approx(float(reference.sample_stats["n_steps"].mean()))
    assert (timed.n, timed.num_chains, timed.num_warmup, timed.num_samples) == (150, 1, 40, 30)


def test_timed_fit_s_bound_and_times_are_consistent(small_fit):
    timed, _ = small_fit
    assert timed.gradient_us == 60.0 and timed.step_cpu_us > 0
    assert timed.bound_s == pytest.approx(timed.gradients * min(60.0, timed.step_cpu_us) * 1e-6 / timed.cores)
    assert timed.efficiency == pytest.approx(timed.bound_s / timed.wall_s)
    assert timed.efficiency <= 1.05  # CPU per core cannot exceed the wall time
    assert 0 <= timed.compile_s <= timed.wall_s and 0 < timed.compile_cpu_s < timed.cpu_s
    assert timed.xla_reductions == gmm_utils.devices.xla_reductions_on()
    with pytest.raises(AttributeError):
        timed.wall_s = 0.0  # frozen
    json.dumps({name: value for name, value in vars(timed).items() if name != "idata"})  # bench writes JSON


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"chain_method": "threads"}, ValueError, "`chain_method` must be one of"),
        ({"num_chains": 0}, ValueError, "`num_chains` must be a positive integer"),
        ({"chain_method": "parallel", "num_chains": 64}, ValueError, "needs 64 JAX devices"),
        ({"num_chain": 2}, TypeError, "num_chain"),
        ({"gradient": measured_gradient(cpu_us=1.0, chain_method="parallel", num_chains=4), "chain_method": "sequential"},
         ValueError, "`gradient` was timed as 4 parallel"),
    ],
)
def test_timed_fit_bad_input(options, error, message):
    with pytest.raises(error, match=message):
        timed_fit(marginal_model, {"x": np.arange(10.0)}, **options)


def test_timed_fit_needs_the_data():
    with pytest.raises((TypeError, ValueError), match="`x`"):
        timed_fit(marginal_model, {"k": 3})


def test_a_fresh_process_with_the_other_reductions_computes_the_same_gradient():
    # The setting is read when JAX's backend starts: only a new process can have the other one.
    data = gmm_utils.simulate_gmm()
    here = gradient_cost(marginal_model, {"x": data.x, "k": 3, "ordered": True}, chain_method="parallel", num_chains=2)
    (there,) = gradient_cost_in_fresh_process(
        ["marginal"], xla_reductions=not gmm_utils.devices.xla_reductions_on(), num_chains=2
    ).values()
    assert there.chain_method == "parallel" and there.num_chains == 2 and there.cpu_us > 0
    assert there.mean_potential == pytest.approx(here.mean_potential, rel=1e-5)
    assert there.mean_gradient_sum == pytest.approx(here.mean_gradient_sum, rel=1e-4)


def test_gradient_cost_in_fresh_process_rejects_an_unknown_formulation():
    with pytest.raises(ValueError, match="`formulations`"):
        gradient_cost_in_fresh_process(["marginal", "gamma"])
