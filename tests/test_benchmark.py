"""Tests of gmm_utils.benchmark: the fused density, the swapped likelihoods, the timers and the benchmark's pieces.

Everything optimized must compute the same function as the reference: log densities and
gradients agree with ``MixtureGaussian`` to 1e-6 (in double precision). The benchmark's
pieces run here on tiny settings; the full benchmark (``make bench``) is not part of the
test suite.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.handlers import seed, trace

import gmm_utils
from gmm_utils import MixtureGaussian, init_to_data, marginal_model, run_nuts
from gmm_utils import benchmark as bench

RNG = np.random.default_rng(20240607)


def random_mixture(
    batch: tuple[int, ...], k: int, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    weights = rng.dirichlet(np.ones(k), batch)
    locs = rng.normal(0.0, 3.0, batch + (k,))
    scales = rng.uniform(0.1, 2.0, batch + (k,))
    return weights, locs, scales


@pytest.mark.parametrize(
    ("x_shape", "batch", "k"),
    [
        ((50,), (), 3),
        ((7,), (), 1),
        ((40,), (), 10),
        ((4, 6), (4, 1), 2),
        ((5,), (3, 1), 4),
    ],
)
def test_fused_log_prob_and_gradients_equal_mixture_gaussian(x_shape, batch, k):
    weights, locs, scales = random_mixture(batch, k, RNG)
    x = RNG.normal(0.0, 4.0, x_shape)

    def reference(x, w, m, s):
        return jnp.sum(
            MixtureGaussian(m, s, w).log_prob(x)
            * jnp.arange(
                1.0, 1.0 + np.prod(np.broadcast_shapes(x.shape, batch))
            ).reshape(np.broadcast_shapes(x.shape, batch))
        )

    def fused(x, w, m, s):
        out = bench.fused_mixture_log_prob(x, w, m, s)
        return jnp.sum(out * jnp.arange(1.0, 1.0 + out.size).reshape(out.shape))

    with jax.enable_x64(True):
        args = tuple(
            jnp.asarray(a, dtype=jnp.float64) for a in (x, weights, locs, scales)
        )
        expected_value = MixtureGaussian(args[2], args[3], args[1]).log_prob(args[0])
        value = bench.fused_mixture_log_prob(*args)
        # A non-uniform cotangent (the weights 1, 2, 3, ...) checks the vector-Jacobian product itself.
        expected_grads = jax.grad(reference, argnums=(0, 1, 2, 3))(*args)
        grads = jax.grad(fused, argnums=(0, 1, 2, 3))(*args)
    assert value.shape == expected_value.shape
    np.testing.assert_allclose(value, expected_value, rtol=1e-6, atol=1e-6)
    names = ("x", "weights", "locs", "scales")
    for name, got, want in zip(names, grads, expected_grads, strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)


def test_fused_log_prob_in_single_precision_is_as_accurate_as_the_reference():
    data = gmm_utils.simulate_gmm()
    weights, locs, scales = (
        np.asarray(a) for a in (data.weights, data.locs, data.scales)
    )
    with jax.enable_x64(True):
        exact = np.asarray(MixtureGaussian(locs, scales, weights).log_prob(data.x))
    single = [jnp.asarray(a, jnp.float32) for a in (data.x, weights, locs, scales)]
    fused = np.asarray(bench.fused_mixture_log_prob(*single))
    reference = np.asarray(
        MixtureGaussian(single[2], single[3], single[1]).log_prob(single[0])
    )
    assert fused.dtype == np.float32
    # float32 carries about 7 digits: both implementations stay within a few units of rounding.
    assert np.max(np.abs(fused - exact)) < 1e-5 * max(1.0, np.max(np.abs(exact)))
    assert np.max(np.abs(fused - exact)) <= 4 * np.max(np.abs(reference - exact)) + 1e-6


def test_fused_log_prob_stays_finite_far_in_the_tails():
    value = bench.fused_mixture_log_prob(
        jnp.array([-1e3, 0.0, 1e3]),
        jnp.array([0.5, 0.5]),
        jnp.array([-1.0, 1.0]),
        jnp.array([0.1, 0.1]),
    )
    grads = jax.grad(
        lambda m: bench.fused_mixture_log_prob(
            jnp.array([1e3]), jnp.array([0.5, 0.5]), m, jnp.array([0.1, 0.1])
        ).sum()
    )(jnp.array([-1.0, 1.0]))
    assert bool(jnp.all(jnp.isfinite(value))) and bool(jnp.all(jnp.isfinite(grads)))


def test_fused_mixture_gaussian_keeps_the_parent_behaviour():
    mixture = bench.FusedMixtureGaussian(
        jnp.array([-1.0, 1.0, 4.0]),
        jnp.array([0.2, 0.9, 0.5]),
        jnp.array([0.2, 0.3, 0.5]),
    )
    assert isinstance(mixture, MixtureGaussian)
    draws = mixture.sample(jax.random.PRNGKey(0), (2000,))
    assert draws.shape == (2000,)
    assert abs(float(draws.mean()) - float(mixture.mean)) < 0.15
    with pytest.raises(ValueError, match="scale"):
        bench.FusedMixtureGaussian(
            jnp.zeros(2),
            jnp.array([1.0, -1.0]),
            jnp.array([0.5, 0.5]),
            validate_args=True,
        )


def potential_at(model, x, points, **kwargs):
    potential, _ = bench._flat_potential(model, {"x": x, **kwargs})
    value_and_grad = jax.value_and_grad(potential)
    return [value_and_grad(jnp.asarray(p), jnp.asarray(x)) for p in points]


@pytest.mark.parametrize("likelihood", ["mixture_same_family", "fused"])
def test_swapped_likelihoods_give_the_same_whole_potential_and_gradient(likelihood):
    data = gmm_utils.simulate_gmm(n=300, seed=1)
    with jax.enable_x64(True):
        x = jnp.asarray(data.x, jnp.float64)
        _, flat = bench._flat_potential(
            marginal_model, {"x": x, "k": 3, "ordered": True}
        )
        points = [np.asarray(flat) + RNG.normal(0.0, 0.5, flat.shape) for _ in range(4)]
        expected = potential_at(marginal_model, x, points, k=3, ordered=True)
        got = potential_at(
            bench.with_likelihood(marginal_model, likelihood),
            x,
            points,
            k=3,
            ordered=True,
        )
    for (value, grad), (want_value, want_grad) in zip(got, expected, strict=True):
        np.testing.assert_allclose(value, want_value, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-6)


def test_with_likelihood_swaps_only_the_mixture_site():
    model = bench.with_likelihood(marginal_model, "mixture_same_family")
    x = gmm_utils.simulate_gmm(n=20).x
    sites = trace(seed(model, 0)).get_trace(x=x, k=3, ordered=True)
    assert isinstance(sites["x"]["fn"], dist.ExpandedDistribution) or isinstance(
        sites["x"]["fn"], dist.MixtureSameFamily
    )
    base = getattr(sites["x"]["fn"], "base_dist", sites["x"]["fn"])
    assert isinstance(base, dist.MixtureSameFamily)
    assert isinstance(sites["locs"]["fn"], gmm_utils.OrderStatistics)
    assert bench.with_likelihood(marginal_model, "mixture_gaussian") is marginal_model


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((marginal_model, "normal"), ValueError, "`likelihood` must be one of"),
        ((None, "fused"), TypeError, "`model` must be a callable"),
    ],
)
def test_with_likelihood_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        bench.with_likelihood(*args)


def test_compile_timer_counts_the_union_of_nested_spans():
    timer = bench.CompileTimer()
    timer._spans = [("a", 0.0, 1.0), ("b", 0.5, 2.0), ("c", 3.0, 3.5), ("d", 3.1, 3.2)]
    assert timer.seconds == pytest.approx(2.5)
    assert bench.CompileTimer().seconds == 0.0


def test_compile_timer_sees_a_compilation_and_not_a_cached_call():
    def f(v):
        return jnp.sin(v) * 3.0 + jnp.cos(v) ** 2

    jitted = jax.jit(f)
    with bench.CompileTimer() as first:
        jax.block_until_ready(jitted(jnp.arange(17.0)))
    with bench.CompileTimer() as second:
        jax.block_until_ready(jitted(jnp.arange(17.0)))
    assert first.compilations >= 1 and first.seconds > 0 and first.cpu_seconds > 0
    assert (
        second.compilations == 0 and second.seconds == 0.0 and second.cpu_seconds == 0.0
    )


def test_enable_compilation_cache_sets_the_directory(tmp_path, monkeypatch):
    before = {
        name: getattr(jax.config, name)
        for name in (
            "jax_compilation_cache_dir",
            "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes",
        )
    }
    try:
        path = bench.enable_compilation_cache(tmp_path / "cache")
        assert path.is_dir() and jax.config.jax_compilation_cache_dir == str(path)
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
        monkeypatch.setenv("GMM_BOOK_JAX_CACHE", str(tmp_path / "elsewhere"))
        assert bench.default_cache_dir() == tmp_path / "elsewhere"
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()


def test_gradient_cost_and_memory_grow_with_the_data():
    small = bench.gradient_cost(
        marginal_model, x=np.linspace(-3, 3, 1_000), k=3, ordered=True, repeats=2
    )
    large = bench.gradient_cost(
        marginal_model, x=np.linspace(-3, 3, 100_000), k=3, ordered=True, repeats=2
    )
    assert 0 < small.cpu_us < large.cpu_us and 0 < small.wall_us
    assert small.memory_bytes < large.memory_bytes
    # 100x the data: the (n, k) arrays dominate the memory, so it grows almost 100x.
    assert 30 < large.memory_bytes / small.memory_bytes < 150


def test_the_density_and_gradient_of_a_million_points_fit_in_a_gibibyte():
    x = np.random.default_rng(0).normal(size=1_000_000).astype(np.float32)
    cost = bench.gradient_cost(
        marginal_model, x=x, k=3, ordered=True, repeats=1, num_points=2
    )
    assert cost.memory_bytes < 2**30
    assert cost.memory_bytes > x.nbytes  # at least the data themselves


def test_gradient_scaling_rows():
    rows = bench.gradient_scaling(ns=(100, 1000), ks=(2, 3), repeats=1)
    assert [(row["n"], row["k"]) for row in rows] == [
        (100, 2),
        (100, 3),
        (1000, 2),
        (1000, 3),
    ]
    assert all(row["cpu_us"] > 0 and row["memory_bytes"] > 0 for row in rows)


def test_gradient_cost_needs_the_data():
    with pytest.raises(ValueError, match="`x`"):
        bench.gradient_cost(marginal_model, k=3)


@pytest.mark.parametrize("with_replacement", [True, False])
def test_subsampled_model_scales_the_subset_up_to_the_whole_data(with_replacement):
    x = gmm_utils.simulate_gmm(n=1000, seed=2).x
    model_trace = trace(seed(bench.subsampled_marginal_model, 0)).get_trace(
        x, 3, subsample_size=100, with_replacement=with_replacement
    )
    site = model_trace["x"]
    assert site["value"].shape == (100,)
    assert site["scale"] == pytest.approx(10.0)
    assert np.isin(np.asarray(site["value"]), np.asarray(x, np.float32)).all()
    if not with_replacement:
        assert np.unique(np.asarray(site["value"])).size == 100


SEED_PARAMS = {
    "weights": jnp.array([0.2, 0.3, 0.5]),
    "locs": jnp.array([-1.0, 1.0, 4.0]),
    "scales": jnp.array([0.2, 0.9, 0.5]),
}


@pytest.fixture(scope="module")
def thousand_points():
    """1,000 points and the marginal model's log density of all of them at SEED_PARAMS."""
    x = gmm_utils.simulate_gmm(n=1000, seed=2).x
    full, _ = numpyro.infer.util.log_density(
        marginal_model, (), {"x": x, "k": 3, "ordered": True}, SEED_PARAMS
    )
    return x, full


