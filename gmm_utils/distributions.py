r"""NumPyro distributions for Gaussian mixtures, written in NumPyro's own style.

``MixtureGaussian`` is the seed notebook's hand-written marginalized mixture done right;
``OrderStatistics`` is the prior on ordered component means used to remove label
switching (chapter 4).

Both keep the contract of NumPyro's own distributions: ``sample(key, sample_shape)``
returns ``sample_shape + batch_shape + event_shape``; ``expand`` gives NumPyro's
``ExpandedDistribution``; construction, ``log_prob`` and ``cdf`` work under ``jax.jit``,
``jax.vmap`` and ``jax.grad``; the distributions are pytrees (flattened through
``pytree_data_fields`` and ``pytree_aux_fields``, as NumPyro's are); and
``validate_args=True`` raises ``ValueError`` for invalid concrete parameters, eagerly and
inside ``jax.jit``, and skips the check for traced ones. ``tests/test_distributions.py``
tests each of these.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, ndtr
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import validate_sample
from numpyro.util import is_prng_key, not_jax_tracer


class MixtureGaussian(Distribution):
    r"""A finite mixture of univariate Normal distributions, with the labels summed out.

    .. math::
        p(x \mid w, \mu, \sigma) = \sum_{j=1}^{k} w_j\, \mathcal{N}(x \mid \mu_j, \sigma_j),
        \qquad
        \log p(x) = \operatorname{logsumexp}_j
            \big(\log w_j + \log \mathcal{N}(x \mid \mu_j, \sigma_j)\big)

    The log density is computed with ``logsumexp``, which subtracts the largest term
    before exponentiating, so it stays finite far in the tails where every component
    density underflows to zero.

    Parameters
    ----------
    loc : array_like, shape (..., k)
        Component means; the last axis indexes the ``k`` components.
    scale : array_like, shape (..., k)
        Component standard deviations, positive.
    mixing_probs : array_like, shape (..., k)
        Mixture weights on the simplex (non-negative, summing to one).
    validate_args : bool, optional
        Check the parameters against their constraints (``arg_constraints``) and raise
        ``ValueError`` naming the parameter when one is violated. Default: NumPyro's
        global setting (``numpyro.enable_validation``). The check needs concrete values:
        it runs eagerly and inside ``jax.jit`` on constants, as NumPyro's own checks do,
        and is skipped for traced values (a jitted sampler's parameters).

    The three parameters broadcast against each other; the distribution's
    ``batch_shape`` is the broadcast shape without its last axis and its
    ``event_shape`` is ``()``: one draw is one real number.

    There is no ``icdf``: the CDF, a weighted sum of Normal CDFs, has no closed-form
    inverse (``icdf`` raises ``NotImplementedError``, as NumPyro's ``MixtureSameFamily``
    does). :meth:`cdf` is increasing, so a quantile is found by bisection on it.

    Raises
    ------
    ValueError
        Always, when a parameter is a scalar, when the shapes do not broadcast, or when
        ``mixing_probs`` does not have one entry per component. With
        ``validate_args=True`` also when a scale is not positive, a mean is not finite,
        or the weights are negative or do not sum to one.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> mixture = MixtureGaussian(jnp.array([-1.0, 1.0, 4.0]), jnp.array([0.2, 0.9, 0.5]),
    ...                           jnp.array([0.2, 0.3, 0.5]))
    >>> mixture.sample(jax.random.PRNGKey(0), (2500,)).shape
    (2500,)
    >>> mixture.log_prob(jnp.zeros(5)).shape
    (5,)
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "scale": constraints.independent(constraints.positive, 1),
        "mixing_probs": constraints.simplex,
    }
    support = constraints.real
    pytree_data_fields = ("loc", "scale", "mixing_probs")

    def __init__(
        self, loc: Any, scale: Any, mixing_probs: Any, *, validate_args: bool | None = None
    ):
        # Concrete parameters stay concrete even inside jax.jit, so that validate_args can
        # check them there; traced ones are traced as usual.
        with jax.ensure_compile_time_eval():
            loc, scale, mixing_probs = jnp.asarray(loc), jnp.asarray(scale), jnp.asarray(mixing_probs)
        shapes = {"loc": loc.shape, "scale": scale.shape, "mixing_probs": mixing_probs.shape}
        for name, shape in shapes.items():
            if len(shape) == 0:
                raise ValueError(
                    f"MixtureGaussian: `{name}` must have a last axis of length k "
                    "(one entry per component), got a scalar"
                )
        try:
            full_shape = jax.lax.broadcast_shapes(*shapes.values())
        except ValueError as error:
            described = ", ".join(f"`{name}` {shape}" for name, shape in shapes.items())
            raise ValueError(
                f"MixtureGaussian: the parameter shapes do not broadcast: {described}. "
                "The last axis of each must be the number of components k."
            ) from error
        if shapes["mixing_probs"][-1] != full_shape[-1]:
            # A length-1 weight axis would broadcast to weights (w, w, ..., w), which are
            # never on the simplex for k > 1: refuse it even without validate_args.
            raise ValueError(
                "MixtureGaussian: `mixing_probs` must have one entry per component "
                f"(last axis {full_shape[-1]}), got shape {shapes['mixing_probs']}"
            )
        with jax.ensure_compile_time_eval():
            self.loc = jnp.broadcast_to(loc, full_shape)
            self.scale = jnp.broadcast_to(scale, full_shape)
            self.mixing_probs = jnp.broadcast_to(mixing_probs, full_shape)
        super().__init__(
            batch_shape=full_shape[:-1], event_shape=(), validate_args=validate_args
        )

    #: What each parameter must satisfy, in the words of the error message.
    _requirements = {
        "loc": "must be finite real numbers",
        "scale": "must be positive",
        "mixing_probs": "must lie on the simplex: non-negative and summing to 1 "
        "(within 1e-6) along the last axis",
    }

    def validate_args(self, strict: bool = True) -> None:
        """Check each parameter against its constraint; raise ``ValueError`` naming it.

        NumPyro's own check says only which parameter is invalid; this one also says
        what it must satisfy and shows the offending values. Called by ``__init__`` when
        ``validate_args=True``.
        """
        with jax.ensure_compile_time_eval():
            for name, constraint in self.arg_constraints.items():
                value = getattr(self, name)
                is_valid = constraint(value)
                if not_jax_tracer(is_valid):
                    if not np.all(is_valid):
                        requirement = self._requirements[name]
                        raise ValueError(
                            f"MixtureGaussian: `{name}` {requirement}, got {np.asarray(value)}"
                        )
                elif strict:
                    raise RuntimeError(
                        "MixtureGaussian: cannot validate arguments inside jitted code."
                    )

    @property
    def num_components(self) -> int:
        """The number of components ``k``."""
        return self.loc.shape[-1]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Draw component labels, then a Normal value from each label's component.

        Returns an array of shape ``sample_shape + batch_shape``.
        """
        assert is_prng_key(key)
        key_label, key_noise = jax.random.split(key)
        shape = sample_shape + self.batch_shape
        labels = jax.random.categorical(key_label, jnp.log(self.mixing_probs), shape=shape)

        def pick(parameter: jax.Array) -> jax.Array:
            full = jnp.broadcast_to(parameter, shape + (self.num_components,))
            return jnp.take_along_axis(full, labels[..., None], axis=-1)[..., 0]

        return pick(self.loc) + pick(self.scale) * jax.random.normal(key_noise, shape)

    def component_log_probs(self, value: Any) -> jax.Array:
        r"""Weighted log density of each component.

        :math:`a_j = \log w_j + \log \mathcal{N}(x \mid \mu_j, \sigma_j)`, in one array.

        Named as in NumPyro's ``MixtureSameFamily``. Its ``logsumexp`` over the last axis
        is :meth:`log_prob`; its ``softmax`` is the posterior probability of each label
        given the parameters, :math:`P(z = j \mid x, w, \mu, \sigma)`.

        Returns an array of shape ``broadcast(value.shape, batch_shape) + (k,)``.
        """
        value = jnp.asarray(value)[..., None]  # one column per component
        # The terms that do not depend on the value, once per component: shape (..., k).
        constant = (
            jnp.log(self.mixing_probs) - jnp.log(self.scale) - 0.5 * jnp.log(2 * jnp.pi)
        )
        return constant - 0.5 * ((value - self.loc) / self.scale) ** 2

    @validate_sample
    def log_prob(self, value: Any) -> jax.Array:
        """Log density at ``value``, of shape ``broadcast(value.shape, batch_shape)``."""
        terms = self.component_log_probs(value)
        # logsumexp: subtract the largest term before exponentiating, add it back after.
        # The result does not depend on the shift, so the shift needs no gradient.
        shift = jax.lax.stop_gradient(jnp.max(terms, axis=-1, keepdims=True))
        return jnp.log(jnp.sum(jnp.exp(terms - shift), axis=-1)) + shift[..., 0]

    def cdf(self, value: Any) -> jax.Array:
        r"""The CDF, :math:`\sum_j w_j \Phi((x - \mu_j) / \sigma_j)`."""
        value = jnp.asarray(value)[..., None]
        return jnp.sum(self.mixing_probs * ndtr((value - self.loc) / self.scale), axis=-1)

    def icdf(self, q: Any) -> jax.Array:
        """Not available: the mixture's CDF has no closed-form inverse.

        Raises ``NotImplementedError``; invert :meth:`cdf`, which is increasing, numerically.
        """
        raise NotImplementedError(
            "MixtureGaussian.icdf: a mixture of Normals has no closed-form quantile function; "
            "invert `cdf` (increasing) numerically, e.g. by bisection"
        )

    @property
    def mean(self) -> jax.Array:
        return jnp.sum(self.mixing_probs * self.loc, axis=-1)

    @property
    def variance(self) -> jax.Array:
        second_moment = jnp.sum(self.mixing_probs * (self.scale**2 + self.loc**2), axis=-1)
        return second_moment - self.mean**2


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
        A univariate distribution with ``batch_shape == ()`` and ``event_shape == ()``,
        supported on the real line (``Normal``, ``StudentT``, ...) or on the positive
        half-line (``LogNormal``, ``HalfNormal``, ...): NumPyro has no ordered transform
        into other supports. With ``validate_args=True`` its parameters are validated
        (it has all of this distribution's parameters).
    k : int
        How many ordered values; the event shape is ``(k,)``.

    :meth:`cdf` is the joint CDF, exact. There is no ``icdf``: the joint CDF of
    ``k > 1`` values maps a vector to one number, so it has no inverse
    (``NotImplementedError``, as for NumPyro's multivariate distributions; for ``k = 1``
    use ``base_dist.icdf``).

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

    @staticmethod
    def _ordered_support(support: constraints.Constraint) -> constraints.Constraint | None:
        """The support of the sorted vector, given the support of one value."""
        if support == constraints.real:
            return constraints.ordered_vector
        if support == constraints.positive:
            return constraints.positive_ordered_vector
        return None

    def __init__(self, base_dist: Distribution, k: int, *, validate_args: bool | None = None):
        if not isinstance(base_dist, Distribution):
            raise TypeError(f"OrderStatistics: `base_dist` must be a NumPyro distribution, got {base_dist!r}")
        if base_dist.batch_shape != () or base_dist.event_shape != ():
            raise ValueError(
                "OrderStatistics: `base_dist` must be univariate with no batch shape, got "
                f"batch_shape={base_dist.batch_shape}, event_shape={base_dist.event_shape}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"OrderStatistics: `k` must be a positive integer, got {k!r}")
        if self._ordered_support(base_dist.support) is None:
            raise ValueError(
                "OrderStatistics: `base_dist` must be supported on the real line or on the positive "
                f"half-line (NumPyro has ordered transforms only into these), got {base_dist.support}"
            )
        self.base_dist = base_dist
        self.k = k
        super().__init__(batch_shape=(), event_shape=(k,), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self) -> constraints.Constraint:
        return self._ordered_support(self.base_dist.support)

    def validate_args(self, strict: bool = True) -> None:
        """Validate the base distribution's parameters (raises its ``ValueError``)."""
        self.base_dist.validate_args(strict)

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample  # sorting reparametrized draws keeps them so

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        draws = self.base_dist.sample(key, sample_shape + (self.k,))
        return jnp.sort(draws, axis=-1)

    @validate_sample
    def log_prob(self, value: Any) -> jax.Array:
        return jnp.sum(self.base_dist.log_prob(value), axis=-1) + gammaln(self.k + 1.0)

    def cdf(self, value: Any) -> jax.Array:
        r"""The joint CDF, :math:`P(\mu_{(1)} \le x_1, \dots, \mu_{(k)} \le x_k)`, exactly.

        Because :math:`\mu_{(i)} \le \mu_{(j)}` for :math:`i < j`, the event is that at least
        :math:`i` of the :math:`k` iid draws fall at or below :math:`y_i = \min_{j \ge i} x_j`,
        for every :math:`i`. The counts of draws in the cells :math:`(y_{i-1}, y_i]`, of
        probabilities :math:`u_i - u_{i-1}` with :math:`u_i = F(y_i)` (:math:`F` the base
        CDF), are multinomial; the sum of their probabilities over the counts allowed is
        built cell by cell, in :math:`O(k^3)`.
        For :math:`k = 2` it is :math:`2 u_1 u_2 - u_1^2`.

        Returns an array of shape ``value.shape[:-1]``.
        """
        value = jnp.asarray(value)
        bound = jax.lax.cummin(value, axis=value.ndim - 1, reverse=True)  # y_i
        below = self.base_dist.cdf(bound)  # u_i
        # Probability of each cell: (-inf, y_1], (y_1, y_2], ..., (y_{k-1}, y_k], (y_k, inf).
        cells = jnp.concatenate([jnp.diff(below, axis=-1, prepend=0.0), 1.0 - below[..., -1:]], axis=-1)
        counts = jnp.arange(self.k + 1)
        # weight[..., m]: the sum, over the counts n_j allowed so far that add up to m, of
        # prod_j c_j^n_j / n_j!; k! times the final one is a multinomial probability.
        weight = jnp.where(counts == 0, 1.0, 0.0) * jnp.ones_like(below[..., :1])
        for cell in range(self.k + 1):
            c = cells[..., cell : cell + 1]
            power = jnp.ones_like(c)  # c^n / n!
            new = weight
            for n in range(1, self.k + 1):
                power = power * c / n
                new = new + power * jnp.pad(weight[..., :-n], [(0, 0)] * (weight.ndim - 1) + [(n, 0)])
            # At least cell + 1 draws in the first cell + 1 cells (none asked of the last).
            weight = new if cell == self.k else jnp.where(counts > cell, new, 0.0)
        return math.factorial(self.k) * weight[..., self.k]

    def icdf(self, q: Any) -> jax.Array:
        """Not available: a joint CDF of ``k`` values has no inverse. Raises ``NotImplementedError``."""
        raise NotImplementedError(
            "OrderStatistics.icdf: the joint CDF maps k values to one probability and has no inverse "
            "(for k = 1 use base_dist.icdf); the i-th value alone has quantiles "
            "base_dist.icdf(Beta(i, k + 1 - i).icdf(q))"
        )
