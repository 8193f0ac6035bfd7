"""Tests of gmm_utils.inference: the log-likelihood, run_nuts/run_mcmc, the timing of compilation and
sampling apart, init_to_data, fit_summary, compare_fits and speedup."""

from __future__ import annotations

import time
import warnings

import arviz as az
import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.contrib.funsor import config_enumerate
from numpyro.infer import MCMC, NUTS
from scipy import stats
from scipy.special import logsumexp

import gmm_utils
from gmm_utils import (
    SamplerOptions, compare_fits, compile_then_run, fit_summary, init_to_data, marginal_model, mixture_log_likelihood,
    run_mcmc, run_nuts, speedup,
)
from gmm_utils.inference import LogLikelihoodUnavailable, choose_chain_method, model_log_likelihood

SMALL = gmm_utils.simulate_gmm(n=120, seed=3)


@pytest.fixture(scope="module")
def small_fit():
    return run_nuts(marginal_model, {"x": SMALL.x, "k": 3, "ordered": True}, num_chains=2, num_warmup=200,
                    num_samples=150, seed=5, init_strategy=init_to_data(SMALL.x, 3))


def test_run_nuts_returns_the_books_inference_data(small_fit):
    idata = small_fit
    assert set(idata.groups()) >= {"posterior", "sample_stats", "observed_data", "log_likelihood"}
    assert idata.posterior["locs"].dims == ("chain", "draw", "component")
    assert idata.posterior["locs"].shape == (2, 150, 3)
    assert idata.log_likelihood["x"].dims == ("chain", "draw", "point")
    for stat in ("diverging", "energy", "n_steps", "tree_depth", "acceptance_rate", "step_size", "lp"):
        assert stat in idata.sample_stats, stat
    attrs = idata.posterior.attrs
    assert attrs["sampling_time"] > 0 and attrs["sampler"] == "NUTS" and attrs["num_chains"] == 2
    # By default a device per chain (tests/conftest.py sets four): compilation and sampling are
    # timed apart, and together fit inside the wall time.
    assert attrs["chain_method"] == choose_chain_method(2) == "parallel"
    assert attrs["compile_time"] > 0 and attrs["run_time"] > 0
    assert attrs["compile_time"] + attrs["run_time"] <= attrs["sampling_time"]
    # The sampler's settings travel with the draws (check_convergence reads max_tree_depth).
    assert idata.sample_stats.attrs["max_tree_depth"] == 10
    assert idata.sample_stats.attrs["target_accept_prob"] == pytest.approx(0.8)
    np.testing.assert_allclose(idata.observed_data["x"].values, SMALL.x)
    # The ordered prior keeps the means increasing in every draw.
    assert bool((idata.posterior["locs"].diff("component") > 0).all())


def test_stored_log_likelihood_is_the_pointwise_marginal_one(small_fit):
    post = small_fit.posterior
    w, m, s = (post[name].values.astype(float) for name in ("weights", "locs", "scales"))
    expected = logsumexp(np.log(w)[..., None, :] + stats.norm.logpdf(SMALL.x[:, None], m[..., None, :], s[..., None, :]), axis=-1)
    np.testing.assert_allclose(small_fit.log_likelihood["x"].values, expected, rtol=1e-4, atol=1e-4)
    # ... so PSIS-LOO runs on it.
    loo = az.loo(small_fit)
    assert np.isfinite(loo.elpd_loo)


def test_lp_is_the_log_density():
    # sample_stats.lp is minus NumPyro's potential energy: the unnormalized log posterior
    # in unconstrained coordinates; it must be finite and vary across draws.
    idata = run_nuts(marginal_model, {"x": SMALL.x, "k": 3}, num_chains=1, num_warmup=100, num_samples=50, seed=0,
                     init_strategy=init_to_data(SMALL.x, 3))
    lp = idata.sample_stats["lp"].values
    assert np.isfinite(lp).all() and lp.std() > 0


def test_same_seed_same_draws():
    options = dict(num_chains=1, num_warmup=50, num_samples=20, init_strategy=init_to_data(SMALL.x, 3))
    model_kwargs = {"x": SMALL.x, "k": 3, "ordered": True}
    first = run_nuts(marginal_model, model_kwargs, seed=11, **options).posterior["locs"].values
    second = run_nuts(marginal_model, model_kwargs, seed=11, **options).posterior["locs"].values
    np.testing.assert_array_equal(first, second)