def test_subsampled_model_with_every_point_is_the_marginal_model(thousand_points):
    x, full = thousand_points
    sub, _ = numpyro.infer.util.log_density(
        bench.subsampled_marginal_model,
        (x, 3),
        {"subsample_size": 1000, "with_replacement": False},
        SEED_PARAMS,
    )
    np.testing.assert_allclose(sub, full, rtol=1e-5)


def test_minibatches_with_replacement_estimate_the_log_likelihood_without_bias(thousand_points):
    x, full = thousand_points

    def estimate(key):
        model = seed(bench.subsampled_marginal_model, key)
        return numpyro.infer.util.log_density(
            model, (x, 3), {"subsample_size": 50}, SEED_PARAMS
        )[0]

    estimates = jax.vmap(estimate)(jax.random.split(jax.random.PRNGKey(0), 2000))
    standard_error = float(jnp.std(estimates)) / np.sqrt(estimates.size)
    assert abs(float(jnp.mean(estimates)) - float(full)) < 4 * standard_error


@pytest.mark.parametrize(
    ("size", "message"),
    [(0, "`subsample_size` must be a positive integer"), (2000, "must not exceed")],
)
def test_subsampled_model_bad_input(size, message):
    with pytest.raises(ValueError, match=message):
        trace(seed(bench.subsampled_marginal_model, 0)).get_trace(
            np.zeros(1000), 3, subsample_size=size
        )


