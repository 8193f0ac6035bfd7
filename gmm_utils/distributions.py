r"""The mixture density, once, and the NumPyro distributions built on it.

:func:`component_log_densities` is *the* density of the book's mixtures: every other
density, CDF and membership probability in ``gmm_utils`` calls it.
``MixtureGaussian`` is the seed notebook's hand-written marginalized mixture done right
(chapter 3); ``OrderStatistics`` is the prior on ordered component means used to remove
label switching (chapter 4). Both keep the contract of NumPyro's own distributions:
shapes, ``expand``, ``jax.jit``/``vmap``/``grad``, pytrees, and ``validate_args=True``
raising ``ValueError`` for invalid concrete parameters (``tests/test_distributions.py``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import gammaln, ndtr
from jax.scipy.stats import t
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import validate_sample
from numpyro.util import is_prng_key, not_jax_tracer


def component_log_densities(x: Any, weights: Any, locs: Any, scales: Any, df: Any = None) -> jax.Array:
    r"""Weighted log density of each component, :math:`\log w_j + \log p_j(x)`.

    :math:`p_j` is :math:`\mathcal{N}(\mu_j, \sigma_j)`, or the Student-t
    :math:`t_\nu(\mu_j, \sigma_j)` when ``df`` (:math:`\nu`) is given. The ``logsumexp``
    over the last axis is the mixture's log density; the ``softmax`` is the membership
    probability of each component, :math:`P(z = j \mid x, \theta)`.

    The parameters have shape ``(..., k)``, the last axis indexing the components (``df``
    broadcasts against ``locs``); the points ``x`` get a new last axis, so the result has
    shape ``broadcast(x.shape + (1,), locs.shape)``: ``x.shape + (k,)`` for parameters ``(k,)``.

    Examples
    --------
    >>> component_log_densities([0.0, 1.0, 2.0], [0.5, 0.5], [-1.0, 1.0], [1.0, 1.0]).shape
    (3, 2)
    """
    x = jnp.asarray(x)[..., None]
    weights, locs, scales = (jnp.asarray(a) for a in (weights, locs, scales))
    if df is not None:
        return jnp.log(weights) + t.logpdf(x, jnp.asarray(df), locs, scales)
    return jnp.log(weights) - jnp.log(scales) - 0.5 * jnp.log(2 * jnp.pi) - 0.5 * ((x - locs) / scales) ** 2


def mixture_log_likelihood(x: Any, weights: Any, locs: Any, scales: Any) -> jax.Array:
    r"""Pointwise log-likelihood :math:`\log \sum_j w_j \mathcal{N}(x_i \mid \mu_j, \sigma_j)` of each draw.

    For observations ``x`` of shape ``(n,)`` and draws of shape ``(..., k)`` (e.g.
    ``(chains, draws, k)``), one log density per draw and point, shape ``(..., n)``: what
    PSIS-LOO needs. It does not depend on how the model treated the labels.

    Examples
    --------
    >>> mixture_log_likelihood([0.0, 1.0], [[0.5, 0.5]], [[-1.0, 1.0]], [[1.0, 1.0]]).shape
    (1, 2)
    """
    parameters = (jnp.asarray(a)[..., None, :] for a in (weights, locs, scales))
    return jax.nn.logsumexp(component_log_densities(x, *parameters), axis=-1)


def mixture_cdf(x: Any, weights: Any, locs: Any, scales: Any, df: Any = None) -> jax.Array:
    r"""The mixture's CDF, :math:`\sum_j w_j F_j(x)`, with Normal or (given ``df``) Student-t :math:`F_j`.

    Shapes broadcast as in :func:`component_log_densities`, without the last axis.

    Examples
    --------
    >>> float(mixture_cdf(0.0, [0.5, 0.5], [-1.0, 1.0], [1.0, 1.0]))
    0.5
    """
    x, weights, locs, scales = jnp.asarray(x)[..., None], jnp.asarray(weights), jnp.asarray(locs), jnp.asarray(scales)
    cdfs = ndtr((x - locs) / scales) if df is None else dist.StudentT(jnp.asarray(df), locs, scales).cdf(x)
    return jnp.sum(weights * cdfs, axis=-1)


class MixtureGaussian(Distribution):
    r"""A finite mixture of univariate Normal distributions, with the labels summed out.

    .. math::
        \log p(x \mid w, \mu, \sigma) = \operatorname{logsumexp}_j
            \big(\log w_j + \log \mathcal{N}(x \mid \mu_j, \sigma_j)\big)

    ``logsumexp`` subtracts the largest term before exponentiating, so the log density
    stays finite far in the tails, where every component density underflows to zero.

    Parameters
    ----------
    weights : array_like, shape (..., k)
        Mixture weights on the simplex (non-negative, summing to one).
    locs : array_like, shape (..., k)
        Component means; the last axis indexes the ``k`` components.
    scales : array_like, shape (..., k)
        Component standard deviations, positive.
    validate_args : bool, optional
        Check the parameters and raise ``ValueError`` naming the one that is invalid.
        Default: NumPyro's global setting. The check runs on concrete values (also
        inside ``jax.jit``, on constants) and is skipped for traced ones.

    The parameters broadcast against each other; ``batch_shape`` is the broadcast shape
    without its last axis, ``event_shape`` is ``()``. There is no ``icdf`` (no closed form).

    Raises
    ------
    ValueError
        When a parameter is a scalar, the shapes do not broadcast, or ``weights`` has not
        one entry per component; with ``validate_args=True`` also when a scale is not
        positive, a mean is not finite, or the weights are not on the simplex.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> mixture = MixtureGaussian(jnp.array([0.2, 0.3, 0.5]), jnp.array([-1.0, 1.0, 4.0]),
    ...                           jnp.array([0.2, 0.9, 0.5]))
    >>> mixture.sample(jax.random.PRNGKey(0), (2500,)).shape
    (2500,)
    >>> mixture.log_prob(jnp.zeros(5)).shape
    (5,)
    """

    arg_constraints = {
        "weights": constraints.simplex,
        "locs": constraints.real_vector,
        "scales": constraints.independent(constraints.positive, 1),
    }
    #: What each parameter must satisfy, in the words of the error message.
    _requirements = {
        "weights": "must lie on the simplex: non-negative and summing to 1 (within 1e-6) along the last axis",
        "locs": "must be finite real numbers",
        "scales": "must be positive",
    }
    support = constraints.real
    pytree_data_fields = ("weights", "locs", "scales")

    def __init__(self, weights: Any, locs: Any, scales: Any, *, validate_args: bool | None = None):
        # Concrete parameters stay concrete even inside jax.jit, so that validate_args can check them.
        with jax.ensure_compile_time_eval():
            parameters = {"weights": jnp.asarray(weights), "locs": jnp.asarray(locs), "scales": jnp.asarray(scales)}
        shapes = {name: value.shape for name, value in parameters.items()}
        for name, shape in shapes.items():
            if len(shape) == 0:
                raise ValueError(f"MixtureGaussian: `{name}` must have a last axis of length k "
                                 "(one entry per component), got a scalar")
        try:
            full_shape = jax.lax.broadcast_shapes(*shapes.values())
        except ValueError as error:
            described = ", ".join(f"`{name}` {shape}" for name, shape in shapes.items())
            raise ValueError(f"MixtureGaussian: the parameter shapes do not broadcast: {described}. "
                             "The last axis of each must be the number of components k.") from error
        if shapes["weights"][-1] != full_shape[-1]:
            # Length-1 weights would broadcast to (w, ..., w), never on the simplex for k > 1.
            raise ValueError("MixtureGaussian: `weights` must have one entry per component "
                             f"(last axis {full_shape[-1]}), got shape {shapes['weights']}")
        with jax.ensure_compile_time_eval():
            for name, value in parameters.items():
                setattr(self, name, jnp.broadcast_to(value, full_shape))
        super().__init__(batch_shape=full_shape[:-1], event_shape=(), validate_args=validate_args)

    def validate_args(self, strict: bool = True) -> None:
        """Check each parameter against its constraint; raise ``ValueError`` saying what it must satisfy."""
        with jax.ensure_compile_time_eval():
            for name, constraint in self.arg_constraints.items():
                value = getattr(self, name)
                is_valid = constraint(value)
                if not not_jax_tracer(is_valid):
                    if strict:
                        raise RuntimeError(f"{type(self).__name__}: cannot validate arguments inside jitted code.")
                elif not np.all(is_valid):
                    raise ValueError(f"{type(self).__name__}: `{name}` {self._requirements[name]}, got {np.asarray(value)}")

    @property
    def num_components(self) -> int:
        """The number of components ``k``."""
        return self.locs.shape[-1]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Draw a label, then a Normal value from its component: shape ``sample_shape + batch_shape``."""
        assert is_prng_key(key)
        key_label, key_noise = jax.random.split(key)
        shape = sample_shape + self.batch_shape
        labels = jax.random.categorical(key_label, jnp.log(self.weights), shape=shape)

        def pick(parameter: jax.Array) -> jax.Array:
            full = jnp.broadcast_to(parameter, shape + (self.num_components,))
            return jnp.take_along_axis(full, labels[..., None], axis=-1)[..., 0]

        return pick(self.locs) + pick(self.scales) * jax.random.normal(key_noise, shape)

    def component_log_probs(self, value: Any) -> jax.Array:
        """:func:`component_log_densities` at ``value`` (NumPyro's ``MixtureSameFamily`` name).

        Shape ``broadcast(value.shape, batch_shape) + (k,)``.
        """
        return component_log_densities(value, self.weights, self.locs, self.scales)

    @validate_sample
    def log_prob(self, value: Any) -> jax.Array:
        """Log density at ``value``, of shape ``broadcast(value.shape, batch_shape)``."""
        return jax.nn.logsumexp(self.component_log_probs(value), axis=-1)

    def cdf(self, value: Any) -> jax.Array:
        r"""The CDF, :math:`\sum_j w_j \Phi((x - \mu_j) / \sigma_j)` (:func:`mixture_cdf`)."""
        return mixture_cdf(value, self.weights, self.locs, self.scales)

    @property
    def mean(self) -> jax.Array:
        return jnp.sum(self.weights * self.locs, axis=-1)

    @property
    def variance(self) -> jax.Array:
        return jnp.sum(self.weights * (self.scales**2 + self.locs**2), axis=-1) - self.mean**2