def test_model_arguments_never_collide_with_sampler_options():
    # A model may have arguments named like sampler options: they travel in their own mapping.
    def model(x, seed, num_samples):
        mu = numpyro.sample("mu", dist.Normal(seed, 1.0))
        numpyro.sample("obs", dist.Normal(mu, 1.0).expand([num_samples]), obs=x)

    x = np.full(3, 100.0)
    idata = run_nuts(model, {"x": x, "seed": 100.0, "num_samples": 3}, num_chains=1, num_warmup=50, num_samples=30,
                     seed=0, log_likelihood=False)
    assert idata.posterior["mu"].shape == (1, 30)
    assert abs(float(idata.posterior["mu"].mean()) - 100.0) < 2.0


def test_sampler_options_are_declared_once_and_checked():
    options = SamplerOptions(num_chains=2, seed=1)
    assert (options.num_warmup, options.num_samples, options.dense_mass, options.chain_method) == (1000, 1000, True, None)
    assert options.method == choose_chain_method(2) == "parallel"  # a device per chain
    assert SamplerOptions(num_chains=jax.local_device_count() + 1).method == "sequential"
    with pytest.raises(TypeError, match="num_chain"):
        SamplerOptions(num_chain=2)
    with pytest.raises(TypeError, match="'ordered'"):  # a model argument among the options
        run_nuts(marginal_model, {"x": SMALL.x}, ordered=True)
    with pytest.raises(TypeError, match="`model_kwargs` must be a mapping"):
        run_mcmc(NUTS(normal_model), SMALL.x)


def test_run_mcmc_accepts_any_kernel_and_drops_sites():
    def model(x):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        sigma = numpyro.sample("sigma", dist.HalfNormal(5.0))
        numpyro.sample("obs", dist.Normal(mu, sigma), obs=x)

    x = np.random.default_rng(0).normal(2.0, 1.0, 50)
    idata = run_mcmc(NUTS(model), {"x": x}, num_chains=1, num_warmup=100, num_samples=200, seed=0, log_likelihood=False)
    assert idata.posterior["mu"].shape == (1, 200)
    assert abs(float(idata.posterior["mu"].mean()) - x.mean()) < 0.5
    assert "log_likelihood" not in idata.groups()
    dropped = run_mcmc(NUTS(model), {"x": x}, num_chains=1, num_warmup=20, num_samples=10, exclude_sites=("sigma",))
    assert "sigma" not in dropped.posterior and "mu" in dropped.posterior


def normal_model(x):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("obs", dist.Normal(mu, 1.0), obs=x)


PAUSE = 0.25  # seconds a slow model spends in Python each time JAX traces it


def slow_to_trace_model(traces):
    def model(x):
        time.sleep(PAUSE)
        traces.append(time.perf_counter())
        normal_model(x)

    return model


@pytest.mark.parametrize("chain_method", ["vectorized", "sequential"])
def test_compile_then_run_never_counts_compilation_as_sampling(chain_method):
    # A model that pauses in Python whenever JAX traces it: tracing is part of compiling, so
    # every pause must land in compile_time and none in run_time. Sleeps never end early,
    # so these bounds hold however loaded the machine is. ("parallel": tested below.)
    traces, timings = [], {}
    x = np.random.default_rng(0).normal(1.0, 1.0, 30)
    mcmc = MCMC(NUTS(slow_to_trace_model(traces)), num_warmup=50, num_samples=50, num_chains=2,
                chain_method=compile_then_run(chain_method, timings), progress_bar=False)
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(0), x=x)
    wall = time.perf_counter() - start
    assert len(traces) >= 1 and mcmc.get_samples()["mu"].shape == (100,)
    assert timings["compile_time"] >= PAUSE * len(traces)
    assert 0 < timings["run_time"] <= wall - PAUSE * len(traces)
    assert timings["compile_cpu_time"] > 0 and timings["run_cpu_time"] > 0