def test_every_runner_builds_its_nuts_block_with_the_one_kernel_builder(monkeypatch):
    built = []
    real = gmm_utils.inference.nuts_kernel

    def recording(model, **options):
        built.append(options)
        return real(model, **options)

    monkeypatch.setattr(bench, "nuts_kernel", recording)
    bench._kernel_and_model(
        "marginal", np.zeros(10), dense_mass=False, target_accept_prob=0.9, init_strategy=None
    )
    assert built == [{"target_accept_prob": 0.9, "dense_mass": False, "init_strategy": None}]
    with pytest.raises(ValueError, match="`target_accept_prob` must lie in"):
        bench._kernel_and_model(
            "blocked_gibbs", np.zeros(10), dense_mass=True, target_accept_prob=1.5, init_strategy=None
        )


def measured_gradient(*, cpu_us: float, chain_method: str, num_chains: int) -> bench.GradientCost:
    """A GradientCost as if timed for ``num_chains`` ``chain_method`` chains."""
    return bench.GradientCost(
        wall_us=cpu_us,
        cpu_us=cpu_us,
        memory_bytes=1,
        num_points=1,
        mean_potential=0.0,
        mean_gradient_sum=0.0,
        chain_method=chain_method,
        num_chains=num_chains,
    )


def test_timed_fit_measures_exactly_the_fit_run_nuts_makes():
    data = gmm_utils.simulate_gmm(n=150, seed=4)
    options = {
        "num_chains": 2,
        "num_warmup": 40,
        "num_samples": 30,
        "seed": 3,
        "chain_method": "sequential",
    }
    gradient = measured_gradient(cpu_us=60.0, chain_method="sequential", num_chains=1)
    row, idata = bench.timed_fit(
        "marginal", x=data.x, gradient=gradient, return_idata=True, **options
    )
    reference = run_nuts(
        marginal_model,
        x=data.x,
        k=3,
        ordered=True,
        dense_mass=True,
        init_strategy=init_to_data(data.x, 3),
        log_likelihood=False,
        **options,
    )
    # Same kernel, same seed: the same draws, only the warm-up statistics are kept on top.
    np.testing.assert_allclose(
        idata.posterior["locs"].values, reference.posterior["locs"].values, rtol=1e-6
    )
    np.testing.assert_array_equal(
        idata.sample_stats["n_steps"].values, reference.sample_stats["n_steps"].values
    )
    assert row["gradients"] == row["warmup_gradients"] + int(
        reference.sample_stats["n_steps"].values.sum()
    )
    assert row["mean_steps"] == pytest.approx(
        float(reference.sample_stats["n_steps"].mean())
    )
    assert row["gradient_us"] == 60.0 and row["step_cpu_us"] > 0  # the CPU time
    per_gradient = min(60.0, row["step_cpu_us"])  # a gradient costs at most a step
    assert row["bound_s"] == pytest.approx(
        row["gradients"] * per_gradient * 1e-6 / row["cores"]
    )
    assert row["efficiency"] <= 1.05  # CPU per core can not exceed the wall time
    assert row["efficiency"] == pytest.approx(row["bound_s"] / row["wall_s"])
    assert row["xla_reductions"] == gmm_utils.devices.xla_reductions_on()
    assert 0 <= row["compile_s"] <= row["wall_s"]
    assert 0 < row["compile_cpu_s"] < row["cpu_s"]
    json.dumps(row)  # the benchmark writes rows as JSON


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"formulation": "gibbs"}, "`formulation` must be one of"),
        ({"chain_method": "threads"}, "`chain_method` must be one of"),
        ({"init": "median"}, "`init` must be"),
        ({"num_chains": 0}, "`num_chains` must be a positive integer"),
        ({"chain_method": "parallel", "num_chains": 64}, "needs 64 JAX devices"),
    ],
)
def test_timed_fit_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bench.timed_fit(x=np.zeros(10) + np.arange(10), **kwargs)


