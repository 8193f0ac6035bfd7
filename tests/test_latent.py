"""Tests of gmm_utils.latent: the three runners of the latent formulation, and the label sweep timer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import gmm_utils
from gmm_utils import init_to_data, label_conditional_gibbs_fn, run_blocked_gibbs, run_discrete_gibbs, run_enumerated

DATA = gmm_utils.simulate_gmm(n=60, seed=7)
TRUTH = {"weights": jnp.asarray(DATA.weights), "locs": jnp.asarray(DATA.locs), "scales": jnp.asarray(DATA.scales)}
QUICK = {"num_chains": 2, "num_warmup": 150, "num_samples": 100, "seed": 3}


def test_label_conditional_draws_from_the_responsibilities():
    gibbs_fn = label_conditional_gibbs_fn(DATA.x)
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    current = {"z": jnp.zeros(DATA.n, dtype=jnp.int32)}
    draws = np.asarray(jax.vmap(lambda key: gibbs_fn(key, current, TRUTH)["z"])(keys))  # (2000, n)
    assert draws.shape == (2000, DATA.n) and draws.dtype == np.int32
    log_terms = np.log(DATA.weights) + stats.norm.logpdf(DATA.x[:, None], DATA.locs, DATA.scales)
    responsibilities = np.exp(log_terms - logsumexp(log_terms, axis=1, keepdims=True))
    frequencies = np.stack([(draws == j).mean(axis=0) for j in range(DATA.k)], axis=1)
    standard_error = np.sqrt(responsibilities * (1 - responsibilities) / 2000)
    assert np.all(np.abs(frequencies - responsibilities) <= 5 * standard_error + 1e-3)


def test_label_conditional_bad_data():
    with pytest.raises(ValueError, match="`x` must be finite"):
        label_conditional_gibbs_fn([0.0, np.nan])


def check_like_run_nuts(idata, n_points, num_chains=2, num_draws=100):
    assert set(idata.groups()) >= {"posterior", "sample_stats", "observed_data", "log_likelihood"}
    assert idata.posterior["locs"].shape == (num_chains, num_draws, 3)
    assert idata.log_likelihood["x"].shape == (num_chains, num_draws, n_points)
    for stat in ("diverging", "energy", "n_steps", "tree_depth", "acceptance_rate", "step_size", "lp"):
        assert stat in idata.sample_stats, stat
    assert idata.posterior.attrs["sampling_time"] > 0
    # The stored log-likelihood is the pointwise *marginal* one, whatever was sampled.
    post = idata.posterior
    w, m, s = (post[name].values.astype(float) for name in ("weights", "locs", "scales"))
    x = idata.observed_data["x"].values
    expected = logsumexp(np.log(w)[..., None, :] + stats.norm.logpdf(x[:, None], m[..., None, :], s[..., None, :]), axis=-1)
    np.testing.assert_allclose(idata.log_likelihood["x"].values, expected, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def fits():
    start = init_to_data(DATA.x, 3)
    return {
        "blocked": run_blocked_gibbs(DATA.x, 3, ordered=True, init_strategy=start, keep_labels=True, **QUICK),
        "discrete": run_discrete_gibbs(DATA.x, 3, ordered=True, init_strategy=start, **QUICK),
        "enumerated": run_enumerated(DATA.x, 3, ordered=True, init_strategy=start, **QUICK),
    }


@pytest.mark.parametrize("name", ["blocked", "discrete", "enumerated"])
def test_runners_return_the_same_form_as_run_nuts(fits, name):
    check_like_run_nuts(fits[name], DATA.n)
    assert fits[name].posterior.attrs["sampler"] == {"blocked": "HMCGibbs", "discrete": "DiscreteHMCGibbs", "enumerated": "NUTS"}[name]


def test_labels_are_kept_only_on_request(fits):
    assert "z" not in fits["discrete"].posterior and "z" not in fits["enumerated"].posterior
    z = fits["blocked"].posterior["z"]
    assert z.dims == ("chain", "draw", "point") and z.shape == (2, 100, DATA.n)
    assert int(z.min()) >= 0 and int(z.max()) <= 2


@pytest.mark.parametrize("name", ["blocked", "discrete", "enumerated"])
def test_runners_find_the_components(fits, name):
    # Loose: 60 points, few draws. A wrong conditional or a broken kernel misses by far more.
    means = fits[name].posterior["locs"].mean(("chain", "draw")).values
    np.testing.assert_allclose(means, DATA.locs, atol=0.6)
    assert gmm_utils.fit_summary(fits[name])["max_rhat"] < 1.2


def test_gibbs_runners_validate_settings():
    with pytest.raises(ValueError, match="`target_accept_prob` must lie in"):
        run_blocked_gibbs(DATA.x, 3, target_accept_prob=0.0)
    with pytest.raises(ValueError, match="`num_chains` must be a positive integer"):
        run_discrete_gibbs(DATA.x, 3, num_chains=0)


def test_time_label_sweep_grows_with_n():
    small = gmm_utils.time_label_sweep(DATA.x[:20], DATA.weights, DATA.locs, DATA.scales, repeats=2)
    large = gmm_utils.time_label_sweep(np.tile(DATA.x, 10), DATA.weights, DATA.locs, DATA.scales, repeats=2)
    assert 0 < small < large
    with pytest.raises(ValueError, match="`repeats` must be a positive integer"):
        gmm_utils.time_label_sweep(DATA.x, DATA.weights, DATA.locs, DATA.scales, repeats=0)
