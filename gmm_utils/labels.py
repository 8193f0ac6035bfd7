"""The posterior's mixture parameters, and the labels that come back after marginalizing.

:func:`posterior_parameters` and :func:`posterior_samples` are the one reader of a fit's
parameters; :func:`over_draws` evaluates a function of them on every draw. A marginalized
fit samples no labels: :func:`membership_probabilities` (exact given each draw, so free of
label noise) and :func:`sample_labels` bring them back; :func:`label_accuracy` scores them;
:func:`relabel_draws` undoes label switching after the fact, by matching each draw to a pivot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import arviz as az
import jax
import numpy as np
from numpyro.contrib.funsor import config_enumerate
from numpyro.infer import Predictive
from scipy.optimize import linear_sum_assignment

from ._validation import finite_vector, inference_data, positive_int
from .distributions import component_log_densities
from .models import latent_model

_NAMES = ("weights", "locs", "scales")


def posterior_parameters(idata: az.InferenceData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The draws of ``weights``, ``locs`` and ``scales``, each of shape ``(chains, draws, k)``."""
    posterior = inference_data(idata).posterior
    shapes = [posterior[name].shape for name in _NAMES if name in posterior]
    if len(shapes) != 3 or len(set(shapes)) != 1 or len(shapes[0]) != 3:
        raise ValueError("`idata` must have a posterior with `weights`, `locs` and `scales` of one shape "
                         "(chains, draws, k)")
    return tuple(np.asarray(posterior[name].values) for name in _NAMES)


def posterior_samples(idata: az.InferenceData) -> dict[str, np.ndarray]:
    """The parameters (and a Student-t fit's ``df``) as ``Predictive(posterior_samples=...)`` reads them.

    Chains and draws are flattened: shape ``(chains * draws, ...)``.
    """
    samples = dict(zip(_NAMES, posterior_parameters(idata)))
    chains, draws, k = samples["weights"].shape
    if "df" in idata.posterior:
        samples["df"] = df = np.asarray(idata.posterior["df"].values, dtype=float)
        if df.shape not in ((chains, draws), (chains, draws, k)) or not np.all(np.isfinite(df) & (df > 0)):
            raise ValueError("`df` must be positive and finite in every draw, of shape (chains, draws) or "
                             f"(chains, draws, k) = {(chains, draws, k)}, got shape {df.shape}")
    return {name: a.reshape(chains * draws, *a.shape[2:]) for name, a in samples.items()}


def _points(idata: az.InferenceData, x: Any | None, name: str = "x") -> np.ndarray:
    if x is None and ("observed_data" not in inference_data(idata).groups() or "x" not in idata.observed_data):
        raise ValueError(f"give the points `{name}`: `idata` has no observed_data `x`")
    return finite_vector(name, idata.observed_data["x"].values if x is None else x)


def over_draws(idata: az.InferenceData, function: Callable[..., Any], x: Any | None = None, *, name: str = "x",
               mean: bool = False, chunk_size: int = 256) -> np.ndarray:
    """``function(x, weights, locs, scales[, df])`` on every draw, in double precision: ``(chains, draws, ...)``.

    Blocks of ``chunk_size`` draws of shape ``(draws, 1, k)`` make ``component_log_densities``
    return ``(draws, n, k)``; ``mean=True`` averages over the draws block by block (bounded
    memory). ``x`` defaults to the fit's observed data, named ``name`` in errors.
    """
    x, chunk_size = _points(idata, x, name), positive_int("chunk_size", chunk_size)
    flat = [a.reshape(a.shape[0], 1, -1) for a in posterior_samples(idata).values()]  # (draws, 1, k or 1)
    blocks = ([a[start : start + chunk_size] for a in flat] for start in range(0, flat[0].shape[0], chunk_size))
    with jax.enable_x64(True):
        if mean:
            return sum(np.asarray(function(x, *block)).sum(axis=0) for block in blocks) / flat[0].shape[0]
        result = np.concatenate([np.asarray(function(x, *block)) for block in blocks])
    return result.reshape(idata.posterior["weights"].shape[:2] + result.shape[1:])


def _memberships(x: Any, *parameters: Any) -> jax.Array:
    return jax.nn.softmax(component_log_densities(x, *parameters), axis=-1)