def test_benchmark_plan_covers_every_formulation_and_chain_method():
    plan = bench.benchmark_plan(complete=True)
    assert [row["role"] for row in plan[:2]] == ["main, cold cache", "main, warm cache"]
    assert (
        plan[0]["num_warmup"] == 1000
        and plan[0]["num_samples"] == 2000
        and plan[0]["num_chains"] == 4
    )
    pairs = {(row["formulation"], row["chain_method"]) for row in plan}
    for formulation in bench.FORMULATIONS:
        for method in bench.CHAIN_METHODS:
            gibbs_vectorized = formulation.endswith("gibbs") and method == "vectorized"
            assert ((formulation, method) in pairs) != gibbs_vectorized, (
                formulation,
                method,
            )
    assert all(
        row["n_subset"] == 200 for row in plan if row["formulation"] == "discrete_gibbs"
    )
    with pytest.raises(ValueError, match="unknown formulation"):
        bench.benchmark_plan(formulations=["hmm"])


def test_standard_plan_has_every_formulation_and_every_chain_method_for_the_main_one():
    plan = bench.benchmark_plan()
    pairs = [(row["formulation"], row["chain_method"]) for row in plan]
    # The main fit three times (cold, warm, JAX's default reductions), nothing else repeated.
    assert [row["role"] for row in plan[:3]] == [
        "main, cold cache",
        "main, warm cache",
        "main, YNNPACK, cold cache",
    ]
    assert plan[2]["xla_reductions"] is False
    assert len(pairs) == len(set(pairs[2:])) + 2
    assert {formulation for formulation, _ in pairs} == set(bench.FORMULATIONS)
    assert {
        method for formulation, method in pairs if formulation == "marginal"
    } == set(bench.CHAIN_METHODS)
    assert ("mixture_same_family", "vectorized") in pairs  # the table
    assert all(row["num_warmup"] == 500 for row in plan if row["role"] == "grid")


