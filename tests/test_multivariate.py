"""The multivariate mixture: its density against SciPy and NumPyro, sampling, the model, relabelling."""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.infer import Predictive
from scipy.stats import multivariate_normal

import gmm_utils
from gmm_utils import MultivariateMixtureGaussian, multivariate_mixture_model


def random_mixture(k: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(k))
    locs = rng.normal(0.0, 2.0, size=(k, d))
    factors = rng.normal(size=(k, d, d))
    covariances = factors @ np.swapaxes(factors, -1, -2) + 0.5 * np.eye(d)
    return weights, locs, np.linalg.cholesky(covariances), covariances


@pytest.mark.parametrize("k, d", [(1, 1), (2, 2), (3, 4), (5, 3)])
def test_log_density_matches_scipy(k, d):
    weights, locs, trils, covariances = random_mixture(k, d, seed=k * 10 + d)
    x = np.random.default_rng(1).normal(0.0, 3.0, size=(200, d))
    expected = np.log(sum(w * multivariate_normal(m, c).pdf(x) for w, m, c in zip(weights, locs, covariances)))
    mixture = MultivariateMixtureGaussian(weights, locs, trils, validate_args=True)
    np.testing.assert_allclose(mixture.log_prob(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)


def test_value_and_gradient_match_numpyros_mixture_same_family():
    weights, locs, trils, _ = random_mixture(3, 4, seed=3)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(150, 4)))
    logits = jnp.log(jnp.asarray(weights))

    def ours(logits, locs, trils):
        return MultivariateMixtureGaussian(jax.nn.softmax(logits), locs, trils).log_prob(x).sum()

    def numpyros(logits, locs, trils):
        components = dist.MultivariateNormal(locs, scale_tril=trils)
        return dist.MixtureSameFamily(dist.Categorical(logits=logits), components).log_prob(x).sum()

    arguments = (logits, jnp.asarray(locs), jnp.asarray(trils))
    value, gradients = jax.jit(jax.value_and_grad(ours, argnums=(0, 1, 2)))(*arguments)
    expected_value, expected_gradients = jax.value_and_grad(numpyros, argnums=(0, 1, 2))(*arguments)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    for gradient, expected in zip(gradients, expected_gradients):
        np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-3)


def test_samples_have_the_mixtures_mean_and_covariance():
    weights, locs, trils, covariances = random_mixture(3, 2, seed=4)
    draws = np.asarray(MultivariateMixtureGaussian(weights, locs, trils).sample(jax.random.PRNGKey(0), (40_000,)))
    mean = weights @ locs
    covariance = sum(w * (c + np.outer(m, m)) for w, m, c in zip(weights, locs, covariances)) - np.outer(mean, mean)
    standard_errors = np.sqrt(np.diag(covariance) / draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * standard_errors)
    np.testing.assert_allclose(np.cov(draws.T), covariance, rtol=0.05, atol=0.05)


def test_batch_shapes_jit_vmap_and_pytree():
    weights, locs, trils, _ = random_mixture(2, 3)
    batched = MultivariateMixtureGaussian(np.stack([weights] * 5), locs, trils)
    assert batched.batch_shape == (5,) and batched.event_shape == (3,)
    assert batched.log_prob(jnp.zeros((7, 5, 3))).shape == (7, 5)
    assert batched.sample(jax.random.PRNGKey(1), (4,)).shape == (4, 5, 3)
    mixture = MultivariateMixtureGaussian(weights, locs, trils)
    leaves, tree = jax.tree_util.tree_flatten(mixture)
    rebuilt = jax.tree_util.tree_unflatten(tree, leaves)
    points = jnp.ones((6, 3))
    np.testing.assert_allclose(rebuilt.log_prob(points), mixture.log_prob(points))
    per_point = jax.vmap(lambda point: jax.jit(mixture.log_prob)(point))(points)
    np.testing.assert_allclose(per_point, mixture.log_prob(points), rtol=1e-6)


