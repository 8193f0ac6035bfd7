"""Tests of gmm_utils.distributions: MixtureGaussian and OrderStatistics.

Log densities are compared with SciPy in 64-bit precision, to 1e-6; gradients with
NumPyro's own MixtureSameFamily; samples with the exact mixture moments and CDF.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.distributions import biject_to, constraints
from scipy import stats
from scipy.special import logsumexp

from gmm_utils import (MixtureGaussian, OrderStatistics, component_log_densities, mixture_cdf, mixture_log_likelihood,
                       mixture_moments)


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
        mixture = MixtureGaussian(jnp.asarray(weights), jnp.asarray(loc), jnp.asarray(scale))
        assert mixture.batch_shape == batch_shape
        assert mixture.event_shape == ()
        log_prob = np.asarray(mixture.log_prob(jnp.asarray(value)))
    expected = scipy_mixture_logpdf(value, loc, scale, weights)
    assert log_prob.shape == np.broadcast_shapes(value_shape, batch_shape)
    np.testing.assert_allclose(log_prob, expected, rtol=0, atol=1e-6)


def test_parameters_broadcast_along_components():
    # One scale shared by all components, one set of weights for a batch of means.
    loc = np.array([[-1.0, 1.0, 4.0], [0.0, 2.0, 3.0]])
    mixture = MixtureGaussian(np.array([0.2, 0.3, 0.5]), loc, np.array([0.5]))
    assert mixture.batch_shape == (2,)
    assert mixture.num_components == 3
    expected = scipy_mixture_logpdf(np.array([0.3, 0.3]), loc, 0.5, np.array([0.2, 0.3, 0.5]))
    np.testing.assert_allclose(mixture.log_prob(jnp.array([0.3, 0.3])), expected, rtol=1e-5)


def test_log_prob_stays_finite_far_in_the_tails():
    # Every component density underflows to 0 in float32 at x = 60; logsumexp does not.
    mixture = MixtureGaussian(jnp.array([0.2, 0.3, 0.5]), jnp.array([-1.0, 1.0, 4.0]), jnp.array([0.2, 0.9, 0.5]))
    value = jnp.array(60.0)
    naive = jnp.log(jnp.sum(mixture.weights * jnp.exp(mixture.component_log_probs(value) - jnp.log(mixture.weights))))
    assert not np.isfinite(float(naive))
    log_prob = float(mixture.log_prob(value))
    expected = float(scipy_mixture_logpdf(60.0, np.array([-1.0, 1.0, 4.0]), np.array([0.2, 0.9, 0.5]), np.array([0.2, 0.3, 0.5])))
    assert np.isfinite(log_prob)
    assert log_prob == pytest.approx(expected, rel=1e-5)


def test_component_log_probs_and_cdf_match_scipy():
    loc, scale, weights = np.array([-1.0, 1.0, 4.0]), np.array([0.2, 0.9, 0.5]), np.array([0.2, 0.3, 0.5])
    value = np.linspace(-3.0, 7.0, 11)
    with jax.enable_x64(True):
        mixture = MixtureGaussian(jnp.asarray(weights), jnp.asarray(loc), jnp.asarray(scale))
        terms = np.asarray(mixture.component_log_probs(jnp.asarray(value)))
        cdf = np.asarray(mixture.cdf(jnp.asarray(value)))
    np.testing.assert_allclose(terms, np.log(weights) + stats.norm.logpdf(value[:, None], loc, scale), atol=1e-9)
    np.testing.assert_allclose(cdf, (weights * stats.norm.cdf(value[:, None], loc, scale)).sum(axis=1), atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_moments_and_distribution(seed):
    loc, scale, weights = np.array([-1.0, 1.0, 4.0]), np.array([0.2, 0.9, 0.5]), np.array([0.2, 0.3, 0.5])
    mixture = MixtureGaussian(jnp.asarray(weights), jnp.asarray(loc), jnp.asarray(scale))
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
    mixture = MixtureGaussian(weights, loc, scale)
    assert mixture.sample(jax.random.PRNGKey(0)).shape == (2, 3)
    assert mixture.sample(jax.random.PRNGKey(0), (5, 7)).shape == (5, 7, 2, 3)
    # Each batch member draws from its own mixture: a component with all the weight.
    one_hot = MixtureGaussian(jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([[-50.0, 50.0], [-50.0, 50.0]]), jnp.ones(2))
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
        return MixtureGaussian(weights, loc, scale)

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
        return MixtureGaussian(jnp.ones(3) / 3, loc, jnp.ones(3)).log_prob(0.5)

    batched = jax.vmap(log_prob)(locs)
    direct = MixtureGaussian(jnp.ones(3) / 3, locs, jnp.ones(3)).log_prob(0.5)
    np.testing.assert_allclose(batched, direct, rtol=1e-6)


GOOD = {"locs": [-1.0, 1.0, 4.0], "scales": [0.2, 0.9, 0.5], "weights": [0.2, 0.3, 0.5]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scales": [0.2, -0.9, 0.5]}, "`scales` must be positive"),
        ({"scales": [0.2, 0.0, 0.5]}, "`scales` must be positive"),
        ({"weights": [0.2, 0.3, 0.6]}, "`weights` must lie on the simplex"),
        ({"weights": [-0.2, 0.7, 0.5]}, "`weights` must lie on the simplex"),
        ({"locs": [-1.0, np.nan, 4.0]}, "`locs` must be finite"),
        ({"locs": [-1.0, np.inf, 4.0]}, "`locs` must be finite"),
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
        ({"scales": [0.2, 0.9]}, "do not broadcast"),
        ({"locs": [[-1.0, 1.0, 4.0], [0.0, 1.0, 2.0]], "weights": [[0.5, 0.5]] * 3}, "do not broadcast"),
        ({"weights": [1.0]}, "`weights` must have one entry per component"),
        ({"locs": 0.0}, "`locs` must have a last axis"),
        ({"scales": 1.0}, "`scales` must have a last axis"),
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


# --- NumPyro's contract: shapes, jit, vmap, pytrees, gradients, cdf, validation ---------

KEY = jax.random.PRNGKey(0)
MIXTURE = {"locs": np.array([-1.0, 1.0, 4.0]), "scales": np.array([0.2, 0.9, 0.5]), "weights": np.array([0.2, 0.3, 0.5])}


def batched_mixture(batch_shape=(2,), k=3, seed=11):
    loc, scale, weights = random_parameters(np.random.default_rng(seed), batch_shape, k)
    return MixtureGaussian(jnp.asarray(weights), jnp.asarray(loc), jnp.asarray(scale))


def order_statistics(k=3):
    return OrderStatistics(dist.Normal(0.5, 2.0), k)


def finite_difference_gradient(f, x, step=1e-6):
    """Central differences of a scalar function of an array, in float64."""
    x = np.asarray(x, dtype=float)
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shift = np.zeros_like(x)
        shift[index] = step
        gradient[index] = (float(f(jnp.asarray(x + shift))) - float(f(jnp.asarray(x - shift)))) / (2 * step)
    return gradient


@pytest.mark.parametrize(
    ("make", "batch_shape", "event_shape"),
    [(lambda: batched_mixture((2,)), (2,), ()), (lambda: batched_mixture(()), (), ()), (order_statistics, (), (3,))],
    ids=["mixture-batch-2", "mixture-scalar", "order-statistics"],
)
def test_sample_and_expand_shapes_follow_batch_and_event_shape(make, batch_shape, event_shape):
    d = make()
    assert (d.batch_shape, d.event_shape) == (batch_shape, event_shape)
    assert d.sample(KEY).shape == batch_shape + event_shape
    assert d.sample(KEY, (5, 4)).shape == (5, 4) + batch_shape + event_shape
    expanded = d.expand((3,) + batch_shape)
    assert isinstance(expanded, dist.ExpandedDistribution)
    assert (expanded.batch_shape, expanded.event_shape) == ((3,) + batch_shape, event_shape)
    draws = expanded.sample(KEY, (6,))
    assert draws.shape == (6, 3) + batch_shape + event_shape
    log_prob = expanded.log_prob(draws)
    assert log_prob.shape == (6, 3) + batch_shape
    np.testing.assert_allclose(log_prob, d.log_prob(draws), rtol=1e-6)  # the same distribution, repeated
    assert d.expand(batch_shape) is d
    if batch_shape:  # a batch axis longer than 1 cannot change length, as in NumPyro
        with pytest.raises(ValueError, match="Cannot broadcast"):
            d.expand((batch_shape[0] + 1,) + batch_shape[1:])


def test_expand_fills_a_batch_axis_of_length_one():
    mixture = batched_mixture((2, 1))
    expanded = mixture.expand((2, 5))
    draws = expanded.sample(KEY, (3,))
    assert draws.shape == (3, 2, 5)
    np.testing.assert_allclose(expanded.log_prob(draws), mixture.log_prob(draws), rtol=1e-6)


def test_infer_shapes_agrees_with_the_constructed_shapes():
    mixture = MixtureGaussian(jnp.ones(3) / 3, jnp.zeros((4, 3)), jnp.ones((1, 3)))
    assert MixtureGaussian.infer_shapes(weights=(3,), locs=(4, 3), scales=(1, 3)) == (
        mixture.batch_shape,
        mixture.event_shape,
    )
    with pytest.raises(NotImplementedError):  # as for NumPyro's Independent and mixtures: shapes need k
        OrderStatistics.infer_shapes()


def test_construction_and_log_prob_under_jit():
    x = jnp.linspace(-3.0, 6.0, 7)
    scale, weights = jnp.asarray(MIXTURE["scales"]), jnp.asarray(MIXTURE["weights"])
    jitted = jax.jit(lambda loc: MixtureGaussian(weights, loc, scale).log_prob(x))
    for loc in (MIXTURE["locs"], MIXTURE["locs"] + 1.0):  # the second call reuses the compiled code
        np.testing.assert_allclose(jitted(jnp.asarray(loc)), MixtureGaussian(weights, loc, scale).log_prob(x), rtol=1e-6)
    value = jnp.array([-1.0, 0.5, 3.0])
    jitted_prior = jax.jit(lambda s: OrderStatistics(dist.Normal(0.0, s), 3).log_prob(value))
    assert float(jitted_prior(2.0)) == pytest.approx(float(OrderStatistics(dist.Normal(0.0, 2.0), 3).log_prob(value)), rel=1e-6)


@pytest.mark.parametrize("make", [batched_mixture, order_statistics], ids=["mixture", "order-statistics"])
def test_distributions_pass_through_jit_as_pytrees(make):
    d = make()
    draws = d.sample(KEY, (4,))
    np.testing.assert_allclose(jax.jit(lambda d, v: d.log_prob(v))(d, draws), d.log_prob(draws), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda d, key: d.sample(key, (4,)))(d, KEY), draws, rtol=1e-6, atol=1e-7)
    rebuilt = jax.jit(lambda d: d)(d)  # a distribution returned from jitted code
    assert type(rebuilt) is type(d) and rebuilt.batch_shape == d.batch_shape and rebuilt.event_shape == d.event_shape


def test_log_prob_under_vmap_over_batched_parameters():
    rng = np.random.default_rng(5)
    loc, scale, weights = map(jnp.asarray, random_parameters(rng, (6,), 3))
    x = jnp.asarray(rng.normal(0.0, 3.0, 10))
    per_member = jax.vmap(lambda l, s, w: MixtureGaussian(w, l, s).log_prob(x))(loc, scale, weights)
    assert per_member.shape == (6, 10)
    batched = MixtureGaussian(weights, loc, scale).log_prob(x[:, None])  # (10, 6)
    np.testing.assert_allclose(per_member, batched.T, rtol=1e-6)
    # vmap over the sample keys, and over one parameter with the others shared.
    keys = jax.random.split(KEY, 5)
    assert jax.vmap(lambda key: MixtureGaussian(weights, loc, scale).sample(key, (2,)))(keys).shape == (5, 2, 6)
    shared = jax.vmap(lambda l: MixtureGaussian(weights[0], l, scale[0]).log_prob(0.3))(loc)
    np.testing.assert_allclose(shared, MixtureGaussian(weights[0], loc, scale[0]).log_prob(0.3), rtol=1e-6)
    scales = jnp.array([0.5, 1.0, 3.0])
    value = jnp.array([-1.0, 0.5, 3.0])
    prior = jax.vmap(lambda s: OrderStatistics(dist.Normal(0.0, s), 3).log_prob(value))(scales)
    expected = [float(OrderStatistics(dist.Normal(0.0, s), 3).log_prob(value)) for s in scales]
    np.testing.assert_allclose(prior, expected, rtol=1e-6)


def test_pytree_flatten_unflatten_round_trip():
    mixture = batched_mixture((2,))
    leaves, treedef = jax.tree_util.tree_flatten(mixture)
    assert len(leaves) == 3  # weights, locs and scales; the shapes are static (aux data)
    assert sorted(leaf.shape for leaf in leaves) == [(2, 3)] * 3
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is MixtureGaussian
    assert (rebuilt.batch_shape, rebuilt.event_shape) == (mixture.batch_shape, mixture.event_shape)
    for name in ("weights", "locs", "scales"):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(mixture, name))
    x = jnp.linspace(-2.0, 2.0, 5)[:, None]
    np.testing.assert_array_equal(rebuilt.log_prob(x), mixture.log_prob(x))
    shifted = jax.tree_util.tree_map(lambda leaf: leaf, mixture)
    np.testing.assert_array_equal(shifted.cdf(x), mixture.cdf(x))

    prior = order_statistics(4)
    leaves, treedef = jax.tree_util.tree_flatten(prior)
    assert sorted(float(leaf) for leaf in leaves) == [0.5, 2.0]  # the base's loc and scale; k is static
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is OrderStatistics and rebuilt.k == 4 and rebuilt.event_shape == (4,)
    assert rebuilt.support is constraints.ordered_vector
    value = jnp.array([-1.0, 0.0, 0.5, 3.0])
    assert float(rebuilt.log_prob(value)) == float(prior.log_prob(value))


def test_gradients_equal_finite_differences():
    loc, scale, weights = (MIXTURE[name] for name in ("locs", "scales", "weights"))
    x = np.linspace(-3.0, 6.0, 9)
    with jax.enable_x64(True):
        functions = {
            "locs": lambda l: MixtureGaussian(weights, l, scale).log_prob(x).sum(),
            "scales": lambda s: MixtureGaussian(weights, loc, s).log_prob(x).sum(),
            # A raw partial derivative: off the simplex, log p = log sum_j w_j N_j.
            "weights": lambda w: MixtureGaussian(w, loc, scale, validate_args=False).log_prob(x).sum(),
            "value": lambda v: MixtureGaussian(weights, loc, scale).log_prob(v).sum(),
            "cdf value": lambda v: MixtureGaussian(weights, loc, scale).cdf(v).sum(),
            "cdf loc": lambda l: MixtureGaussian(weights, l, scale).cdf(x).sum(),
        }
        points = {"locs": loc, "scales": scale, "weights": weights, "value": x, "cdf value": x, "cdf loc": loc}
        for name, f in functions.items():
            automatic = np.asarray(jax.grad(f)(jnp.asarray(points[name])))
            np.testing.assert_allclose(automatic, finite_difference_gradient(f, points[name]), rtol=1e-6, atol=1e-8, err_msg=name)
        # The CDF's derivative is the density.
        density = np.exp(np.asarray(MixtureGaussian(weights, loc, scale).log_prob(x)))
        np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(functions["cdf value"]))(jnp.asarray(x))), density, rtol=1e-9)

        value = np.array([-1.0, 0.5, 3.0])
        prior = {
            "value": lambda v: OrderStatistics(dist.Normal(0.5, 2.0), 3).log_prob(v),
            "base scale": lambda s: OrderStatistics(dist.Normal(0.5, s), 3).log_prob(jnp.asarray(value)),
        }
        points = {"value": value, "base scale": np.array(2.0)}
        for name, f in prior.items():
            automatic = np.asarray(jax.grad(f)(jnp.asarray(points[name])))
            np.testing.assert_allclose(automatic, finite_difference_gradient(f, points[name]), rtol=1e-6, atol=1e-9, err_msg=name)


@pytest.mark.parametrize(("batch_shape", "value_shape"), [((), (11,)), ((2, 3), (5, 2, 3)), ((3,), (4, 1))])
def test_mixture_cdf_matches_scipy_for_every_batch_shape(batch_shape, value_shape):
    rng = np.random.default_rng(len(value_shape))
    loc, scale, weights = random_parameters(rng, batch_shape, 3)
    value = rng.normal(0.0, 4.0, value_shape)
    expected = (weights * stats.norm.cdf(value[..., None], loc, scale)).sum(axis=-1)
    with jax.enable_x64(True):
        mixture = MixtureGaussian(jnp.asarray(weights), jnp.asarray(loc), jnp.asarray(scale))
        cdf = np.asarray(mixture.cdf(jnp.asarray(value)))
        jitted = np.asarray(jax.jit(lambda d, v: d.cdf(v))(mixture, jnp.asarray(value)))
    assert cdf.shape == np.broadcast_shapes(value_shape, batch_shape)
    np.testing.assert_allclose(cdf, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(jitted, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("d", [batched_mixture(), order_statistics()], ids=["mixture", "order-statistics"])
def test_icdf_is_not_available(d):
    with pytest.raises(NotImplementedError):
        d.icdf(jnp.array(0.5))


BAD = [
    ({"scales": [0.2, -0.9, 0.5]}, "`scales` must be positive"),
    ({"scales": [-0.5]}, "`scales` must be positive"),  # broadcast to every component
    ({"weights": [0.2, 0.3, 0.6]}, "`weights` must lie on the simplex"),
    ({"locs": [-1.0, np.nan, 4.0]}, "`locs` must be finite"),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_validate_args_raises_inside_jit_for_concrete_values(changes, message):
    arguments = {name: np.asarray(value) for name, value in {**GOOD, **changes}.items()}
    with pytest.raises(ValueError, match=message):
        MixtureGaussian(**arguments, validate_args=True)
    with pytest.raises(ValueError, match=message):
        jax.jit(lambda: MixtureGaussian(**arguments, validate_args=True).log_prob(0.0))()
    # NumPyro's global switch, on by default in NumPyro 0.22, decides when the argument is
    # left out. (pytest.raises goes inside: the context does not restore after an error.)
    with numpyro.validation_enabled(True):
        with pytest.raises(ValueError, match=message):
            jax.jit(lambda: MixtureGaussian(**arguments).log_prob(0.0))()
    with numpyro.validation_enabled(False):  # unchecked: no error, whatever the log density is
        MixtureGaussian(**arguments).log_prob(0.0)


def test_numpyro_itself_validates_concrete_values_inside_jit():
    # The behaviour we match: NumPyro's Normal raises inside jit from concrete values ...
    with pytest.raises(ValueError, match="invalid scale"):
        jax.jit(lambda: dist.Normal(0.0, np.array([1.0, -1.0]), validate_args=True).log_prob(0.0))()
    # ... and cannot check traced ones, which a sampler's are: the check is skipped.
    assert np.isnan(jax.jit(lambda s: dist.Normal(0.0, s, validate_args=True).log_prob(0.0))(-1.0))
    bad_scale = jnp.array([0.2, -0.9, 0.5])
    traced = jax.jit(lambda s: MixtureGaussian(jnp.asarray(GOOD["weights"]), jnp.asarray(GOOD["locs"]), s, validate_args=True).log_prob(0.0))
    assert np.isnan(float(traced(bad_scale)))
    with pytest.raises(RuntimeError, match="inside jitted code"):  # an explicit strict check cannot skip
        jax.jit(lambda s: MixtureGaussian(jnp.asarray(GOOD["weights"]), jnp.asarray(GOOD["locs"]), s).validate_args())(bad_scale)


def test_order_statistics_validates_its_base_eagerly_and_inside_jit():
    with pytest.raises(ValueError, match="invalid scale"):
        OrderStatistics(dist.Normal(0.0, -1.0, validate_args=False), 3, validate_args=True)
    with pytest.raises(ValueError, match="invalid scale"):
        jax.jit(lambda: OrderStatistics(dist.Normal(0.0, -1.0, validate_args=False), 3, validate_args=True).log_prob(jnp.zeros(3)))()
    OrderStatistics(dist.Normal(0.0, -1.0, validate_args=False), 3, validate_args=False)  # unchecked
    OrderStatistics(dist.Normal(0.0, 1.0), 3, validate_args=True)


def test_order_statistics_support_follows_the_base():
    assert OrderStatistics(dist.StudentT(3.0), 2).support is constraints.ordered_vector
    positive = OrderStatistics(dist.LogNormal(0.0, 1.0), 3)
    assert positive.support is constraints.positive_ordered_vector
    assert positive.has_rsample and OrderStatistics(dist.Normal(), 2).has_rsample
    unconstrained = jnp.array([-3.0, 0.5, -1.0])
    value = biject_to(positive.support)(unconstrained)
    assert bool(jnp.all(value > 0)) and bool(jnp.all(value[1:] > value[:-1]))
    with pytest.raises(ValueError, match="real line or on the positive half-line"):
        OrderStatistics(dist.Uniform(0.0, 1.0), 2)


# --- The one density: component_log_densities, mixture_log_likelihood, mixture_cdf -------


def test_component_log_densities_match_scipy_for_normal_and_student_t_components():
    loc, scale, weights = MIXTURE["locs"], MIXTURE["scales"], MIXTURE["weights"]
    x = np.linspace(-4.0, 7.0, 12)
    with jax.enable_x64(True):
        normal = np.asarray(component_log_densities(x, weights, loc, scale))
        student = np.asarray(component_log_densities(x, weights, loc, scale, df=np.array([3.0, 5.0, 30.0])))
        shared_df = np.asarray(component_log_densities(x, weights, loc, scale, df=4.0))
    assert normal.shape == student.shape == (12, 3)
    np.testing.assert_allclose(normal, np.log(weights) + stats.norm.logpdf(x[:, None], loc, scale), atol=1e-9)
    np.testing.assert_allclose(student, np.log(weights) + stats.t.logpdf(x[:, None], [3.0, 5.0, 30.0], loc, scale), atol=1e-9)
    np.testing.assert_allclose(shared_df, np.log(weights) + stats.t.logpdf(x[:, None], 4.0, loc, scale), atol=1e-9)


def test_mixture_log_likelihood_is_pointwise_per_draw_and_equals_the_distribution():
    rng = np.random.default_rng(4)
    loc, scale, weights = random_parameters(rng, (2, 5), 3)  # (chains, draws, k)
    x = rng.normal(0.0, 3.0, 7)
    with jax.enable_x64(True):
        pointwise = np.asarray(mixture_log_likelihood(x, weights, loc, scale))
        by_distribution = np.asarray(MixtureGaussian(weights[..., None, :], loc[..., None, :], scale[..., None, :]).log_prob(x))
    assert pointwise.shape == (2, 5, 7)
    np.testing.assert_allclose(pointwise, scipy_mixture_logpdf(x, loc[..., None, :], scale[..., None, :], weights[..., None, :]), atol=1e-9)
    np.testing.assert_allclose(pointwise, by_distribution, atol=1e-12)


def test_mixture_cdf_of_student_t_components_matches_scipy_and_tends_to_the_normal():
    loc, scale, weights = MIXTURE["locs"], MIXTURE["scales"], MIXTURE["weights"]
    x = np.linspace(-4.0, 7.0, 12)
    with jax.enable_x64(True):
        student = np.asarray(mixture_cdf(x, weights, loc, scale, df=3.0))
        nearly_normal = np.asarray(mixture_cdf(x, weights, loc, scale, df=1e7))
        normal = np.asarray(mixture_cdf(x, weights, loc, scale))
    np.testing.assert_allclose(student, stats.t.cdf(x[:, None], 3.0, loc, scale) @ weights, atol=1e-9)
    np.testing.assert_allclose(nearly_normal, normal, atol=1e-6)
    assert np.all(np.diff(student) > 0) and 0 < student.min() and student.max() < 1


def test_densities_with_mismatched_components_raise():
    with pytest.raises((ValueError, TypeError), match="shapes"):
        component_log_densities(0.0, [0.5, 0.5], [-1.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises((ValueError, TypeError), match="shapes"):
        mixture_cdf(0.0, [0.5, 0.5], [-1.0, 1.0], [1.0, 1.0, 1.0])
