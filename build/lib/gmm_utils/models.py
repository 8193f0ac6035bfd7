"""The book's NumPyro models of a one-dimensional mixture.

:func:`marginal_model` and :func:`latent_model` are the two formulations of the Gaussian
mixture; :func:`student_t_mixture_model` is the marginal model with Student-t components
(chapter 5), for data with heavier tails; :func:`stick_breaking_model` is the marginal model
with the weights of a truncated Dirichlet process. All take their data and priors as arguments.
The default priors are the seed notebook's: ``Normal(0, 10)`` on each mean,
``HalfCauchy(10)`` on each scale and a flat ``Dirichlet(1, ..., 1)`` on the weights. All
name their sample sites the same way, ``weights`` ``(k,)``, ``locs`` ``(k,)``, ``scales``
``(k,)`` and ``x`` ``(n,)`` (the Student-t model adds ``df``, a scalar), so every helper
downstream works with any of them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.util import not_jax_tracer

from ._validation import finite_vector, positive_int, positive_number
from .distributions import MixtureGaussian, OrderStatistics

#: Default prior on the degrees of freedom of :func:`student_t_mixture_model`: Gamma(2, 0.1),
#: mean 20, the weakly informative choice of Juárez and Steel (2010, JBES 28:52-66).
DEFAULT_DF_PRIOR = (2.0, 0.1)


def _number_of_points(x: Any, n: int | None) -> tuple[Any, int]:
    if x is None:
        if n is None:
            raise ValueError("give the data `x`, or the number of points `n` to simulate from the prior")
        return None, positive_int("n", n)
    if not hasattr(x, "shape") or isinstance(x, np.ndarray):  # concrete data: check it
        x = jnp.asarray(finite_vector("x", x))
    if n is not None and n != x.shape[0]:
        raise ValueError(f"`n` ({n}) does not match the length of `x` ({x.shape[0]})")
    return x, x.shape[0]


def _check_prior(name: str, prior: Any, event_shape: tuple[int, ...]) -> None:
    if not isinstance(prior, dist.Distribution):
        raise TypeError(f"`{name}` must be a NumPyro distribution, got {prior!r}")
    if prior.batch_shape != () or prior.event_shape != event_shape:
        raise ValueError(
            f"`{name}` must have batch_shape () and event_shape {event_shape}, got "
            f"batch_shape {prior.batch_shape} and event_shape {prior.event_shape}"
        )


def _check_positive_prior(name: str, prior: Any) -> None:
    _check_prior(name, prior, ())
    lower = getattr(prior.support, "lower_bound", None)
    if lower is None or not bool(np.all(np.asarray(lower) >= 0)):
        raise ValueError(f"`{name}` must have positive support (e.g. Gamma, LogNormal), got {prior.support}")


def sample_mixture_parameters(
    k: int,
    *,
    ordered: bool = False,
    loc_prior: dist.Distribution | None = None,
    scale_prior: dist.Distribution | None = None,
    weights_prior: dist.Distribution | None = None,
    weights: Any = None,
) -> tuple[Any, Any, Any]:
    """Sample ``weights``, ``locs`` and ``scales`` (each ``(k,)``) from their priors.

    The shared first half of every model. ``ordered=True`` gives the means the ordered
    prior :class:`OrderStatistics` (``loc_prior`` on sorted means, as Stan's
    ``ordered[K] mu``), which removes label switching. ``loc_prior`` and ``scale_prior``
    are univariate priors of each component's mean and standard deviation (defaults
    ``Normal(0, 10)`` and ``HalfCauchy(10)``); ``weights_prior`` has event shape ``(k,)``
    (default ``Dirichlet(ones(k))``). A model that draws the weights itself passes them as
    ``weights`` (:func:`stick_breaking_model`), and ``weights_prior`` is not used.
    """
    k = positive_int("k", k)
    loc_prior = dist.Normal(0.0, 10.0) if loc_prior is None else loc_prior
    scale_prior = dist.HalfCauchy(10.0) if scale_prior is None else scale_prior
    if weights is not None and weights_prior is not None:
        raise ValueError("give `weights` or `weights_prior`, not both")
    weights_prior = dist.Dirichlet(jnp.ones(k)) if weights_prior is None else weights_prior
    _check_prior("loc_prior", loc_prior, ())
    _check_prior("scale_prior", scale_prior, ())
    _check_prior("weights_prior", weights_prior, (k,))

    if weights is None:
        weights = numpyro.sample("weights", weights_prior)
    elif jnp.shape(weights) != (k,):
        raise ValueError(f"`weights` must have shape ({k},), one per component, got {jnp.shape(weights)}")
    if ordered:
        locs = numpyro.sample("locs", OrderStatistics(loc_prior, k))
    with numpyro.plate("component", k):
        if not ordered:
            locs = numpyro.sample("locs", loc_prior)
        scales = numpyro.sample("scales", scale_prior)
    return weights, locs, scales


def marginal_model(x: Any = None, k: int = 3, *, n: int | None = None, **priors: Any) -> None:
    r"""Gaussian mixture with the labels summed out (the marginalized formulation).

    .. math::
        w &\sim \text{Dirichlet}(1, \dots, 1), \quad
        \mu_j \sim \mathcal{N}(0, 10), \quad \sigma_j \sim \text{HalfCauchy}(10) \\
        x_i \mid w, \mu, \sigma &\sim \textstyle\sum_{j} w_j\, \mathcal{N}(\mu_j, \sigma_j)

    Parameters
    ----------
    x : array_like, shape (n,), optional
        The observations. ``None`` draws ``n`` points from the prior predictive.
    k : int
        Number of components.
    n : int, optional
        Number of points to simulate when ``x`` is ``None``.
    **priors
        ``ordered``, ``loc_prior``, ``scale_prior``, ``weights_prior``: see
        :func:`sample_mixture_parameters`.

    Examples
    --------
    >>> from numpyro.infer import Predictive
    >>> import jax
    >>> prior_draws = Predictive(marginal_model, num_samples=10)(jax.random.PRNGKey(0), n=50)
    >>> prior_draws["x"].shape
    (10, 50)
    """
    x, n = _number_of_points(x, n)
    weights, locs, scales = sample_mixture_parameters(k, **priors)
    with numpyro.plate("data", n):
        numpyro.sample("x", MixtureGaussian(weights, locs, scales), obs=x)


def latent_model(x: Any = None, k: int = 3, *, n: int | None = None, **priors: Any) -> None:
    r"""Gaussian mixture with one latent label per point (the latent formulation).

    .. math::
        z_i \mid w \sim \text{Categorical}(w), \qquad
        x_i \mid z_i, \mu, \sigma \sim \mathcal{N}(\mu_{z_i}, \sigma_{z_i})

    with the same priors and arguments as :func:`marginal_model`. The labels are the
    sample site ``z`` of shape ``(n,)``. Sample it with ``DiscreteHMCGibbs``, or wrap the
    model in ``numpyro.contrib.funsor.config_enumerate`` to sum ``z`` out.
    """
    x, n = _number_of_points(x, n)
    weights, locs, scales = sample_mixture_parameters(k, **priors)
    with numpyro.plate("data", n):
        z = numpyro.sample("z", dist.Categorical(weights))
        numpyro.sample("x", dist.Normal(locs[z], scales[z]), obs=x)


def student_t_mixture_model(
    x: Any = None, k: int = 3, *, n: int | None = None, df_prior: dist.Distribution | None = None, **priors: Any
) -> None:
    r"""Mixture of Student-t components with one shared degrees of freedom (labels summed out).

    .. math::
        \nu \sim \text{Gamma}(2, 0.1), \qquad
        x_i \mid w, \mu, \sigma, \nu \sim \textstyle\sum_{j} w_j\, t_\nu(\mu_j, \sigma_j)

    with the priors of :func:`marginal_model` on ``weights``, ``locs`` and ``scales``
    (``scales`` are the components' scale parameters; a component's standard deviation
    is :math:`\sigma_j \sqrt{\nu / (\nu - 2)}` for :math:`\nu > 2`). As
    :math:`\nu \to \infty` the model becomes the Gaussian mixture. The likelihood is
    NumPyro's own ``MixtureSameFamily(Categorical(w), StudentT(nu, mu, sigma))``, and
    :func:`gmm_utils.run_nuts` stores its pointwise log-likelihood, so PSIS-LOO compares
    it with the Gaussian mixture on the same data.

    Parameters
    ----------
    x, k, n, **priors
        As in :func:`marginal_model`.
    df_prior : numpyro.distributions.Distribution, optional
        Univariate prior on the degrees of freedom ``df`` (positive support). Default
        ``Gamma(2, 0.1)``.

    Examples
    --------
    >>> from numpyro.infer import Predictive
    >>> import jax
    >>> draws = Predictive(student_t_mixture_model, num_samples=10)(jax.random.PRNGKey(0), n=50)
    >>> draws["x"].shape, draws["df"].shape
    ((10, 50), (10,))
    """
    x, n = _number_of_points(x, n)
    df_prior = dist.Gamma(*DEFAULT_DF_PRIOR) if df_prior is None else df_prior
    _check_positive_prior("df_prior", df_prior)
    weights, locs, scales = sample_mixture_parameters(k, **priors)
    df = numpyro.sample("df", df_prior)
    components = dist.StudentT(df, locs, scales)  # batch shape (k,)
    with numpyro.plate("data", n):
        numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=weights), components), obs=x)


def stick_breaking_weights(proportions: Any) -> jax.Array:
    r"""The weights :math:`w_j = v_j \prod_{i<j} (1 - v_i)` of stick proportions :math:`v`, ``(..., T - 1)`` to ``(..., T)``.

    Each proportion breaks off a share of what is left and the last weight is the rest, so they sum
    to one; a weight that underflows is floored at the smallest float, so ``log w`` stays finite.

    Examples
    --------
    >>> stick_breaking_weights(jnp.array([0.5, 0.5])).tolist()
    [0.5, 0.25, 0.25]
    """
    proportions = jnp.asarray(proportions)
    left = jnp.cumprod(1.0 - proportions, axis=-1)  # what remains after each break
    before = jnp.concatenate([jnp.ones_like(left[..., :1]), left[..., :-1]], axis=-1)
    weights = jnp.concatenate([proportions * before, left[..., -1:]], axis=-1)
    return jnp.maximum(weights, jnp.finfo(weights.dtype).tiny)


def stick_breaking_model(x: Any = None, truncation: int = 20, *, n: int | None = None, concentration: Any = 1.0,
                         loc_prior: dist.Distribution | None = None,
                         scale_prior: dist.Distribution | None = None) -> None:
    r"""A Dirichlet-process Gaussian mixture, truncated at ``truncation`` components (labels summed out).

    .. math::
        v_j \sim \text{Beta}(1, \alpha) \ (j < T), \quad w = \text{stick\_breaking\_weights}(v), \qquad
        x_i \mid w, \mu, \sigma \sim \textstyle\sum_{j=1}^{T} w_j\, \mathcal{N}(\mu_j, \sigma_j)

    As :math:`T \to \infty`, the weights of a Dirichlet process with concentration :math:`\alpha`
    (Sethuraman 1994); truncating at :math:`T` (Ishwaran and James 2001) is good when the weight
    left for the last component, a priori :math:`(\alpha / (1 + \alpha))^{T-1}` on average, is
    negligible. NUTS samples ``stick_proportions`` ``(T - 1,)``; ``weights`` ``(T,)`` is a
    deterministic site, so every helper of the book reads the fit
    as :func:`marginal_model`'s. The components are not ordered: their labels switch by design.

    Parameters
    ----------
    x, n
        As in :func:`marginal_model`.
    truncation : int
        :math:`T \geq 2`, the number of components.
    concentration : float or numpyro.distributions.Distribution
        :math:`\alpha > 0`, or a univariate prior on it with positive support (then sampled
        as ``concentration``).
    loc_prior, scale_prior
        As in :func:`sample_mixture_parameters`.

    Examples
    --------
    >>> from numpyro.infer import Predictive
    >>> import jax
    >>> draws = Predictive(stick_breaking_model, num_samples=10)(jax.random.PRNGKey(0), n=50, truncation=8)
    >>> draws["weights"].shape, draws["x"].shape
    ((10, 8), (10, 50))
    """
    x, n = _number_of_points(x, n)
    if positive_int("truncation", truncation) < 2:
        raise ValueError(f"`truncation` must be at least 2, got {truncation}")
    if isinstance(concentration, dist.Distribution):
        _check_positive_prior("concentration", concentration)
        concentration = numpyro.sample("concentration", concentration)
    elif not_jax_tracer(concentration):  # a traced value (fit_datasets) is checked where it was made
        concentration = positive_number("concentration", concentration)
    proportions = numpyro.sample("stick_proportions", dist.Beta(1.0, concentration).expand([truncation - 1]).to_event(1))
    weights = numpyro.deterministic("weights", stick_breaking_weights(proportions))
    _, locs, scales = sample_mixture_parameters(truncation, loc_prior=loc_prior, scale_prior=scale_prior, weights=weights)
    with numpyro.plate("data", n):
        numpyro.sample("x", MixtureGaussian(weights, locs, scales), obs=x)
