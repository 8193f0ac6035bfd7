"""Tests of gmm_utils.models: sites, shapes, log densities, bad input, and one real fit."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.contrib.funsor import config_enumerate, enum
from numpyro.contrib.funsor import log_density as enumerated_log_density
from numpyro.infer import Predictive
from numpyro.infer.util import log_density
from scipy import stats
from scipy.special import logsumexp

import gmm_utils
from gmm_utils import latent_model, marginal_model, student_t_mixture_model

X = np.array([-1.2, -0.8, 0.5, 1.1, 3.7, 4.2, 4.4])
PARAMS = {"weights": np.array([0.2, 0.3, 0.5]), "locs": np.array([-1.0, 1.0, 4.0]), "scales": np.array([0.2, 0.9, 0.5])}


def scipy_marginal_log_joint(x, weights, locs, scales, loc_sd=10.0, scale_b=10.0, ordered=False):
    prior = stats.dirichlet.logpdf(weights, np.ones(len(weights)))
    prior += stats.norm.logpdf(locs, 0.0, loc_sd).sum() + stats.halfcauchy.logpdf(scales, 0.0, scale_b).sum()
    if ordered:
        prior += math.lgamma(len(locs) + 1)
    likelihood = logsumexp(np.log(weights) + stats.norm.logpdf(np.asarray(x)[:, None], locs, scales), axis=1).sum()
    return prior + likelihood


@pytest.mark.parametrize("model", [marginal_model, latent_model])
def test_prior_predictive_sites_and_shapes(model):
    draws = Predictive(model, num_samples=6)(jax.random.PRNGKey(0), n=40, k=4)
    assert draws["weights"].shape == (6, 4)
    assert draws["locs"].shape == (6, 4)
    assert draws["scales"].shape == (6, 4)
    assert draws["x"].shape == (6, 40)
    np.testing.assert_allclose(draws["weights"].sum(axis=-1), 1.0, rtol=1e-5)
    assert bool(jnp.all(draws["scales"] > 0))
    if model is latent_model:
        assert draws["z"].shape == (6, 40)
        assert int(draws["z"].min()) >= 0 and int(draws["z"].max()) <= 3


def test_ordered_prior_gives_increasing_means():
    draws = Predictive(marginal_model, num_samples=200)(jax.random.PRNGKey(1), n=5, k=3, ordered=True)
    assert bool(jnp.all(jnp.diff(draws["locs"], axis=-1) > 0))


@pytest.mark.parametrize("ordered", [False, True])
def test_marginal_log_joint_matches_scipy(ordered):
    with jax.enable_x64(True):
        params = {name: jnp.asarray(value) for name, value in PARAMS.items()}
        value, _ = log_density(marginal_model, (), {"x": jnp.asarray(X), "k": 3, "ordered": ordered}, params)
    expected = scipy_marginal_log_joint(X, *(PARAMS[n] for n in ("weights", "locs", "scales")), ordered=ordered)
    assert float(value) == pytest.approx(expected, abs=1e-6)


def test_priors_are_arguments():
    with jax.enable_x64(True):
        params = {name: jnp.asarray(value) for name, value in PARAMS.items()}
        kwargs = {"x": jnp.asarray(X), "k": 3, "loc_prior": dist.Normal(1.0, 2.0), "scale_prior": dist.LogNormal(0.0, 1.0),
                  "weights_prior": dist.Dirichlet(jnp.full(3, 2.0))}
        value, _ = log_density(marginal_model, (), kwargs, params)
    w, m, s = (PARAMS[n] for n in ("weights", "locs", "scales"))
    expected = (
        stats.dirichlet.logpdf(w, np.full(3, 2.0)) + stats.norm.logpdf(m, 1.0, 2.0).sum()
        + stats.lognorm.logpdf(s, 1.0).sum()
        + logsumexp(np.log(w) + stats.norm.logpdf(X[:, None], m, s), axis=1).sum()
    )
    assert float(value) == pytest.approx(expected, abs=1e-6)


def test_enumerated_latent_model_equals_marginal_model():
    # Summing z out of the latent model (funsor) gives the marginal model's log joint.
    with jax.enable_x64(True):
        params = {name: jnp.asarray(value) for name, value in PARAMS.items()}
        kwargs = {"x": jnp.asarray(X), "k": 3, "ordered": True}
        marginal, _ = log_density(marginal_model, (), kwargs, params)
        enumerated_model = enum(config_enumerate(latent_model), first_available_dim=-2)  # one plate level
        enumerated, _ = enumerated_log_density(enumerated_model, (), kwargs, params)
    assert float(enumerated) == pytest.approx(float(marginal), abs=1e-8)


def test_latent_model_log_joint_with_labels():
    z = jnp.array([0, 0, 1, 1, 2, 2, 2])
    with jax.enable_x64(True):
        params = {**{name: jnp.asarray(value) for name, value in PARAMS.items()}, "z": z}
        value, _ = log_density(latent_model, (), {"x": jnp.asarray(X), "k": 3}, params)
    w, m, s = (PARAMS[n] for n in ("weights", "locs", "scales"))
    zn = np.asarray(z)
    expected = (
        stats.dirichlet.logpdf(w, np.ones(3)) + stats.norm.logpdf(m, 0.0, 10.0).sum()
        + stats.halfcauchy.logpdf(s, 0.0, 10.0).sum() + np.log(w[zn]).sum() + stats.norm.logpdf(X, m[zn], s[zn]).sum()
    )
    assert float(value) == pytest.approx(expected, abs=1e-6)


def test_observed_site_is_the_data():
    trace = handlers.trace(handlers.seed(marginal_model, 0)).get_trace(x=X, k=3)
    assert trace["x"]["is_observed"]
    np.testing.assert_allclose(trace["x"]["value"], X, rtol=1e-6)
    assert isinstance(trace["x"]["fn"].base_dist if hasattr(trace["x"]["fn"], "base_dist") else trace["x"]["fn"],
                      gmm_utils.MixtureGaussian)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "give the data `x`, or the number of points `n`"),
        ({"x": [[1.0, 2.0]]}, ValueError, "`x` must be one-dimensional"),
        ({"x": [1.0, np.nan]}, ValueError, "`x` must be finite"),
        ({"x": X, "n": 3}, ValueError, "does not match the length of `x`"),
        ({"n": 0}, ValueError, "`n` must be a positive integer"),
        ({"x": X, "k": 0}, ValueError, "`k` must be a positive integer"),
        ({"x": X, "loc_prior": 3.0}, TypeError, "`loc_prior` must be a NumPyro distribution"),
        ({"x": X, "scale_prior": dist.HalfNormal(jnp.ones(3))}, ValueError, "`scale_prior` must have batch_shape ()"),
        ({"x": X, "weights_prior": dist.Dirichlet(jnp.ones(2))}, ValueError, "`weights_prior` must have batch_shape ()"),
    ],
)
@pytest.mark.parametrize("model", [marginal_model, latent_model])
def test_bad_input_raises(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        handlers.seed(model, 0)(**kwargs)


def test_marginal_model_recovers_the_seed_parameters():
    # The seed notebook's data (simulate_gmm defaults); one unordered chain, as the seed ran it.
    # Every true parameter must lie in its central 99% interval, up to the order of the labels.
    data = gmm_utils.simulate_gmm()
    idata = gmm_utils.run_nuts(
        marginal_model, {"x": data.x, "k": data.k}, num_chains=1, num_warmup=400, num_samples=800, seed=1,
        init_strategy=gmm_utils.init_to_data(data.x, data.k),
    )
    draws = {name: idata.posterior[name].values.reshape(-1, data.k) for name in ("weights", "locs", "scales")}
    order = np.argsort(draws["locs"].mean(axis=0))
    for name, truth in (("weights", data.weights), ("locs", data.locs), ("scales", data.scales)):
        low, high = np.quantile(draws[name][:, order], [0.005, 0.995], axis=0)
        assert np.all((low <= truth) & (truth <= high)), (name, low, high, truth)


# ---------------------------------------------------------------------------------------
# The Student-t mixture (chapter 5)

T_PARAMS = {**PARAMS, "df": np.array(4.5)}


def test_student_t_prior_predictive_sites_and_shapes():
    draws = Predictive(student_t_mixture_model, num_samples=6)(jax.random.PRNGKey(0), n=40, k=4, ordered=True)
    assert {name: tuple(value.shape) for name, value in draws.items()} == {
        "weights": (6, 4), "locs": (6, 4), "scales": (6, 4), "df": (6,), "x": (6, 40)
    }
    np.testing.assert_allclose(draws["weights"].sum(axis=-1), 1.0, rtol=1e-5)
    assert bool(jnp.all(draws["scales"] > 0)) and bool(jnp.all(draws["df"] > 0))
    assert bool(jnp.all(jnp.diff(draws["locs"], axis=-1) > 0))
    assert bool(jnp.all(jnp.isfinite(draws["x"])))


def test_student_t_log_joint_matches_scipy():
    with jax.enable_x64(True):
        params = {name: jnp.asarray(value) for name, value in T_PARAMS.items()}
        value, trace = log_density(student_t_mixture_model, (), {"x": jnp.asarray(X), "k": 3}, params)
    w, m, s, df = (T_PARAMS[n] for n in ("weights", "locs", "scales", "df"))
    expected = (
        stats.dirichlet.logpdf(w, np.ones(3)) + stats.norm.logpdf(m, 0.0, 10.0).sum()
        + stats.halfcauchy.logpdf(s, 0.0, 10.0).sum()
        + stats.gamma.logpdf(df, a=2.0, scale=1 / 0.1)  # Gamma(2, rate 0.1)
        + logsumexp(np.log(w) + stats.t.logpdf(X[:, None], df, m, s), axis=1).sum()
    )
    assert float(value) == pytest.approx(expected, abs=1e-6)
    # The likelihood is NumPyro's own MixtureSameFamily(Categorical, StudentT).
    fn = trace["x"]["fn"]
    fn = getattr(fn, "base_dist", fn)
    assert isinstance(fn, dist.MixtureSameFamily)
    assert isinstance(fn.mixing_distribution, dist.CategoricalProbs)
    assert isinstance(fn.component_distribution, dist.StudentT)


def test_student_t_model_approaches_the_gaussian_mixture_for_large_df():
    with jax.enable_x64(True):
        params = {name: jnp.asarray(value) for name, value in PARAMS.items()}
        gaussian, _ = log_density(marginal_model, (), {"x": jnp.asarray(X), "k": 3}, params)
        student, _ = log_density(student_t_mixture_model, (), {"x": jnp.asarray(X), "k": 3},
                                 {**params, "df": jnp.asarray(1e7)})
    df_prior = stats.gamma.logpdf(1e7, a=2.0, scale=10.0)
    assert float(student) - df_prior == pytest.approx(float(gaussian), abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "give the data `x`, or the number of points `n`"),
        ({"x": [1.0, np.nan]}, ValueError, "`x` must be finite"),
        ({"x": X, "k": 0}, ValueError, "`k` must be a positive integer"),
        ({"x": X, "df_prior": 3.0}, TypeError, "`df_prior` must be a NumPyro distribution"),
        ({"x": X, "df_prior": dist.Gamma(jnp.ones(2), 0.1)}, ValueError, "`df_prior` must have batch_shape ()"),
        ({"x": X, "df_prior": dist.Normal(10.0, 1.0)}, ValueError, "`df_prior` must have positive support"),
        ({"x": X, "loc_prior": 3.0}, TypeError, "`loc_prior` must be a NumPyro distribution"),
    ],
)
def test_student_t_bad_input_names_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        handlers.seed(student_t_mixture_model, 0)(**kwargs)


# ---------------------------------------------------------------------------------------
# The truncated Dirichlet-process mixture (stick-breaking)


def test_stick_breaking_weights_lie_on_the_simplex():
    np.testing.assert_allclose(gmm_utils.stick_breaking_weights(jnp.array([0.5, 0.5])), [0.5, 0.25, 0.25])
    proportions = jax.random.uniform(jax.random.PRNGKey(0), (100, 9))
    weights = np.asarray(gmm_utils.stick_breaking_weights(proportions))
    assert weights.shape == (100, 10) and (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("concentration", [0.5, 3.0])
def test_stick_breaking_prior_weights_have_the_exact_means(concentration):
    # E[w_j] = a^(j-1) / (1 + a)^j for j < T; the last weight takes the rest, (a / (1 + a))^(T-1).
    truncation, num_draws = 6, 40_000
    draws = Predictive(gmm_utils.stick_breaking_model, num_samples=num_draws)(
        jax.random.PRNGKey(3), n=5, truncation=truncation, concentration=concentration)
    weights = np.asarray(draws["weights"], dtype=float)
    share = concentration / (1 + concentration)
    expected = [share**j / (1 + concentration) for j in range(truncation - 1)] + [share ** (truncation - 1)]
    standard_error = weights.std(axis=0) / np.sqrt(num_draws)
    assert np.all(np.abs(weights.mean(axis=0) - expected) < 5 * standard_error), (weights.mean(axis=0), expected)
    assert draws["stick_proportions"].shape == (num_draws, truncation - 1) and draws["x"].shape == (num_draws, 5)


def test_stick_breaking_model_log_joint_is_the_betas_and_the_mixture():
    x = np.array([-1.0, 0.5, 2.0])
    proportions, locs, scales = np.array([0.3, 0.6]), np.array([-1.0, 0.0, 2.0]), np.array([0.5, 1.0, 1.5])
    params = {"stick_proportions": proportions, "locs": locs, "scales": scales}
    log_joint, _ = log_density(gmm_utils.stick_breaking_model, (x,), {"truncation": 3, "concentration": 2.0}, params)
    weights = np.array([0.3, 0.7 * 0.6, 0.7 * 0.4])
    expected = (stats.beta(1.0, 2.0).logpdf(proportions).sum() + stats.norm(0, 10).logpdf(locs).sum()
                + stats.halfcauchy(scale=10).logpdf(scales).sum()
                + logsumexp(np.log(weights) + stats.norm(locs, scales).logpdf(x[:, None]), axis=1).sum())
    np.testing.assert_allclose(float(log_joint), expected, rtol=1e-5)


def test_stick_breaking_concentration_can_have_a_prior():
    draws = Predictive(gmm_utils.stick_breaking_model, num_samples=4)(
        jax.random.PRNGKey(0), n=5, truncation=4, concentration=dist.Gamma(2.0, 2.0))
    assert draws["concentration"].shape == (4,) and (np.asarray(draws["concentration"]) > 0).all()
    # Its log density enters the joint: Gamma(2, 2) at alpha, and the sticks' Beta(1, alpha).
    x = np.array([0.0, 1.0])
    params = {"concentration": 1.5, "stick_proportions": np.array([0.4]), "locs": np.array([0.0, 1.0]),
              "scales": np.array([1.0, 1.0])}
    with_prior, _ = log_density(gmm_utils.stick_breaking_model, (x,), {"truncation": 2, "concentration": dist.Gamma(2.0, 2.0)},
                                params)
    fixed, _ = log_density(gmm_utils.stick_breaking_model, (x,), {"truncation": 2, "concentration": 1.5},
                           {name: value for name, value in params.items() if name != "concentration"})
    np.testing.assert_allclose(float(with_prior) - float(fixed), stats.gamma(2.0, scale=0.5).logpdf(1.5), rtol=1e-5)


def test_stick_breaking_gradient_stays_finite_when_the_last_sticks_underflow():
    # With a small concentration the sticks sit near 1 and the last weights underflow to 0 in float32.
    x = jnp.array([0.0, 1.0, 2.0])
    params = {"stick_proportions": jnp.full(11, 0.9999), "locs": jnp.linspace(-1.0, 1.0, 12), "scales": jnp.ones(12)}

    def log_joint(proportions):
        values = {**params, "stick_proportions": proportions}
        return log_density(gmm_utils.stick_breaking_model, (x,), {"truncation": 12, "concentration": 0.1}, values)[0]

    assert np.isfinite(log_joint(params["stick_proportions"]))
    assert np.all(np.isfinite(jax.grad(log_joint)(params["stick_proportions"])))


def test_stick_breaking_fit_finds_two_separated_clusters_and_stores_the_log_likelihood():
    # Two clusters 10 standard deviations apart: the DP mixture never joins them, and most draws occupy
    # just two of its eight components. Not all: a DP mixture's posterior keeps some draws with a small
    # extra cluster (Miller and Harrison 2013), so the share with exactly two is not near one.
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(-5.0, 1.0, 40), rng.normal(5.0, 1.0, 40)])
    idata = gmm_utils.run_nuts(gmm_utils.stick_breaking_model, {"x": x, "truncation": 8}, num_chains=2,
                               num_warmup=300, num_samples=300, seed=2)
    assert idata.log_likelihood["x"].shape == (2, 300, 80)
    labels = gmm_utils.sample_labels(idata, x, num_draws=200)
    occupied = np.array([np.unique(row).size for row in labels])
    assert occupied.min() >= 2 and np.bincount(occupied).argmax() == 2, np.bincount(occupied)
    together = gmm_utils.co_clustering(labels)
    for cluster in (slice(0, 40), slice(40, 80)):
        assert together[cluster, cluster].mean() > 0.9 and together[cluster, cluster].min() > 0.7
    assert together[:40, 40:].max() < 0.05


@pytest.mark.parametrize(
    "kwargs, error, message",
    [({"truncation": 1}, ValueError, "truncation"), ({"truncation": 2.5}, ValueError, "truncation"),
     ({"concentration": 0.0}, ValueError, "concentration"), ({"concentration": -1.0}, ValueError, "concentration"),
     ({"concentration": float("nan")}, ValueError, "concentration"), ({"concentration": "1"}, TypeError, "concentration"),
     ({"concentration": dist.Normal(0.0, 1.0)}, ValueError, "concentration"),
     ({"concentration": np.array([1.0, 2.0])}, TypeError, "concentration"),
     ({"concentration": np.array("1")}, TypeError, "concentration"), ({"loc_prior": 1.0}, TypeError, "loc_prior")],
)
def test_stick_breaking_bad_input_names_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        handlers.seed(gmm_utils.stick_breaking_model, 0)(np.zeros(5), **kwargs)


def test_mixture_parameters_given_weights_are_checked():
    sample = handlers.seed(gmm_utils.models.sample_mixture_parameters, 0)
    with pytest.raises(ValueError, match="weights"):
        sample(3, weights=jnp.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="not both"):
        sample(2, weights=jnp.array([0.5, 0.5]), weights_prior=dist.Dirichlet(jnp.ones(2)))
    weights, locs, scales = sample(2, weights=jnp.array([0.3, 0.7]))
    assert weights.tolist() == pytest.approx([0.3, 0.7]) and locs.shape == scales.shape == (2,)
