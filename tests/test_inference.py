"""Tests of gmm_utils.inference: the log-likelihood, run_nuts/run_mcmc, init_to_data, fit_summary."""

from __future__ import annotations

import arviz as az
import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import NUTS
from scipy import stats
from scipy.special import logsumexp

import gmm_utils
from gmm_utils import fit_summary, init_to_data, marginal_model, mixture_log_likelihood, run_mcmc, run_nuts

SMALL = gmm_utils.simulate_gmm(n=120, seed=3)


def test_mixture_log_likelihood_matches_scipy_with_leading_axes():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(3), (2, 5))
    locs = rng.normal(0.0, 2.0, (2, 5, 3))
    scales = rng.uniform(0.2, 1.5, (2, 5, 3))
    x = rng.normal(0.0, 3.0, 11)
    with jax.enable_x64(True):
        result = np.asarray(mixture_log_likelihood(weights, locs, scales, x))
    expected = logsumexp(np.log(weights)[..., None, :] + stats.norm.logpdf(x[:, None], locs[..., None, :], scales[..., None, :]), axis=-1)
    assert result.shape == (2, 5, 11)
    np.testing.assert_allclose(result, expected, atol=1e-9)


@pytest.fixture(scope="module")
def small_fit():
    return run_nuts(marginal_model, x=SMALL.x, k=3, ordered=True, num_chains=2, num_warmup=200, num_samples=150, seed=5,
                    init_strategy=init_to_data(SMALL.x, 3))


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
    idata = run_nuts(marginal_model, x=SMALL.x, k=3, num_chains=1, num_warmup=100, num_samples=50, seed=0,
                     init_strategy=init_to_data(SMALL.x, 3))
    lp = idata.sample_stats["lp"].values
    assert np.isfinite(lp).all() and lp.std() > 0


def test_same_seed_same_draws():
    kwargs = dict(x=SMALL.x, k=3, ordered=True, num_chains=1, num_warmup=50, num_samples=20,
                  init_strategy=init_to_data(SMALL.x, 3))
    first = run_nuts(marginal_model, seed=11, **kwargs).posterior["locs"].values
    second = run_nuts(marginal_model, seed=11, **kwargs).posterior["locs"].values
    np.testing.assert_array_equal(first, second)


def test_run_mcmc_accepts_any_kernel_and_drops_sites():
    def model(x):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        sigma = numpyro.sample("sigma", dist.HalfNormal(5.0))
        numpyro.sample("obs", dist.Normal(mu, sigma), obs=x)

    x = np.random.default_rng(0).normal(2.0, 1.0, 50)
    idata = run_mcmc(NUTS(model), num_chains=1, num_warmup=100, num_samples=200, seed=0, log_likelihood=False, x=x)
    assert idata.posterior["mu"].shape == (1, 200)
    assert abs(float(idata.posterior["mu"].mean()) - x.mean()) < 0.5
    assert "log_likelihood" not in idata.groups()
    dropped = run_mcmc(NUTS(model), num_chains=1, num_warmup=20, num_samples=10, exclude_sites=("sigma",), x=x)
    assert "sigma" not in dropped.posterior and "mu" in dropped.posterior


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_chains": 0}, ValueError, "`num_chains` must be a positive integer"),
        ({"num_warmup": 1.5}, ValueError, "`num_warmup` must be a positive integer"),
        ({"num_samples": -3}, ValueError, "`num_samples` must be a positive integer"),
        ({"target_accept_prob": 1.0}, ValueError, "`target_accept_prob` must lie in"),
        ({"chain_method": "threads"}, ValueError, "`chain_method` must be"),
        ({"seed": 1.5}, TypeError, "`seed` must be an integer"),
        ({"x": [1.0, np.inf]}, ValueError, "`x` must be finite"),
    ],
)
def test_run_nuts_bad_input(kwargs, error, message):
    arguments = {"x": SMALL.x, "k": 3, **kwargs}
    with pytest.raises(error, match=message):
        run_nuts(marginal_model, **arguments)


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


def synthetic_idata(posterior, diverging=None, sampling_time=10.0):
    sample_stats = {} if diverging is None else {"diverging": diverging}
    idata = az.from_dict(posterior=posterior, sample_stats=sample_stats)
    if sampling_time is not None:
        idata.posterior.attrs["sampling_time"] = sampling_time
    return idata


def test_fit_summary_on_independent_draws():
    rng = np.random.default_rng(0)
    idata = synthetic_idata({"a": rng.normal(size=(4, 1000)), "b": rng.normal(size=(4, 1000, 2)),
                             "z": rng.integers(0, 3, size=(4, 1000, 5))},
                            diverging=np.zeros((4, 1000), dtype=bool), sampling_time=8.0)
    summary = fit_summary(idata)
    assert set(summary) == {"wall_time", "min_ess_bulk", "min_ess_tail", "ess_per_second", "max_rhat", "divergences"}
    assert summary["wall_time"] == 8.0
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
    with pytest.raises(ValueError, match="`var_names` must name posterior variables"):
        fit_summary(synthetic_idata({"a": np.zeros((2, 10))}), var_names=["nope"])
    with pytest.raises(ValueError, match="`idata` must have a posterior group"):
        fit_summary(az.InferenceData())