@pytest.mark.parametrize(("num_chains", "chain_method"), [(1, None), (2, "sequential"), (2, "vectorized")])
def test_runs_not_compiled_ahead_leave_the_split_unmeasured(num_chains, chain_method):
    # One chain (NumPyro applies no chain method) and NumPyro's own sequential and vectorized
    # methods (kept for their draws) are timed whole: the two parts are NaN, not guessed.
    x = np.random.default_rng(0).normal(1.0, 1.0, 30)
    attrs = run_mcmc(NUTS(normal_model), {"x": x}, num_chains=num_chains, num_warmup=20, num_samples=20,
                     chain_method=chain_method, log_likelihood=False).posterior.attrs
    assert attrs["sampling_time"] > 0
    assert np.isnan(attrs["compile_time"]) and np.isnan(attrs["run_time"])


def test_compile_then_run_bad_method():
    with pytest.raises(ValueError, match="`chain_method` must be one of"):
        compile_then_run("threads", {})


def test_parallel_chains_compiled_ahead_give_numpyros_draws_and_time_compilation_apart():
    # The book's protocol runs chains in parallel through compile_then_run: it must change the
    # timing only, never the draws, and run_mcmc must put every pause of a slow-to-trace model
    # into compile_time. Needs a device per chain (tests/conftest.py sets four).
    num_chains = min(jax.local_device_count(), 4)
    if num_chains < 2:
        pytest.skip("needs two JAX devices")
    x = np.random.default_rng(0).normal(1.0, 1.0, 30)
    draws, timings = {}, {}
    for name, method in (("numpyro", "parallel"), ("book", compile_then_run("parallel", timings))):
        mcmc = MCMC(NUTS(normal_model), num_warmup=50, num_samples=50, num_chains=num_chains, chain_method=method,
                    progress_bar=False)
        mcmc.run(jax.random.PRNGKey(3), x=x)
        draws[name] = np.asarray(mcmc.get_samples(group_by_chain=True)["mu"])
    np.testing.assert_array_equal(draws["numpyro"], draws["book"])
    assert timings["compile_time"] > 0 and timings["run_time"] > 0
    traces = []
    attrs = run_mcmc(NUTS(slow_to_trace_model(traces)), {"x": x}, num_chains=num_chains, num_warmup=50,
                     num_samples=50, log_likelihood=False).posterior.attrs
    paused = PAUSE * len(traces)
    assert attrs["chain_method"] == "parallel" and len(traces) >= 1
    assert attrs["compile_time"] >= paused
    assert 0 < attrs["run_time"] <= attrs["sampling_time"] - paused


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_chains": 0}, ValueError, "`num_chains` must be a positive integer"),
        ({"num_warmup": 1.5}, ValueError, "`num_warmup` must be a positive integer"),
        ({"num_samples": -3}, ValueError, "`num_samples` must be a positive integer"),
        ({"target_accept_prob": 1.0}, ValueError, "`target_accept_prob` must lie in"),
        ({"chain_method": "threads"}, ValueError, "`chain_method` must be"),
        ({"seed": 1.5}, TypeError, "`seed` must be an integer"),
    ],
)
def test_run_nuts_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        run_nuts(marginal_model, {"x": SMALL.x, "k": 3}, **kwargs)
    with pytest.raises(ValueError, match="`x` must be finite"):
        run_nuts(marginal_model, {"x": [1.0, np.inf], "k": 3})


def test_init_to_data_starts_near_the_quantile_split():
    strategy = init_to_data(SMALL.x, 3, radius=0.0)
    seeded = numpyro.handlers.seed(marginal_model, 0)
    trace = numpyro.handlers.trace(numpyro.handlers.substitute(seeded, substitute_fn=strategy)).get_trace(x=SMALL.x, k=3, ordered=True)
    groups = np.array_split(np.sort(SMALL.x), 3)
    np.testing.assert_allclose(trace["locs"]["value"], [g.mean() for g in groups], rtol=1e-5)
    np.testing.assert_allclose(trace["scales"]["value"], [g.std() for g in groups], rtol=1e-5)
    np.testing.assert_allclose(trace["weights"]["value"], np.full(3, 1 / 3), rtol=1e-5)