def test_one_benchmark_row_runs_in_a_fresh_process():
    spec = {
        "formulation": "marginal",
        "chain_method": "parallel",
        "num_chains": 2,
        "num_warmup": 30,
        "num_samples": 20,
        "seed": 0,
        "n_subset": 100,
        "gradient_repeats": 1,
    }
    row = bench._run_in_subprocess(spec, timeout=240)
    assert "error" not in row, row.get("error")
    assert (
        row["n"] == 100 and row["chain_method"] == "parallel" and row["gradients"] > 0
    )
    assert row["wall_s"] > row["compile_s"] > 0


def test_timed_fit_refuses_a_gradient_timed_for_other_chains():
    parallel = measured_gradient(cpu_us=60.0, chain_method="parallel", num_chains=4)
    with pytest.raises(ValueError, match="`gradient` was timed as 4 parallel"):
        bench.timed_fit("marginal", chain_method="sequential", gradient=parallel)


def test_parallel_chains_plan_the_memory_of_one_chain():
    x = np.linspace(-3, 3, 300)
    options = {"x": x, "k": 3, "ordered": True, "repeats": 1, "num_points": 4}
    parallel = bench.gradient_cost(marginal_model, chain_method="parallel", num_chains=1, **options)
    alone = bench.gradient_cost(marginal_model, **options)
    assert parallel.memory_bytes == pytest.approx(alone.memory_bytes, rel=0.01)
    assert parallel.mean_potential == pytest.approx(alone.mean_potential, rel=1e-5)