def membership_probabilities(idata: az.InferenceData, x: Any | None = None, *, per_draw: bool = False,
                             chunk_size: int = 256) -> np.ndarray:
    r"""Posterior probability that each point belongs to each component, Rao-Blackwellized: ``(n, k)``.

    .. math:: P(z_i = j \mid x) \approx \frac{1}{S} \sum_{s=1}^{S} \frac{w^{(s)}_j\, \mathcal{N}(x_i \mid
        \mu^{(s)}_j, \sigma^{(s)}_j)}{\sum_l w^{(s)}_l\, \mathcal{N}(x_i \mid \mu^{(s)}_l, \sigma^{(s)}_l)}

    ``per_draw=True`` returns the terms of the sum, one per draw, ``(chains, draws, n, k)``:
    their spread is the uncertainty that comes from the parameters. Otherwise the mean is
    summed ``chunk_size`` draws at a time. ``x`` defaults to the fit's ``observed_data``.
    Component ``j`` means the same in every draw only if labels do not switch (``ordered=True``).
    """
    return over_draws(idata, _memberships, x, mean=not per_draw, chunk_size=chunk_size)


def sample_labels(idata: az.InferenceData, x: Any | None = None, *, model: Callable[..., Any] = latent_model,
                  model_kwargs: Mapping[str, Any] | None = None, num_draws: int = 200, seed: int = 0) -> np.ndarray:
    """One label per point for ``num_draws`` posterior draws, with NumPyro's ``infer_discrete``: ``(num_draws, n)``.

    The draws (evenly spaced, at most all) are substituted into the latent ``model`` with
    the labels enumerated; ``model_kwargs`` are the fit's (``{"ordered": True}``).
    """
    samples, x, num_draws = posterior_samples(idata), _points(idata, x), positive_int("num_draws", num_draws)
    total, k = samples["weights"].shape
    chosen = np.linspace(0, total - 1, min(num_draws, total)).round().astype(int)
    predictive = Predictive(config_enumerate(model), posterior_samples={name: a[chosen] for name, a in samples.items()},
                            infer_discrete=True, return_sites=["z"])
    return np.asarray(predictive(jax.random.PRNGKey(seed), **{"k": k, **(model_kwargs or {}), "x": x})["z"])


def _labels_array(name: str, labels: Any) -> np.ndarray:
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer labels, got dtype {array.dtype}")
    if array.size == 0 or array.min() < 0:
        raise ValueError(f"`{name}` must hold labels 0, ..., k - 1, got {array}")
    return array


def confusion_matrix(truth: Any, labels: Any, k: int | None = None) -> np.ndarray:
    """Counts of points by true label (rows) and estimated label (columns): ``(k, k)``.

    ``labels`` has shape ``(n,)`` or ``(draws, n)`` (pooled); ``k`` defaults to the largest label + 1.
    """
    truth, labels = _labels_array("truth", truth), _labels_array("labels", labels)
    if truth.ndim != 1 or labels.shape[-1] != truth.shape[0] or labels.ndim > 2:
        raise ValueError(f"`labels` must have shape (n,) or (draws, n) with n = len(truth) = {truth.shape[0]}, "
                         f"got {labels.shape}")
    largest = int(max(truth.max(), labels.max())) + 1
    k = largest if k is None else positive_int("k", k)
    if largest > k:
        raise ValueError(f"labels must lie in 0, ..., k - 1 = {k - 1}, got {largest - 1}")
    truth_repeated = np.broadcast_to(truth, labels.shape).ravel()
    return np.bincount(truth_repeated * k + labels.ravel(), minlength=k * k).reshape(k, k)


def match_labels(truth: Any, labels: Any, k: int | None = None) -> np.ndarray:
    """``mapping[j]``, the true component matched to estimated component ``j`` (maximum total agreement).

    ``mapping[labels]`` are the labels in the truth's numbering; the assignment problem on
    :func:`confusion_matrix` is solved by :func:`scipy.optimize.linear_sum_assignment`.

    Examples
    --------
    >>> match_labels([0, 0, 1, 2], [2, 2, 0, 1])
    array([1, 2, 0])
    """
    true_rows, estimated_columns = linear_sum_assignment(confusion_matrix(truth, labels, k), maximize=True)
    return true_rows[np.argsort(estimated_columns)]


def label_accuracy(truth: Any, labels: Any, k: int | None = None) -> float:
    """Share of labels (over all draws and points) equal to the truth, after :func:`match_labels`.

    Examples
    --------
    >>> label_accuracy([0, 0, 1, 2], [2, 2, 0, 0])
    0.75
    """
    truth = _labels_array("truth", truth)
    mapping = match_labels(truth, labels, k)
    return float(np.mean(mapping[_labels_array("labels", labels)] == truth))