def test_init_to_data_jitters_each_chain_and_respects_site_names():
    strategy = init_to_data(SMALL.x, 3, radius=0.25, site_names=("w", "m", "s"))

    def model():
        numpyro.sample("w", dist.Dirichlet(np.ones(3)))
        with numpyro.plate("c", 3):
            numpyro.sample("m", dist.Normal(0.0, 10.0))
            numpyro.sample("s", dist.HalfCauchy(10.0))

    values = []
    for seed in (0, 1):
        seeded = numpyro.handlers.seed(model, seed)
        trace = numpyro.handlers.trace(numpyro.handlers.substitute(seeded, substitute_fn=strategy)).get_trace()
        values.append(np.asarray(trace["m"]["value"]))
    groups = np.array_split(np.sort(SMALL.x), 3)
    centers = np.array([g.mean() for g in groups])
    assert not np.allclose(values[0], values[1])
    for value in values:
        assert np.all(np.abs(value - centers) <= 0.25 + 1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 0}, ValueError, "`k` must be a positive integer"),
        ({"x": [1.0, 2.0]}, ValueError, "at least 2 points per component"),
        ({"radius": -1.0}, ValueError, "`radius` must be a non-negative number"),
        ({"site_names": ("a", "b")}, TypeError, "`site_names` must be a tuple of three"),
    ],
)
def test_init_to_data_bad_input(kwargs, error, message):
    arguments = {"x": SMALL.x, "k": 3, **kwargs}
    with pytest.raises(error, match=message):
        init_to_data(**arguments)


def synthetic_idata(posterior, diverging=None, sampling_time=10.0, compile_time=None, run_time=None):
    sample_stats = {} if diverging is None else {"diverging": diverging}
    idata = az.from_dict(posterior=posterior, sample_stats=sample_stats)
    for name, value in (("sampling_time", sampling_time), ("compile_time", compile_time), ("run_time", run_time)):
        if value is not None:
            idata.posterior.attrs[name] = value
    return idata


def test_fit_summary_on_independent_draws():
    rng = np.random.default_rng(0)
    idata = synthetic_idata({"a": rng.normal(size=(4, 1000)), "b": rng.normal(size=(4, 1000, 2)),
                             "z": rng.integers(0, 3, size=(4, 1000, 5))},
                            diverging=np.zeros((4, 1000), dtype=bool), sampling_time=8.0, compile_time=6.0,
                            run_time=2.0)
    summary = fit_summary(idata)
    assert set(summary) == {"wall_time", "compile_time", "run_time", "min_ess_bulk", "min_ess_tail",
                            "ess_per_second", "ess_per_run_second", "max_rhat", "divergences"}
    assert (summary["wall_time"], summary["compile_time"], summary["run_time"]) == (8.0, 6.0, 2.0)
    assert summary["ess_per_run_second"] == pytest.approx(summary["min_ess_bulk"] / 2.0)
    assert 3000 < summary["min_ess_bulk"] <= 4600  # independent draws: ESS close to 4000
    assert 3000 < summary["min_ess_tail"] <= 4600
    assert summary["ess_per_second"] == pytest.approx(summary["min_ess_bulk"] / 8.0)
    assert summary["max_rhat"] < 1.01
    assert summary["divergences"] == 0


def test_fit_summary_sees_disagreeing_chains_and_divergences():
    rng = np.random.default_rng(1)
    stuck = rng.normal(size=(4, 500)) + np.array([0.0, 0.0, 0.0, 5.0])[:, None]  # one chain elsewhere
    diverging = np.zeros((4, 500), dtype=bool)
    diverging[2, :7] = True
    summary = fit_summary(synthetic_idata({"a": stuck, "b": rng.normal(size=(4, 500))}, diverging=diverging))
    assert summary["max_rhat"] > 1.5
    assert summary["divergences"] == 7
    only_b = fit_summary(synthetic_idata({"a": stuck, "b": rng.normal(size=(4, 500))}), var_names=["b"])
    assert only_b["max_rhat"] < 1.02
    assert np.isnan(only_b["divergences"])  # not recorded: unknown, not zero


def test_fit_summary_without_time_and_bad_input():
    summary = fit_summary(synthetic_idata({"a": np.random.default_rng(2).normal(size=(2, 100))}, sampling_time=None))
    assert np.isnan(summary["wall_time"]) and np.isnan(summary["ess_per_second"])
    assert np.isnan(summary["run_time"]) and np.isnan(summary["ess_per_run_second"])
    with pytest.raises(ValueError, match="`var_names` must name posterior variables"):
        fit_summary(synthetic_idata({"a": np.zeros((2, 10))}), var_names=["nope"])
    with pytest.raises(ValueError, match="`idata` must have a posterior group"):
        fit_summary(az.InferenceData())