def test_gradient_cost_of_one_parallel_chain():
    cost = bench.gradient_cost(
        marginal_model,
        chain_method="parallel",
        num_chains=1,
        x=np.linspace(-3, 3, 200),
        k=3,
        ordered=True,
        repeats=1,
        num_points=5,
    )
    assert cost.chain_method == "parallel" and cost.num_chains == 1
    assert cost.wall_us > 0


def test_xla_reductions_are_faster_and_compute_the_same_gradient():
    # Each in a fresh process: the setting is read when JAX's backend starts.
    (xla,) = bench.gradient_cost_in_fresh_process(xla_reductions=True).values()
    (ynnpack,) = bench.gradient_cost_in_fresh_process(xla_reductions=False).values()
    assert xla.mean_potential == pytest.approx(ynnpack.mean_potential, rel=1e-5)
    assert xla.mean_gradient_sum == pytest.approx(ynnpack.mean_gradient_sum, rel=1e-5)
    # Over three times cheaper on the book's machines, so a 2x slowdown of either side
    # (another program on the machine) cannot flip the order. CPU time, not wall time:
    # the two processes run one after the other, and the load may change in between.
    assert xla.cpu_us < ynnpack.cpu_us


def test_gradient_cost_in_fresh_process_rejects_an_unknown_likelihood():
    with pytest.raises(ValueError, match="`likelihoods`"):
        bench.gradient_cost_in_fresh_process(["mixture_gaussian", "gamma"])


def test_format_table_and_summary():
    row = {
        "role": "main, cold cache",
        "formulation": "marginal",
        "chain_method": "parallel",
        "n": 2500,
        "wall_s": 5.0,
        "compile_s": 2.0,
        "gradient_us": 50.0,
        "step_cpu_us": 60.0,
        "mean_steps": 6.5,
        "gradients": 100000,
        "bound_s": 2.5,
        "efficiency": 0.5,
        "min_ess_bulk": 12000.0,
        "ess_per_s": 2400.0,
        "max_rhat": 1.001,
        "divergences": 0,
    }
    pymc = {
        "sampler": "PyMC NUTS, init=auto, default cores",
        "wall_s": 60.0,
        "mean_steps": 11.0,
        "min_ess_bulk": 6000.0,
        "ess_per_s": 100.0,
        "max_rhat": 1.002,
        "divergences": 0,
    }
    result = {
        "rows": [row],
        "pymc": [pymc],
        "summary": bench._summary([row], [pymc]),
        "machine": {
            "cores": 2,
            "load_at_start": [0.1],
            "load_at_end": [0.2],
            "benchmark_seconds": 70.0,
        },
    }
    assert result["summary"]["speedup_cold_cache"] == pytest.approx(24.0)
    assert bench._role_key("main, YNNPACK, cold cache") == "ynnpack_cold_cache"
    table = bench.format_table(result)
    assert (
        "MAIN (cold cache)" in table
        and "PyMC NUTS" in table
        and "speedup_cold_cache: 24" in table
    )


def test_run_pymc_reports_a_missing_python_as_an_error(tmp_path):
    row = bench.run_pymc(tmp_path / "no-such-python", num_warmup=5, num_samples=5)
    assert "error" in row and "cannot run" in row["error"]


