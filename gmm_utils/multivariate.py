r"""Mixtures of multivariate Normal distributions (chapters 10 and 11).

:func:`multivariate_component_log_densities` is the multivariate density, once;
``MultivariateMixtureGaussian`` is the multivariate counterpart of
:class:`gmm_utils.MixtureGaussian` (same contract: shapes, ``jit``/``vmap``/``grad``, pytrees,
``validate_args=True`` raising ``ValueError`` naming the parameter), and
:func:`multivariate_mixture_model` the book's model of vectors: component means, and
covariances built from ``LKJCholesky`` correlations and per-coordinate scales.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.linalg import solve_triangular
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import validate_sample
from numpyro.util import is_prng_key

from ._validation import finite_matrix, positive_int, positive_number
from .distributions import MixtureGaussian, OrderStatistics
from .models import _check_positive_prior, _check_prior


def multivariate_component_log_densities(x: Any, weights: Any, locs: Any, scale_trils: Any) -> jax.Array:
    r"""Weighted log density of each component, :math:`\log w_j + \log \mathcal{N}(x \mid \mu_j, L_j L_j^\top)`.

    ``x`` has shape ``(..., d)``; ``weights`` ``(..., k)``, ``locs`` ``(..., k, d)`` and
    ``scale_trils`` ``(..., k, d, d)``, the lower Cholesky factors :math:`L_j` of the covariances.
    The result has shape ``broadcast(x.shape[:-1], batch) + (k,)``: its ``logsumexp`` over the
    last axis is the mixture's log density, its ``softmax`` the membership probabilities.

    Each factor is inverted once, :math:`L_j^{-1}` (a triangular solve with the identity), and
    applied to every point by a matrix product, which is cheaper to differentiate than one
    solve per point for the small ``d`` of mixture models.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> multivariate_component_log_densities(jnp.zeros((5, 2)), jnp.ones(3) / 3, jnp.zeros((3, 2)),
    ...                                      jnp.broadcast_to(jnp.eye(2), (3, 2, 2))).shape
    (5, 3)
    """
    x, weights, locs, scale_trils = (jnp.asarray(a) for a in (x, weights, locs, scale_trils))
    d = locs.shape[-1]
    identity = jnp.broadcast_to(jnp.eye(d, dtype=scale_trils.dtype), scale_trils.shape)
    inverse_trils = solve_triangular(scale_trils, identity, lower=True)
    standardized = (inverse_trils @ (x[..., None, :] - locs)[..., None])[..., 0]
    log_determinants = jnp.sum(jnp.log(jnp.diagonal(scale_trils, axis1=-2, axis2=-1)), axis=-1)
    return (jnp.log(weights) - log_determinants - 0.5 * d * math.log(2 * math.pi)
            - 0.5 * jnp.sum(standardized**2, axis=-1))


class MultivariateMixtureGaussian(Distribution):
    r"""A finite mixture of ``d``-variate Normal distributions, with the labels summed out.

    .. math::
        \log p(x \mid w, \mu, L) = \operatorname{logsumexp}_j
            \big(\log w_j + \log \mathcal{N}(x \mid \mu_j, L_j L_j^\top)\big)

    Parameters
    ----------
    weights : array_like, shape (..., k)
        Mixture weights on the simplex.
    locs : array_like, shape (..., k, d)
        Component mean vectors.
    scale_trils : array_like, shape (..., k, d, d)
        Lower Cholesky factors of the component covariances (positive diagonal), as
        ``MultivariateNormal(scale_tril=...)`` takes them.
    validate_args : bool, optional
        Check the parameters, raising ``ValueError`` naming the invalid one (as
        :class:`gmm_utils.MixtureGaussian`).

    ``batch_shape`` is the broadcast of the parameters' leading axes, ``event_shape`` ``(d,)``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> mixture = MultivariateMixtureGaussian(jnp.array([0.4, 0.6]), jnp.array([[0.0, 0.0], [3.0, 1.0]]),
    ...                                       jnp.broadcast_to(jnp.eye(2), (2, 2, 2)))
    >>> mixture.sample(jax.random.PRNGKey(0), (100,)).shape, mixture.log_prob(jnp.zeros((7, 2))).shape
    ((100, 2), (7,))
    """

    arg_constraints = {
        "weights": constraints.simplex,
        "locs": constraints.independent(constraints.real, 2),
        "scale_trils": constraints.independent(constraints.lower_cholesky, 1),
    }
    _requirements = {
        "weights": "must lie on the simplex: non-negative and summing to 1 (within 1e-6) along the last axis",
        "locs": "must be finite real numbers",
        "scale_trils": "must be lower triangular with a positive diagonal (Cholesky factors)",
    }
    support = constraints.real_vector
    pytree_data_fields = ("weights", "locs", "scale_trils")
    validate_args = MixtureGaussian.validate_args

    def __init__(self, weights: Any, locs: Any, scale_trils: Any, *, validate_args: bool | None = None):
        with jax.ensure_compile_time_eval():
            weights, locs, scale_trils = jnp.asarray(weights), jnp.asarray(locs), jnp.asarray(scale_trils)
        name = type(self).__name__
        if weights.ndim < 1 or locs.ndim < 2 or scale_trils.ndim < 3:
            raise ValueError(f"{name}: `weights` must have shape (..., k), `locs` (..., k, d) and `scale_trils` "
                             f"(..., k, d, d), got {weights.shape}, {locs.shape} and {scale_trils.shape}")
        k, d = locs.shape[-2:]
        if scale_trils.shape[-3:] != (k, d, d):
            raise ValueError(f"{name}: `scale_trils` must end in (k, d, d) = {(k, d, d)} to match `locs` "
                             f"{locs.shape}, got {scale_trils.shape}")
        if weights.shape[-1] != k:
            raise ValueError(f"{name}: `weights` must have one entry per component ({k}), got shape {weights.shape}")
        try:
            batch_shape = jax.lax.broadcast_shapes(weights.shape[:-1], locs.shape[:-2], scale_trils.shape[:-3])
        except ValueError as error:
            raise ValueError(f"{name}: the parameters' batch shapes do not broadcast: `weights` {weights.shape}, "
                             f"`locs` {locs.shape}, `scale_trils` {scale_trils.shape}") from error
        with jax.ensure_compile_time_eval():
            self.weights = jnp.broadcast_to(weights, batch_shape + (k,))
            self.locs = jnp.broadcast_to(locs, batch_shape + (k, d))
            self.scale_trils = jnp.broadcast_to(scale_trils, batch_shape + (k, d, d))
        super().__init__(batch_shape=batch_shape, event_shape=(d,), validate_args=validate_args)

    @property
    def num_components(self) -> int:
        """The number of components ``k``."""
        return self.locs.shape[-2]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Draw a label, then a Normal vector from its component: shape ``sample_shape + batch_shape + (d,)``."""
        assert is_prng_key(key)
        key_label, key_noise = jax.random.split(key)
        shape = sample_shape + self.batch_shape
        labels = jax.random.categorical(key_label, jnp.log(self.weights), shape=shape)
        locs = jnp.take_along_axis(jnp.broadcast_to(self.locs, shape + self.locs.shape[-2:]),
                                   labels[..., None, None], axis=-2)[..., 0, :]
        trils = jnp.take_along_axis(jnp.broadcast_to(self.scale_trils, shape + self.scale_trils.shape[-3:]),
                                    labels[..., None, None, None], axis=-3)[..., 0, :, :]
        noise = jax.random.normal(key_noise, shape + self.event_shape)
        return locs + (trils @ noise[..., None])[..., 0]

    def component_log_probs(self, value: Any) -> jax.Array:
        """:func:`multivariate_component_log_densities` at ``value``: shape ``broadcast(...) + (k,)``."""
        return multivariate_component_log_densities(value, self.weights, self.locs, self.scale_trils)

    @validate_sample
    def log_prob(self, value: Any) -> jax.Array:
        """Log density at ``value`` (shape ``(..., d)``), of shape ``broadcast(value.shape[:-1], batch_shape)``."""
        return jax.nn.logsumexp(self.component_log_probs(value), axis=-1)

    @property
    def mean(self) -> jax.Array:
        return jnp.sum(self.weights[..., None] * self.locs, axis=-2)