def summary_with(ess, run_time, compile_time=1.0):
    return {"wall_time": compile_time + run_time, "compile_time": compile_time, "run_time": run_time,
            "min_ess_bulk": ess, "min_ess_tail": ess, "ess_per_second": ess / (compile_time + run_time),
            "ess_per_run_second": ess / run_time, "max_rhat": 1.0, "divergences": 0}


def test_speedup_compares_sampling_after_compilation_only():
    fast, slow = summary_with(4000.0, 2.0), summary_with(500.0, 2.5)
    assert speedup(fast, slow) == pytest.approx((4000 / 2.0) / (500 / 2.5))
    # A cold cache (long compilation) or a warm one (short) changes nothing: the ratio the
    # book reports cannot depend on which chapter compiled a program first.
    cold, warm = summary_with(500.0, 2.5, compile_time=20.0), summary_with(500.0, 2.5, compile_time=0.5)
    assert speedup(fast, cold) == speedup(fast, warm)
    with pytest.raises(ValueError, match="measured, positive `ess_per_run_second`"):
        speedup(fast, {**slow, "ess_per_run_second": float("nan")})


def test_compare_fits_shows_the_same_columns_for_every_row():
    table = compare_fits({("latent", "a"): summary_with(100.0, 2.0), ("marginal", "b"): summary_with(900.0, 3.0)})
    assert list(table.columns) == ["compile s", "sampling s (after compilation)", "min bulk ESS", "min tail ESS",
                                   "bulk ESS / s of sampling", "max R-hat", "divergences"]
    assert table.loc[("marginal", "b"), "bulk ESS / s of sampling"] == pytest.approx(300.0)
    with pytest.raises(ValueError, match="missing"):
        compare_fits({"a": {"min_ess_bulk": 1.0}})
    with pytest.raises(ValueError, match="at least one fit"):
        compare_fits({})


# ---------------------------------------------------------------------------------------
# The pointwise log-likelihood of models other than the book's Gaussian ones

HEAVY = gmm_utils.simulate_gmm(n=150, seed=4)
X_HEAVY = HEAVY.locs[HEAVY.z] + HEAVY.scales[HEAVY.z] * np.random.default_rng(4).standard_t(3, size=HEAVY.n)


def student_t_reference(w, m, s, df, x):
    """MixtureSameFamily(Categorical(w), StudentT(df, m, s)).log_prob(x) for one draw."""
    mixture = dist.MixtureSameFamily(dist.Categorical(probs=w), dist.StudentT(df, m, s))
    return np.asarray(mixture.log_prob(x))


@pytest.fixture(scope="module")
def student_t_fit():
    return run_nuts(gmm_utils.student_t_mixture_model, {"x": X_HEAVY, "k": 3, "ordered": True}, num_chains=2,
                    num_warmup=150, num_samples=100, seed=2, init_strategy=init_to_data(X_HEAVY, 3))


def test_student_t_fit_stores_the_student_t_mixture_log_likelihood(student_t_fit):
    post = student_t_fit.posterior
    assert post["df"].dims == ("chain", "draw")
    stored = student_t_fit.log_likelihood["x"]
    assert stored.dims == ("chain", "draw", "point") and stored.shape == (2, 100, HEAVY.n)
    w, m, s, df = (post[name].values for name in ("weights", "locs", "scales", "df"))
    for chain, draw in ((0, 0), (0, 57), (1, 99)):
        expected = student_t_reference(w[chain, draw], m[chain, draw], s[chain, draw], df[chain, draw], X_HEAVY)
        np.testing.assert_allclose(stored.values[chain, draw], expected, rtol=1e-5, atol=1e-5)
    # ... and not the Gaussian mixture's, which the runner used to store for any model with these sites
    chain, draw = np.unravel_index(np.argmin(df), df.shape)  # the heaviest tails: where the two differ most
    gaussian = np.asarray(mixture_log_likelihood(X_HEAVY, w[chain, draw], m[chain, draw], s[chain, draw]))
    assert np.max(np.abs(stored.values[chain, draw] - gaussian)) > 0.1, df[chain, draw]
    with warnings.catch_warnings():  # 200 draws of 150 points: a Pareto k above 0.57 is possible, and beside the point
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        assert np.isfinite(az.loo(student_t_fit).elpd_loo)