class OrderStatistics(Distribution):
    r"""The sorted values of ``k`` independent draws from a univariate distribution.

    With ``base = Normal(0, 10)`` this is the prior that Stan writes as
    ``ordered[K] mu; mu ~ normal(0, 10);``: the density of the ``k`` iid draws,
    restricted to increasing vectors, which multiplies it by ``k!``:

    .. math:: p(\mu_1 < \dots < \mu_k) = k! \prod_{j=1}^k p_\text{base}(\mu_j)

    Its support is ``constraints.ordered_vector`` (``positive_ordered_vector`` for a base
    on the positive half-line), so NUTS samples it through NumPyro's ordered transform
    and never sees two means swap places.

    Parameters
    ----------
    base_dist : numpyro.distributions.Distribution
        Univariate (``batch_shape == event_shape == ()``), supported on the real line
        (``Normal``, ``StudentT``, ...) or the positive half-line (``LogNormal``, ...):
        NumPyro has ordered transforms only into these. ``validate_args`` validates it.
    k : int
        How many ordered values; the event shape is ``(k,)``.

    Examples
    --------
    >>> import jax
    >>> import numpyro.distributions as dist
    >>> prior = OrderStatistics(dist.Normal(0.0, 10.0), 3)
    >>> draw = prior.sample(jax.random.PRNGKey(0))
    >>> bool((draw[1:] > draw[:-1]).all())
    True
    """

    arg_constraints: dict = {}
    pytree_data_fields = ("base_dist",)
    pytree_aux_fields = ("k",)
    #: The support of one value, and of the sorted vector (NumPyro's ordered transforms).
    _ORDERED = ((constraints.real, constraints.ordered_vector),
                (constraints.positive, constraints.positive_ordered_vector))

    def __init__(self, base_dist: Distribution, k: int, *, validate_args: bool | None = None):
        if not isinstance(base_dist, Distribution):
            raise TypeError(f"OrderStatistics: `base_dist` must be a NumPyro distribution, got {base_dist!r}")
        if base_dist.batch_shape != () or base_dist.event_shape != ():
            raise ValueError("OrderStatistics: `base_dist` must be univariate with no batch shape, got "
                             f"batch_shape={base_dist.batch_shape}, event_shape={base_dist.event_shape}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"OrderStatistics: `k` must be a positive integer, got {k!r}")
        if not any(base_dist.support == support for support, _ in self._ORDERED):
            raise ValueError("OrderStatistics: `base_dist` must be supported on the real line or on the positive "
                             f"half-line (NumPyro has ordered transforms only into these), got {base_dist.support}")
        self.base_dist = base_dist
        self.k = k
        super().__init__(batch_shape=(), event_shape=(k,), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self) -> constraints.Constraint:
        return next(ordered for support, ordered in self._ORDERED if self.base_dist.support == support)

    def validate_args(self, strict: bool = True) -> None:
        """Validate the base distribution's parameters (raises its ``ValueError``)."""
        self.base_dist.validate_args(strict)

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample  # sorting reparametrized draws keeps them so

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return jnp.sort(self.base_dist.sample(key, sample_shape + (self.k,)), axis=-1)

    @validate_sample
    def log_prob(self, value: Any) -> jax.Array:
        return jnp.sum(self.base_dist.log_prob(value), axis=-1) + gammaln(self.k + 1.0)
