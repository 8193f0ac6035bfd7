"""Tests of gmm_utils.distributions: MixtureGaussian and OrderStatistics.

Log densities are compared with SciPy in 64-bit precision, to 1e-6; gradients with
NumPyro's own MixtureSameFamily; samples with the exact mixture moments and CDF.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.distributions import biject_to, constraints
from scipy import stats
from scipy.special import logsumexp

from gmm_utils import mixture_moments
from gmm_utils.distributions import MixtureGaussian, OrderStatistics


def random_parameters(rng: np.random.Generator, batch_shape: tuple[int, ...], k: int):
    loc = rng.normal(0.0, 3.0, batch_shape + (k,))
    scale = rng.uniform(0.1, 2.0, batch_shape + (k,))
    weights = rng.dirichlet(np.ones(k), batch_shape)
    return loc, scale, weights


def scipy_mixture_logpdf(value, loc, scale, weights):
    """log sum_j w_j N(value | loc_j, scale_j), broadcasting value against the batch shape."""
    value = np.asarray(value)[..., None]
    return logsumexp(np.log(weights) + stats.norm.logpdf(value, loc, scale), axis=-1)


@pytest.mark.parametrize(
    ("batch_shape", "value_shape", "k"),
    [((), (7,), 3), ((), (), 1), ((4,), (4,), 2), ((2, 3), (5, 2, 3), 4), ((3, 1), (3, 6), 5)],
)
def test_log_prob_matches_scipy(batch_shape, value_shape, k):
    rng = np.random.default_rng(sum(batch_shape) + 10 * k)
    loc, scale, weights = random_parameters(rng, batch_shape, k)
    value = rng.normal(0.0, 4.0, value_shape)
    with jax.enable_x64(True):
        mixture = MixtureGaussian(jnp.asarray(loc), jnp.asarray(scale), jnp.asarray(weights))
        assert mixture.batch_shape == batch_shape
        assert mixture.event_shape == ()
        log_prob = np.asarray(mixture.log_prob(jnp.asarray(value)))
    expected = scipy_mixture_logpdf(value, loc, scale, weights)
    assert log_prob.shape == np.broadcast_shapes(value_shape, batch_shape)
    np.testing.assert_allclose(log_prob, expected, rtol=0, atol=1e-6)


def test_parameters_broadcast_along_components():
    # One scale shared by all components, one set of weights for a batch of means.
    loc = np.array([[-1.0, 1.0, 4.0], [0.0, 2.0, 3.0]])
    mixture = MixtureGaussian(loc, np.array([0.5]), np.array([0.2, 0.3, 0.5]))
    assert mixture.batch_shape == (2,)
    assert mixture.num_components == 3
    expected = scipy_mixture_logpdf(np.array([0.3, 0.3]), loc, 0.5, np.array([0.2, 0.3, 0.5]))
    np.testing.assert_allclose(mixture.log_prob(jnp.array([0.3, 0.3])), expected, rtol=1e-5)


def test_log_prob_stays_finite_far_in_the_tails():
    # Every component density underflows to 0 in float32 at x = 60; logsumexp does not.
    mixture = MixtureGaussian(jnp.array([-1.0, 1.0, 4.0]), jnp.array([0.2, 0.9, 0.5]), jnp.array([0.2, 0.3, 0.5]))
    value = jnp.array(60.0)
    naive = jnp.log(jnp.sum(mixture.mixing_probs * jnp.exp(mixture.component_log_probs(value) - jnp.log(mixture.mixing_probs))))
    assert not np.isfinite(float(naive))
    log_prob = float(mixture.log_prob(value))
    expected = float(scipy_mixture_logpdf(60.0, np.array([-1.0, 1.0, 4.0]), np.array([0.2, 0.9, 0.5]), np.array([0.2, 0.3, 0.5])))
    assert np.isfinite(log_prob)
    assert log_prob == pytest.approx(expected, rel=1e-5)


def test_component_log_probs_and_cdf_match_scipy():
    loc, scale, weights = np.array([-1.0, 1.0, 4.0]), np.array([0.2, 0.9, 0.5]), np.array([0.2, 0.3, 0.5])
    value = np.linspace(-3.0, 7.0, 11)
    with jax.enable_x64(True):
        mixture = MixtureGaussian(jnp.asarray(loc), jnp.asarray(scale), jnp.asarray(weights))
        terms = np.asarray(mixture.component_log_probs(jnp.asarray(value)))
        cdf = np.asarray(mixture.cdf(jnp.asarray(value)))
    np.testing.assert_allclose(terms, np.log(weights) + stats.norm.logpdf(value[:, None], loc, scale), atol=1e-9)
    np.testing.assert_allclose(cdf, (weights * stats.norm.cdf(value[:, None], loc, scale)).sum(axis=1), atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_moments_and_distribution(seed):
    loc, scale, weights = np.array([-1.0, 1.0, 4.0]), np.array([0.2, 0.9, 0.5]), np.array([0.2, 0.3, 0.5])
    mixture = MixtureGaussian(jnp.asarray(loc), jnp.asarray(scale), jnp.asarray(weights))
    num = 200_000
    draws = np.asarray(mixture.sample(jax.random.PRNGKey(seed), (num,)), dtype=float)
    assert draws.shape == (num,)
    mean, variance = mixture_moments(weights, loc, scale)
    assert float(mixture.mean) == pytest.approx(mean, rel=1e-6)
    assert float(mixture.variance) == pytest.approx(variance, rel=1e-5)
    # Mean within 5 standard errors; variance within 5 standard errors of s^2, whose
    # variance is (m4 - sigma^4) / n with m4 the fourth central moment.
    assert abs(draws.mean() - mean) < 5 * math.sqrt(variance / num)
    fourth = np.mean((draws - draws.mean()) ** 4)
    assert abs(draws.var() - variance) < 5 * math.sqrt((fourth - variance**2) / num)
    # The whole distribution: Kolmogorov-Smirnov against the exact mixture CDF.
    cdf = lambda v: (weights * stats.norm.cdf(np.asarray(v)[..., None], loc, scale)).sum(axis=-1)  # noqa: E731
    assert stats.kstest(draws, cdf).pvalue > 1e-3


def test_sample_shapes_follow_sample_and_batch_shape():
    rng = np.random.default_rng(3)
    loc, scale, weights = random_parameters(rng, (2, 3), 4)
    mixture = MixtureGaussian(loc, scale, weights)
    assert mixture.sample(jax.random.PRNGKey(0)).shape == (2, 3)
    assert mixture.sample(jax.random.PRNGKey(0), (5, 7)).shape == (5, 7, 2, 3)
    # Each batch member draws from its own mixture: a component with all the weight.
    one_hot = MixtureGaussian(jnp.array([[-50.0, 50.0], [-50.0, 50.0]]), jnp.ones(2), jnp.array([[1.0, 0.0], [0.0, 1.0]]))
    draws = one_hot.sample(jax.random.PRNGKey(1), (100,))
    assert np.all(draws[:, 0] < -40) and np.all(draws[:, 1] > 40)


def test_gradients_equal_mixture_same_family():
    rng = np.random.default_rng(7)
    loc, scale, weights = random_parameters(rng, (), 3)
    value = rng.normal(1.0, 3.0, 50)
    simplex = biject_to(constraints.simplex)

    def total(build, loc, log_scale, unconstrained_weights):
        # The sampler's coordinates: scales on the log scale, weights through the simplex
        # bijection NUTS uses (a derivative along the simplex's normal is meaningless).
        return build(loc, jnp.exp(log_scale), simplex(unconstrained_weights)).log_prob(value).sum()

    def ours(loc, scale, weights):
        return MixtureGaussian(loc, scale, weights)

    def numpyros(loc, scale, weights):
        return dist.MixtureSameFamily(dist.Categorical(probs=weights), dist.Normal(loc, scale))

    with jax.enable_x64(True):
        point = (jnp.asarray(loc), jnp.log(jnp.asarray(scale)), simplex.inv(jnp.asarray(weights)))
        ours_value, ours_grad = jax.value_and_grad(lambda *p: total(ours, *p), argnums=(0, 1, 2))(*point)
        theirs_value, theirs_grad = jax.value_and_grad(lambda *p: total(numpyros, *p), argnums=(0, 1, 2))(*point)
    assert float(ours_value) == pytest.approx(float(theirs_value), abs=1e-9)
    for mine, theirs in zip(ours_grad, theirs_grad):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-9, atol=1e-9)


def test_works_under_jit_and_vmap():
    locs = jnp.array([[-1.0, 1.0, 4.0], [0.0, 2.0, 3.0]])

    @jax.jit
    def log_prob(loc):
        return MixtureGaussian(loc, jnp.ones(3), jnp.ones(3) / 3).log_prob(0.5)

    batched = jax.vmap(log_prob)(locs)
    direct = MixtureGaussian(locs, jnp.ones(3), jnp.ones(3) / 3).log_prob(0.5)
    np.testing.assert_allclose(batched, direct, rtol=1e-6)


GOOD = {"loc": [-1.0, 1.0, 4.0], "scale": [0.2, 0.9, 0.5], "mixing_probs": [0.2, 0.3, 0.5]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scale": [0.2, -0.9, 0.5]}, "`scale` must be positive"),
        ({"scale": [0.2, 0.0, 0.5]}, "`scale` must be positive"),
        ({"mixing_probs": [0.2, 0.3, 0.6]}, "`mixing_probs` must lie on the simplex"),
        ({"mixing_probs": [-0.2, 0.7, 0.5]}, "`mixing_probs` must lie on the simplex"),
        ({"loc": [-1.0, np.nan, 4.0]}, "`loc` must be finite"),
        ({"loc": [-1.0, np.inf, 4.0]}, "`loc` must be finite"),
    ],
)
def test_invalid_values_raise_with_validate_args(changes, message):
    arguments = {name: jnp.asarray(value) for name, value in {**GOOD, **changes}.items()}
    with pytest.raises(ValueError, match=message):
        MixtureGaussian(**arguments, validate_args=True)
    MixtureGaussian(**arguments, validate_args=False)  # unchecked: the caller's responsibility


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scale": [0.2, 0.9]}, "do not broadcast"),
        ({"loc": [[-1.0, 1.0, 4.0], [0.0, 1.0, 2.0]], "mixing_probs": [[0.5, 0.5]] * 3}, "do not broadcast"),
        ({"mixing_probs": [1.0]}, "`mixing_probs` must have one entry per component"),
        ({"loc": 0.0}, "`loc` must have a last axis"),
        ({"scale": 1.0}, "`scale` must have a last axis"),
    ],
)
def test_bad_shapes_raise_always(changes, message):
    arguments = {name: jnp.asarray(value) for name, value in {**GOOD, **changes}.items()}
    with pytest.raises(ValueError, match=message):
        MixtureGaussian(**arguments)


def test_valid_parameters_pass_validation():
    mixture = MixtureGaussian(**{name: jnp.asarray(value) for name, value in GOOD.items()}, validate_args=True)
    assert np.isfinite(float(mixture.log_prob(0.0)))


def test_order_statistics_log_prob_and_samples():
    base = dist.Normal(0.0, 10.0)
    prior = OrderStatistics(base, 3)
    assert prior.event_shape == (3,)
    draws = prior.sample(jax.random.PRNGKey(0), (1000,))
    assert draws.shape == (1000, 3)
    assert bool(jnp.all(draws[:, 1:] > draws[:, :-1]))
    value = np.array([-4.0, 0.5, 12.0])
    expected = stats.norm.logpdf(value, 0.0, 10.0).sum() + math.log(6.0)
    assert float(prior.log_prob(jnp.asarray(value))) == pytest.approx(expected, rel=1e-6)


def test_order_statistics_density_integrates_to_one():
    # k = 2 with a unit Normal base: integrate 2 N(a) N(b) over a < b on a grid.
    prior = OrderStatistics(dist.Normal(0.0, 1.0), 2, validate_args=False)  # a > b is evaluated too
    grid = np.linspace(-7.0, 7.0, 701)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    density = np.exp(np.asarray(prior.log_prob(jnp.stack([a, b], axis=-1)), dtype=float)) * (a < b)
    step = grid[1] - grid[0]
    assert density.sum() * step**2 == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ((1.0, 3), TypeError, "`base_dist` must be a NumPyro distribution"),
        ((dist.Normal(jnp.zeros(2), 1.0), 3), ValueError, "must be univariate"),
        ((dist.Normal(0.0, 1.0), 0), ValueError, "`k` must be a positive integer"),
        ((dist.Normal(0.0, 1.0), 2.5), ValueError, "`k` must be a positive integer"),
    ],
)
def test_order_statistics_bad_input(arguments, error, message):
    with pytest.raises(error, match=message):
        OrderStatistics(*arguments)