@pytest.mark.parametrize(
    "change, name",
    [
        (lambda w, m, l: (w * 2, m, l), "weights"),
        (lambda w, m, l: (w, m.at[0, 0].set(jnp.nan), l), "locs"),
        (lambda w, m, l: (w, m, l.at[0, 0, 0].set(-1.0)), "scale_trils"),
        (lambda w, m, l: (w, m, l.at[0, 0, 1].set(0.5)), "scale_trils"),  # not lower triangular
    ],
)
def test_invalid_parameters_raise_naming_the_parameter(change, name):
    weights, locs, trils, _ = (jnp.asarray(a) for a in random_mixture(2, 2))
    with pytest.raises(ValueError, match=f"`{name}`"):
        MultivariateMixtureGaussian(*change(weights, locs, trils), validate_args=True)


@pytest.mark.parametrize(
    "shapes, name",
    [(((2,), (2, 3), (2, 3, 2)), "scale_trils"), (((3,), (2, 3), (2, 3, 3)), "weights"),
     (((2,), (3,), (2, 3, 3)), "locs"), (((4, 2), (5, 2, 3), (2, 3, 3)), "batch shapes")],
)
def test_shapes_that_do_not_fit_raise(shapes, name):
    arrays = [np.ones(shape) for shape in shapes]
    with pytest.raises(ValueError, match=name):
        MultivariateMixtureGaussian(*arrays)


def test_prior_predictive_and_ordering_of_the_model():
    draws = Predictive(multivariate_mixture_model, num_samples=50)(jax.random.PRNGKey(0), k=3, n=20, d=2, ordered_by=1)
    assert draws["x"].shape == (50, 20, 2) and draws["locs"].shape == (50, 3, 2)
    assert np.all(np.diff(np.asarray(draws["locs"][:, :, 1]), axis=1) > 0)  # coordinate 1's means are sorted
    assert not np.all(np.diff(np.asarray(draws["locs"][:, :, 0]), axis=1) > 0)  # coordinate 0's are not
    assert draws["correlations"].shape == (50, 3, 1)
    assert np.all(np.abs(np.asarray(draws["correlations"])) <= 1.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x": np.zeros(10)}, ValueError, "shape \\(n, d\\)"),
        ({"x": np.full((4, 2), np.nan)}, ValueError, "`x` must be finite"),
        ({"x": np.zeros((4, 2)), "ordered_by": 2}, ValueError, "ordered_by"),
        ({"x": np.zeros((4, 2)), "k": 0}, ValueError, "`k`"),
        ({"n": 5}, ValueError, "`n` and `d`"),
        ({"x": np.zeros((4, 2)), "scale_prior": dist.Normal(0.0, 1.0)}, ValueError, "scale_prior"),
        ({"x": np.zeros((4, 2)), "loc_prior": 1.0}, TypeError, "loc_prior"),
        ({"x": np.zeros((4, 2)), "lkj_concentration": 0.0}, ValueError, "lkj_concentration"),
    ],
)
def test_model_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        Predictive(multivariate_mixture_model, num_samples=1)(jax.random.PRNGKey(0), **kwargs)


def test_relabel_draws_undoes_known_label_switching():
    rng = np.random.default_rng(5)
    chains, draws, k, d = 3, 200, 3, 2
    true_locs = np.array([[-2.0, 0.0], [0.0, 1.5], [2.5, -1.0]])
    true_weights = np.array([0.2, 0.3, 0.5])
    locs = true_locs + 0.1 * rng.normal(size=(chains, draws, k, d))
    weights = np.broadcast_to(true_weights, (chains, draws, k)).copy()
    switches = np.array([rng.permutation(k) for _ in range(chains * draws)]).reshape(chains, draws, k)
    switched = az.from_dict(posterior={
        "locs": np.take_along_axis(locs, switches[..., None], axis=2),
        "weights": np.take_along_axis(weights, switches, axis=2),
        "total": rng.normal(size=(chains, draws)),  # not per component: left alone
    })
    assert az.rhat(switched)["weights"].max() > 1.05 or np.ptp(switched.posterior["weights"].values[..., 0]) > 0.2
    relabelled, permutations = gmm_utils.relabel_draws(switched, true_locs + 0.3)
    np.testing.assert_allclose(relabelled.posterior["weights"].values, weights)
    np.testing.assert_allclose(relabelled.posterior["locs"].values, locs)
    np.testing.assert_array_equal(permutations, np.argsort(switches, axis=2))
    np.testing.assert_array_equal(relabelled.posterior["total"].values, switched.posterior["total"].values)
    assert not np.array_equal(switched.posterior["weights"].values, weights)  # the input is not changed