def co_clustering(labels: Any) -> np.ndarray:
    r"""Posterior probability that two points share a component, :math:`P(z_i = z_j \mid x)`: ``(n, n)``.

    ``labels``, shape ``(draws, n)``, holds one label per point and draw (:func:`sample_labels`).
    The share of draws in which points :math:`i` and :math:`j` share a label does not depend on what
    the labels are called: a summary of fits whose labels switch (over-fitted or DP mixtures).

    Examples
    --------
    >>> co_clustering([[0, 0, 1], [1, 1, 1]]).tolist()
    [[1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [0.5, 0.5, 1.0]]
    """
    labels = _labels_array("labels", labels)
    if labels.ndim != 2:
        raise ValueError(f"`labels` must have shape (draws, n), got {labels.shape}")
    together = np.zeros((labels.shape[1], labels.shape[1]))
    for label in np.unique(labels):
        member = (labels == label).astype(float)  # (draws, n): which points have this label in each draw
        together += member.T @ member
    return together / labels.shape[0]


def relabel_draws(idata: az.InferenceData, reference_locs: Any) -> tuple[az.InferenceData, np.ndarray]:
    r"""Undo label switching draw by draw: give each draw's components the labels of a reference.

    Pivotal relabelling (Marin, Mengersen and Robert 2005): for each draw, the permutation
    :math:`\pi` of its components that minimizes :math:`\sum_j \lVert \mu_{\pi(j)} - m_j \rVert^2`,
    the distance of its means to the reference means :math:`m` (an optimal matching, solved by
    :func:`scipy.optimize.linear_sum_assignment`), is applied to every per-component variable of
    the posterior (those whose third axis, after chain and draw, has ``k`` entries).

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit whose posterior has ``locs`` of shape ``(chains, draws, k)`` or ``(chains, draws, k, d)``.
    reference_locs : array_like, shape (k,) or (k, d)
        The pivot's means, e.g. the draw of highest posterior density or an EM solution; on
        comparable scales (standardized data), as the distance weighs coordinates alike.

    Returns
    -------
    (arviz.InferenceData, numpy.ndarray)
        A copy of ``idata`` with the posterior relabelled, and the permutations ``(chains, draws, k)``:
        new component ``j`` of a draw is its old component ``permutations[c, s, j]``.

    Examples
    --------
    >>> import arviz as az, numpy as np
    >>> fit = az.from_dict(posterior={"locs": np.array([[[0.0, 5.0], [5.1, 0.1]]]),
    ...                               "weights": np.array([[[0.3, 0.7], [0.7, 0.3]]])})
    >>> relabelled, permutations = relabel_draws(fit, [0.0, 5.0])
    >>> relabelled.posterior["weights"].values.tolist(), permutations.tolist()
    ([[[0.3, 0.7], [0.3, 0.7]]], [[[0, 1], [1, 0]]])
    """
    posterior = inference_data(idata).posterior
    if "locs" not in posterior:
        raise ValueError("`idata` has no posterior `locs` to relabel by")
    locs = posterior["locs"].values
    locs = locs[..., None] if locs.ndim == 3 else locs
    reference = np.asarray(reference_locs, dtype=float)
    reference = reference[:, None] if reference.ndim == 1 else reference
    if reference.shape != locs.shape[2:] or not np.all(np.isfinite(reference)):
        raise ValueError(f"`reference_locs` must be finite with the shape of one draw's `locs`, {locs.shape[2:]}, "
                         f"got {np.shape(reference_locs)}")
    k = reference.shape[0]
    flat = locs.reshape(-1, *locs.shape[2:])
    costs = np.sum((flat[:, :, None, :] - reference[None, None]) ** 2, axis=-1)  # (draws, old j, reference m)
    permutations = np.empty((flat.shape[0], k), dtype=int)
    for draw, cost in enumerate(costs):
        old, new = linear_sum_assignment(cost)
        permutations[draw, new] = old
    permutations = permutations.reshape(*locs.shape[:2], k)
    relabelled = idata.copy()
    for name, variable in posterior.data_vars.items():
        if variable.ndim >= 3 and variable.shape[2] == k:
            index = permutations.reshape(permutations.shape + (1,) * (variable.ndim - 3))
            relabelled.posterior[name] = variable.copy(data=np.take_along_axis(variable.values, index, axis=2))
    return relabelled, permutations
