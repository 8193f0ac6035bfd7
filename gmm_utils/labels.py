r"""Labels after marginalizing: who belongs to which component, and how well we recover it.

A marginalized fit samples only the parameters. The labels come back afterwards, in two
ways:

``membership_probabilities``
    The Rao-Blackwellized estimate :math:`P(z_i = j \mid x) \approx \frac1S \sum_s
    P(z_i = j \mid x_i, \theta^{(s)})`: the exact conditional probability, averaged over
    the posterior draws :math:`\theta^{(s)}`. No label is ever sampled, so it carries no
    Monte Carlo noise from the labels.
``sample_labels``
    One label per point and posterior draw, sampled with NumPyro's ``infer_discrete``
    from the latent model with the labels enumerated.

``match_labels``, ``confusion_matrix`` and ``label_accuracy`` score either against the
true labels of simulated data, after matching estimated to true components (a mixture's
component numbers are arbitrary).
"""

from __future__ import annotations

from typing import Any, Callable

import arviz as az
import jax
import numpy as np
from numpyro.contrib.funsor import config_enumerate
from numpyro.infer import Predictive
from scipy.optimize import linear_sum_assignment

from ._validation import finite_vector, positive_int
from .distributions import MixtureGaussian
from .models import latent_model

_PARAMETERS = ("weights", "locs", "scales")


def _posterior_and_data(idata: az.InferenceData, x: Any | None) -> tuple[list[np.ndarray], np.ndarray]:
    if not hasattr(idata, "posterior") or any(name not in idata.posterior for name in _PARAMETERS):
        raise ValueError("`idata` must have a posterior with `weights`, `locs` and `scales`")
    if x is None:
        if not hasattr(idata, "observed_data") or "x" not in idata.observed_data:
            raise ValueError("give the data `x`: `idata` has no observed_data `x`")
        x = idata.observed_data["x"].values
    x = finite_vector("x", x)
    return [idata.posterior[name].values for name in _PARAMETERS], x


def membership_probabilities(idata: az.InferenceData, x: Any | None = None, *, chunk_size: int = 256) -> np.ndarray:
    r"""Posterior probability that each point belongs to each component, Rao-Blackwellized.

    .. math::
        P(z_i = j \mid x) \approx \frac{1}{S} \sum_{s=1}^{S}
        \frac{w^{(s)}_j\, \mathcal{N}(x_i \mid \mu^{(s)}_j, \sigma^{(s)}_j)}
             {\sum_l w^{(s)}_l\, \mathcal{N}(x_i \mid \mu^{(s)}_l, \sigma^{(s)}_l)}

    Component ``j`` means the same thing in every draw only if the labels do not switch
    between or within chains (use ``ordered=True``, or one chain; see chapter 4).

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales`` of shape ``(chains, draws, k)``.
    x : array_like, shape (n,), optional
        Points to classify; default the fit's ``observed_data``.
    chunk_size : int
        Draws processed at once (bounds memory).

    Returns
    -------
    numpy.ndarray, shape (n, k)
        Rows sum to one.

    Examples
    --------
    >>> probabilities = membership_probabilities(idata)  # doctest: +SKIP
    >>> probabilities.argmax(axis=1)  # the most probable component of each point  # doctest: +SKIP
    """
    (weights, locs, scales), x = _posterior_and_data(idata, x)
    chunk_size = positive_int("chunk_size", chunk_size)

    flat = [a.reshape(-1, a.shape[-1]) for a in (weights, locs, scales)]
    total = np.zeros((x.shape[0], flat[0].shape[-1]))
    for start in range(0, flat[0].shape[0], chunk_size):
        total += np.asarray(_summed_responsibilities(*(a[start : start + chunk_size] for a in flat), x))
    return total / flat[0].shape[0]


@jax.jit
def _summed_responsibilities(weights: jax.Array, locs: jax.Array, scales: jax.Array, x: jax.Array) -> jax.Array:
    """Sum over draws of P(z_i = j | x_i, draw): (draws, k) parameters -> (n, k)."""
    mixture = MixtureGaussian(locs[:, None, :], scales[:, None, :], weights[:, None, :])
    return jax.nn.softmax(mixture.component_log_probs(x), axis=-1).sum(axis=0)