def correlation_entries(corr_cholesky: Any) -> jax.Array:
    """The correlations below the diagonal of :math:`L L^\\top`, row by row: shape ``(..., d (d - 1) / 2)``."""
    corr_cholesky = jnp.asarray(corr_cholesky)
    rows, columns = jnp.tril_indices(corr_cholesky.shape[-1], -1)
    return (corr_cholesky @ jnp.swapaxes(corr_cholesky, -1, -2))[..., rows, columns]


def multivariate_mixture_model(
    x: Any = None, k: int = 2, *, n: int | None = None, d: int | None = None, ordered_by: int | None = None,
    loc_prior: dist.Distribution | None = None, scale_prior: dist.Distribution | None = None,
    lkj_concentration: float = 2.0, dirichlet_concentration: float = 1.0,
) -> None:
    r"""Mixture of ``k`` ``d``-variate Normal distributions, for standardized data.

    .. math::
        w &\sim \text{Dirichlet}(\alpha, \dots, \alpha), \quad
        \mu_{jc} \sim \mathcal{N}(0, 2), \quad \sigma_{jc} \sim \text{LogNormal}(\log 0.5, 0.75), \quad
        \Omega_j \sim \text{LKJ}(\eta = 2) \\
        x_i \mid w, \mu, \sigma, \Omega &\sim \textstyle\sum_j w_j\,
            \mathcal{N}\big(\mu_j, \operatorname{diag}(\sigma_j)\, \Omega_j \operatorname{diag}(\sigma_j)\big)

    Sample sites: ``weights`` ``(k,)``, ``locs`` ``(k, d)``, ``scales`` ``(k, d)`` and
    ``corr_cholesky`` ``(k, d, d)`` (the Cholesky factor of :math:`\Omega_j`), observed ``x``
    ``(n, d)``; the deterministic ``correlations`` ``(k, d (d - 1) / 2)`` holds the entries of
    :math:`\Omega_j` below the diagonal (the Cholesky factor's upper triangle is constant, so its
    R-hat is undefined: check ``correlations`` instead).

    Parameters
    ----------
    x : array_like, shape (n, d), optional
        Standardized observations; ``None`` draws ``n`` points of dimension ``d`` from the prior.
    k : int
        Number of components.
    ordered_by : int, optional
        Give coordinate ``ordered_by``'s means the ordered prior :class:`gmm_utils.OrderStatistics`
        (sites ``ordered_locs`` ``(k,)`` and ``other_locs`` ``(k, d - 1)``; ``locs`` becomes
        deterministic): it identifies the labels when the components are separated along it.
    loc_prior, scale_prior : numpyro.distributions.Distribution, optional
        Univariate priors of each mean and each standard deviation (defaults above).
    lkj_concentration, dirichlet_concentration : float
        :math:`\eta` of the LKJ prior (1 is uniform over correlation matrices, larger shrinks
        towards independence) and :math:`\alpha` of the weights' Dirichlet prior.

    Examples
    --------
    >>> from numpyro.infer import Predictive
    >>> import jax
    >>> Predictive(multivariate_mixture_model, num_samples=3)(jax.random.PRNGKey(0), k=2, n=10, d=3)["x"].shape
    (3, 10, 3)
    """
    k = positive_int("k", k)
    if x is None:
        if n is None or d is None:
            raise ValueError("give the data `x`, or `n` and `d` to simulate from the prior")
        n, d = positive_int("n", n), positive_int("d", d)
    else:
        if not hasattr(x, "ndim") or isinstance(x, np.ndarray):  # concrete data: check it
            x = jnp.asarray(finite_matrix("x", x))
        n, d = x.shape
    if ordered_by is not None and (isinstance(ordered_by, bool) or not isinstance(ordered_by, int)
                                   or not 0 <= ordered_by < d):
        raise ValueError(f"`ordered_by` must be a coordinate index in 0, ..., {d - 1} or None, got {ordered_by!r}")
    loc_prior = dist.Normal(0.0, 2.0) if loc_prior is None else loc_prior
    scale_prior = dist.LogNormal(math.log(0.5), 0.75) if scale_prior is None else scale_prior
    _check_prior("loc_prior", loc_prior, ())
    _check_positive_prior("scale_prior", scale_prior)
    lkj_concentration = positive_number("lkj_concentration", lkj_concentration)
    dirichlet_concentration = positive_number("dirichlet_concentration", dirichlet_concentration)

    weights = numpyro.sample("weights", dist.Dirichlet(jnp.full(k, dirichlet_concentration)))
    if ordered_by is None:
        locs = numpyro.sample("locs", loc_prior.expand([k, d]).to_event(2))
    else:
        ordered = numpyro.sample("ordered_locs", OrderStatistics(loc_prior, k))
        other = numpyro.sample("other_locs", loc_prior.expand([k, d - 1]).to_event(2))
        locs = numpyro.deterministic("locs", jnp.insert(other, ordered_by, ordered, axis=1))
    scales = numpyro.sample("scales", scale_prior.expand([k, d]).to_event(2))
    with numpyro.plate("component", k):
        corr_cholesky = numpyro.sample("corr_cholesky", dist.LKJCholesky(d, lkj_concentration))
    numpyro.deterministic("correlations", correlation_entries(corr_cholesky))
    with numpyro.plate("data", n):
        numpyro.sample("x", MultivariateMixtureGaussian(weights, locs, scales[..., None] * corr_cholesky), obs=x)