def test_relabel_draws_rejects_bad_input():
    fit = az.from_dict(posterior={"locs": np.zeros((1, 4, 3, 2))})
    with pytest.raises(ValueError, match="reference_locs"):
        gmm_utils.relabel_draws(fit, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reference_locs"):
        gmm_utils.relabel_draws(fit, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="no posterior `locs`"):
        gmm_utils.relabel_draws(az.from_dict(posterior={"weights": np.zeros((1, 4, 3))}), np.zeros(3))
    with pytest.raises(TypeError, match="idata"):
        gmm_utils.relabel_draws({"locs": np.zeros((1, 4, 3))}, np.zeros(3))


def test_run_nuts_stores_the_multivariate_pointwise_log_likelihood():
    x = np.random.default_rng(6).normal(size=(30, 2))
    fit = gmm_utils.run_nuts(multivariate_mixture_model, {"x": x, "k": 2}, num_chains=1, num_warmup=30,
                             num_samples=5, seed=0, dense_mass=False)
    log_likelihood = fit.log_likelihood["x"].values
    assert log_likelihood.shape == (1, 5, 30)
    draw = fit.posterior.isel(chain=0, draw=3)
    trils = draw["scales"].values[..., None] * draw["corr_cholesky"].values
    expected = MultivariateMixtureGaussian(draw["weights"].values, draw["locs"].values, trils).log_prob(x)
    np.testing.assert_allclose(log_likelihood[0, 3], expected, rtol=1e-5)


def test_fit_datasets_fits_vectors_and_as_chains_stores_their_log_likelihood():
    x = np.asarray(MultivariateMixtureGaussian(np.array([0.4, 0.6]), np.array([[-2.0, 0.0], [2.0, 1.0]]),
                                               np.broadcast_to(0.5 * np.eye(2), (2, 2, 2))).sample(
        jax.random.PRNGKey(3), (60,)))
    fits = gmm_utils.fit_datasets(multivariate_mixture_model, np.stack([x] * 4), {"k": 2, "ordered_by": 0},
                                  vectorize=False, num_warmup=100, num_samples=50, dense_mass=False)
    fit = fits.as_chains(slice(None), x)
    assert fit.posterior["locs"].shape == (4, 50, 2, 2) and fit.log_likelihood["x"].shape == (4, 50, 60)
    draw = fit.posterior.isel(chain=1, draw=7)
    trils = draw["scales"].values[..., None] * draw["corr_cholesky"].values
    expected = MultivariateMixtureGaussian(draw["weights"].values, draw["locs"].values, trils).log_prob(x)
    np.testing.assert_allclose(fit.log_likelihood["x"].values[1, 7], expected, rtol=1e-5)
    np.testing.assert_allclose(np.sort(fit.posterior["locs"].values[..., 0].mean(axis=(0, 1))), [-2.0, 2.0], atol=0.5)


def test_init_near_rejects_bad_input():
    with pytest.raises(TypeError, match="`values`"):
        gmm_utils.init_near([1.0, 2.0])
    with pytest.raises(ValueError, match="`radius`"):
        gmm_utils.init_near({"locs": np.zeros(2)}, radius=-1.0)