def test_the_command_line_rejects_unknown_formulations():
    with pytest.raises(ValueError, match="unknown formulation"):
        bench.main(["--formulations", "marginal,nope", "--quick"])
    assert sys.modules["gmm_utils.benchmark"] is bench


def test_a_failing_row_reports_the_child_s_error_instead_of_raising():
    row = bench._run_in_subprocess({"formulation": "nope", "num_chains": 1}, timeout=120)
    assert row["formulation"] == "nope" and "`formulation` must be one of" in row["error"]


def fake_benchmark_result(*, warm_wall: float) -> dict:
    """A benchmark result with every row and gradient the timing claims read."""

    def row(role, formulation="marginal", method="parallel", **values):
        base = {"role": role, "formulation": formulation, "chain_method": method,
                "wall_s": 10.0, "compile_s": 4.0, "gradients": 100_000, "ess_per_s": 1000.0,
                "step_cpu_us": 30.0, "gradient_us": 25.0}
        return {**base, **values}

    def cost(cpu_us):
        return {"cpu_us": cpu_us, "wall_us": cpu_us}

    rows = [
        row("main, cold cache", wall_s=12.0, compile_s=6.0, ess_per_s=900.0),
        row("main, warm cache", wall_s=warm_wall, compile_s=1.0),
        row("main, YNNPACK, cold cache", wall_s=20.0, ess_per_s=400.0),
        row("grid", "mixture_same_family", step_cpu_us=40.0, gradient_us=55.0),
        row("grid", "marginal", "vectorized", wall_s=16.0),
        row("grid", "marginal", "sequential", wall_s=18.0),
        {"role": "grid", "formulation": "enumeration", "chain_method": "parallel", "error": "x"},
    ]
    gradients = {
        "xla": {"mixture_gaussian": cost(20.0), "mixture_same_family": cost(55.0), "fused": cost(22.0)},
        "ynnpack": {"mixture_gaussian": cost(70.0), "fused": cost(35.0)},
    }
    return {"rows": rows, "gradients": gradients}


def test_timing_claims_hold_on_a_benchmark_that_supports_them():
    claims = bench.timing_claims(fake_benchmark_result(warm_wall=5.0))
    assert len(claims) == 10 and all(claim["holds"] is True for claim in claims), claims
    assert {claim["chapter"] for claim in claims} == {7, 8}


def test_timing_claims_report_a_failed_and_a_missing_measurement():
    result = fake_benchmark_result(warm_wall=13.0)  # the warm run slower than the cold one
    result["gradients"]["ynnpack"] = {"error": "timed out"}
    claims = {claim["claim"]: claim for claim in bench.timing_claims(result)}
    assert claims["the main fit from a warm cache takes less wall time than from a cold one"]["holds"] is False
    assert claims["XLA's own reductions make MixtureGaussian's gradient cheaper than YNNPACK's"]["holds"] is None
    assert bench.timing_claims({"rows": []})[0]["holds"] is None


def test_make_bench_fails_when_a_timing_claim_fails(monkeypatch, capsys):
    result = fake_benchmark_result(warm_wall=13.0)
    result.update(
        pymc=[],
        summary={},
        machine={"cores": 2, "load_at_start": [0.1], "load_at_end": [0.2], "benchmark_seconds": 1.0},
    )
    result["claims"] = bench.timing_claims(result)
    monkeypatch.setattr(bench, "run_benchmark", lambda plan, **options: result)
    assert bench.main(["--formulations", "marginal"]) == 1
    output = capsys.readouterr()
    assert "[FAILS] chapter 7: the main fit from a warm cache" in output.out
    assert "timing claim(s) of the chapters failed" in output.err
    assert bench.main(["--formulations", "marginal", "--quick"]) == 0  # tiny runs: reported only
    result["claims"] = bench.timing_claims(fake_benchmark_result(warm_wall=5.0))
    assert bench.main(["--formulations", "marginal"]) == 0