def sample_labels(
    idata: az.InferenceData,
    x: Any | None = None,
    *,
    num_draws: int = 200,
    seed: int = 0,
    model: Callable[..., Any] = latent_model,
    **model_kwargs: Any,
) -> np.ndarray:
    """Sample one label per point for posterior draws, with NumPyro's ``infer_discrete``.

    The posterior draws of ``weights``, ``locs`` and ``scales`` (from any formulation) are
    substituted into the latent model with the labels enumerated, and ``infer_discrete``
    samples ``z`` from its conditional given each draw: NumPyro's route to the labels
    of a marginalized model.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``weights``, ``locs`` and ``scales``.
    x : array_like, shape (n,), optional
        Default the fit's ``observed_data``.
    num_draws : int
        Posterior draws to use, evenly spaced over all chains and draws (at most all).
    seed : int
        Seed of the label draws.
    model : callable
        The latent model, default :func:`gmm_utils.latent_model`.
    **model_kwargs
        Further model arguments, as in the fit (e.g. ``ordered=True``).

    Returns
    -------
    numpy.ndarray of int, shape (num_draws, n)
    """
    (weights, locs, scales), x = _posterior_and_data(idata, x)
    num_draws = positive_int("num_draws", num_draws)
    flat = [a.reshape(-1, a.shape[-1]) for a in (weights, locs, scales)]
    total = flat[0].shape[0]
    chosen = np.linspace(0, total - 1, min(num_draws, total)).round().astype(int)
    posterior_samples = {name: a[chosen] for name, a in zip(_PARAMETERS, flat)}
    k = flat[0].shape[-1]
    predictive = Predictive(
        config_enumerate(model), posterior_samples=posterior_samples, infer_discrete=True, return_sites=["z"]
    )
    return np.asarray(predictive(jax.random.PRNGKey(seed), x=x, k=k, **model_kwargs)["z"])


def _labels_array(name: str, labels: Any) -> np.ndarray:
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer labels, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"`{name}` must not be empty")
    if array.min() < 0:
        raise ValueError(f"`{name}` must hold labels 0, ..., k - 1, got {array.min()}")
    return array


def confusion_matrix(truth: Any, labels: Any, k: int | None = None) -> np.ndarray:
    """Counts of points by true label (rows) and estimated label (columns).

    Parameters
    ----------
    truth : array_like of int, shape (n,)
        The true labels, ``0, ..., k - 1``.
    labels : array_like of int, shape (n,) or (draws, n)
        Estimated labels; several draws are pooled.
    k : int, optional
        Number of components; default one more than the largest label.

    Returns
    -------
    numpy.ndarray of int, shape (k, k)

    Examples
    --------
    >>> confusion_matrix([0, 0, 1], [1, 1, 0])
    array([[0, 2],
           [1, 0]])
    """
    truth = _labels_array("truth", truth)
    labels = _labels_array("labels", labels)
    if truth.ndim != 1 or labels.shape[-1] != truth.shape[0] or labels.ndim > 2:
        raise ValueError(
            f"`labels` must have shape (n,) or (draws, n) with n = len(truth) = {truth.shape[0]}, got {labels.shape}"
        )
    largest = int(max(truth.max(), labels.max())) + 1
    k = largest if k is None else positive_int("k", k)
    if largest > k:
        raise ValueError(f"labels must lie in 0, ..., k - 1 = {k - 1}, got {largest - 1}")
    truth_repeated = np.broadcast_to(truth, labels.shape).ravel()
    return np.bincount(truth_repeated * k + labels.ravel(), minlength=k * k).reshape(k, k)


def match_labels(truth: Any, labels: Any, k: int | None = None) -> np.ndarray:
    """The relabelling of estimated components that agrees best with the truth.

    Solves the assignment problem on the confusion matrix with
    :func:`scipy.optimize.linear_sum_assignment` (maximum total agreement).

    Parameters
    ----------
    truth, labels, k
        As in :func:`confusion_matrix`.

    Returns
    -------
    numpy.ndarray of int, shape (k,)
        ``mapping[j]`` is the true component matched to estimated component ``j``, so
        ``mapping[labels]`` are the estimated labels in the truth's numbering.

    Examples
    --------
    >>> match_labels([0, 0, 1, 2], [2, 2, 0, 1])
    array([1, 2, 0])
    """
    counts = confusion_matrix(truth, labels, k)
    true_rows, estimated_columns = linear_sum_assignment(counts, maximize=True)
    mapping = np.empty(counts.shape[0], dtype=int)
    mapping[estimated_columns] = true_rows
    return mapping


def label_accuracy(truth: Any, labels: Any, k: int | None = None) -> float:
    """Share of labels equal to the truth, after :func:`match_labels`.

    Parameters
    ----------
    truth, labels, k
        As in :func:`confusion_matrix`; with several draws of labels, the share over all
        draws and points.

    Returns
    -------
    float

    Examples
    --------
    >>> label_accuracy([0, 0, 1, 2], [2, 2, 0, 0])
    0.75
    """
    truth = _labels_array("truth", truth)
    mapping = match_labels(truth, labels, k)
    return float(np.mean(mapping[_labels_array("labels", labels)] == truth))