def test_model_log_likelihood_of_any_model_and_draws_matches_the_closed_form():
    rng = np.random.default_rng(1)
    shape = (2, 3)
    posterior = {
        "weights": rng.dirichlet(np.ones(3), shape),
        "locs": np.sort(rng.normal(0.0, 2.0, shape + (3,)), axis=-1),
        "scales": rng.uniform(0.3, 1.5, shape + (3,)),
        "df": rng.uniform(2.0, 8.0, shape),
    }
    result = model_log_likelihood(gmm_utils.student_t_mixture_model, posterior, {"x": X_HEAVY, "k": 3, "ordered": True},
                                  chunk_size=4)  # two chunks of draws
    assert result.shape == shape + (HEAVY.n,)
    for index in np.ndindex(shape):
        expected = student_t_reference(*(posterior[n][index] for n in ("weights", "locs", "scales", "df")), X_HEAVY)
        np.testing.assert_allclose(result[index], expected, rtol=1e-5, atol=1e-5)


def test_model_log_likelihood_refuses_what_is_not_the_pointwise_marginal_one():
    posterior = {"weights": np.full((1, 2, 3), 1 / 3), "locs": np.zeros((1, 2, 3)), "scales": np.ones((1, 2, 3))}
    # labels sampled but not among the draws: the log-likelihood would be given random labels
    with pytest.raises(LogLikelihoodUnavailable, match="no draws of the model's site 'z'"):
        model_log_likelihood(gmm_utils.latent_model, posterior, {"x": SMALL.x, "k": 3})
    # labels among the draws: conditional on them, not marginal
    labelled = {**posterior, "z": np.zeros((1, 2, SMALL.n), dtype=int)}
    with pytest.raises(LogLikelihoodUnavailable, match="'z' is discrete"):
        model_log_likelihood(gmm_utils.latent_model, labelled, {"x": SMALL.x, "k": 3})

    def summed_model(x):  # one log density for all points together: no pointwise values for LOO
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        numpyro.sample("x", dist.Normal(mu, 1.0).expand([len(x)]).to_event(1), obs=x)

    with pytest.raises(LogLikelihoodUnavailable, match="one log density each"):
        model_log_likelihood(summed_model, {"mu": np.zeros((1, 2))}, {"x": SMALL.x})
    with pytest.raises(LogLikelihoodUnavailable, match="no observed sample site 'y'"):
        model_log_likelihood(summed_model, {"mu": np.zeros((1, 2))}, {"x": SMALL.x}, site="y")
    with pytest.raises(ValueError, match="`chunk_size` must be a positive integer"):
        model_log_likelihood(summed_model, {"mu": np.zeros((1, 2))}, {"x": SMALL.x}, chunk_size=0)


def test_to_inference_data_never_guesses_a_log_likelihood():
    mcmc = MCMC(NUTS(gmm_utils.student_t_mixture_model, init_strategy=init_to_data(X_HEAVY, 3)), num_warmup=10,
                num_samples=5, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), x=X_HEAVY, k=3, ordered=True)
    # Without the model's arguments the Student-t log-likelihood cannot be computed: no group, and a warning.
    with pytest.warns(UserWarning, match="no log_likelihood group stored.*student_t_mixture_model"):
        idata = gmm_utils.to_inference_data(mcmc, X_HEAVY)
    assert "log_likelihood" not in idata.groups()
    # With them, the model's own log-likelihood.
    idata = gmm_utils.to_inference_data(mcmc, X_HEAVY, model_kwargs={"k": 3, "ordered": True})
    post = idata.posterior
    expected = student_t_reference(*(post[n].values[0, 3] for n in ("weights", "locs", "scales", "df")), X_HEAVY)
    np.testing.assert_allclose(idata.log_likelihood["x"].values[0, 3], expected, rtol=1e-5, atol=1e-5)
    # The book's Gaussian models keep their marginal log-likelihood, also when enumerated.
    enumerated = MCMC(NUTS(config_enumerate(gmm_utils.latent_model)), num_warmup=10, num_samples=5, progress_bar=False)
    enumerated.run(jax.random.PRNGKey(0), x=SMALL.x, k=3, ordered=True)
    idata = gmm_utils.to_inference_data(enumerated, SMALL.x)
    w, m, s = (idata.posterior[n].values for n in ("weights", "locs", "scales"))
    np.testing.assert_allclose(idata.log_likelihood["x"].values, np.asarray(mixture_log_likelihood(SMALL.x, w, m, s)),
                               rtol=1e-5, atol=1e-5)
