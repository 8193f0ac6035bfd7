"""Tests of gmm_utils.labels: membership probabilities, sampled labels, matching and scoring."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

import gmm_utils
from gmm_utils import confusion_matrix, label_accuracy, match_labels, membership_probabilities, sample_labels

DATA = gmm_utils.simulate_gmm(n=300, seed=11)


def fixed_posterior(weights, locs, scales, chains=2, draws=40, with_data=True):
    """An InferenceData whose every draw is the given parameters."""
    posterior = {name: np.broadcast_to(np.asarray(value, dtype=float), (chains, draws, len(value)))
                 for name, value in (("weights", weights), ("locs", locs), ("scales", scales))}
    return az.from_dict(posterior=posterior, observed_data={"x": DATA.x} if with_data else None)


def true_responsibilities():
    weighted = gmm_utils.mixture_pdf(DATA.x, DATA.weights, DATA.locs, DATA.scales, components=True)
    return weighted / weighted.sum(axis=1, keepdims=True)


def test_membership_probabilities_at_a_point_mass_posterior_are_the_responsibilities():
    idata = fixed_posterior(DATA.weights, DATA.locs, DATA.scales)
    probabilities = membership_probabilities(idata, chunk_size=7)  # chunks of uneven size
    assert probabilities.shape == (DATA.n, DATA.k)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, true_responsibilities(), atol=1e-5)


def test_membership_probabilities_average_over_draws():
    # Two different parameter sets, half the draws each: the result is the average.
    other_locs = DATA.locs + np.array([0.3, -0.2, 0.1])
    posterior = {
        "weights": np.broadcast_to(DATA.weights, (2, 10, 3)),
        "locs": np.stack([np.broadcast_to(DATA.locs, (10, 3)), np.broadcast_to(other_locs, (10, 3))]),
        "scales": np.broadcast_to(DATA.scales, (2, 10, 3)),
    }
    idata = az.from_dict(posterior=posterior)
    both = membership_probabilities(idata, DATA.x)
    first = membership_probabilities(fixed_posterior(DATA.weights, DATA.locs, DATA.scales), DATA.x)
    second = membership_probabilities(fixed_posterior(DATA.weights, other_locs, DATA.scales), DATA.x)
    np.testing.assert_allclose(both, (first + second) / 2, atol=1e-6)


def test_sampled_label_frequencies_match_the_probabilities():
    idata = fixed_posterior(DATA.weights, DATA.locs, DATA.scales, chains=1, draws=400)
    labels = sample_labels(idata, num_draws=400, seed=0)
    assert labels.shape == (400, DATA.n) and np.issubdtype(labels.dtype, np.integer)
    frequencies = np.stack([(labels == j).mean(axis=0) for j in range(DATA.k)], axis=1)
    expected = true_responsibilities()
    assert np.all(np.abs(frequencies - expected) <= 5 * np.sqrt(expected * (1 - expected) / 400) + 1e-3)


def test_sample_labels_thins_evenly_and_needs_parameters():
    idata = fixed_posterior(DATA.weights, DATA.locs, DATA.scales, chains=2, draws=5)
    assert sample_labels(idata, num_draws=50).shape == (10, DATA.n)  # at most all draws
    with pytest.raises(ValueError, match="must have a posterior with `weights`, `locs` and `scales`"):
        sample_labels(az.from_dict(posterior={"mu": np.zeros((1, 5))}))
    with pytest.raises(ValueError, match="give the points `x`"):
        membership_probabilities(fixed_posterior(DATA.weights, DATA.locs, DATA.scales, with_data=False))


def test_matching_undoes_a_permutation():
    permutation = np.array([2, 0, 1])  # estimated label j means true label ...
    relabelled = permutation[DATA.z]
    mapping = match_labels(DATA.z, relabelled)
    np.testing.assert_array_equal(mapping[relabelled], DATA.z)
    assert label_accuracy(DATA.z, relabelled) == 1.0
    counts = confusion_matrix(DATA.z, mapping[relabelled])
    np.testing.assert_array_equal(counts, np.diag(np.bincount(DATA.z, minlength=3)))


def test_accuracy_and_confusion_with_errors_and_draws():
    truth = np.array([0, 0, 0, 1, 1, 2])
    estimate = np.array([1, 1, 0, 0, 0, 2])  # components 0 and 1 swapped, one error
    assert label_accuracy(truth, estimate) == pytest.approx(5 / 6)
    counts = confusion_matrix(truth, estimate)
    assert counts.sum() == truth.size and counts[0, 1] == 2 and counts[2, 2] == 1
    draws = np.stack([estimate, np.array([1, 0, 2])[truth]])  # two draws, one numbering, pooled
    assert confusion_matrix(truth, draws).sum() == 2 * truth.size
    assert label_accuracy(truth, draws) == pytest.approx(11 / 12)
    assert confusion_matrix(truth, estimate, k=4).shape == (4, 4)


@pytest.mark.parametrize(
    ("truth", "labels", "k", "error", "message"),
    [
        ([0, 1, 2], [0.0, 1.0, 2.0], None, TypeError, "`labels` must hold integer labels"),
        ([0, 1, 2], [0, 1], None, ValueError, "must have shape"),
        ([0, 1, -1], [0, 1, 1], None, ValueError, "`truth` must hold labels 0"),
        ([0, 1, 2], [0, 1, 3], 3, ValueError, "labels must lie in 0"),
        ([], [], None, ValueError, "`truth` must hold labels 0"),
    ],
)
def test_bad_labels(truth, labels, k, error, message):
    with pytest.raises(error, match=message):
        confusion_matrix(np.asarray(truth, dtype=int), np.asarray(labels), k)


def test_posterior_parameters_reads_the_three_sites_and_rejects_bad_posteriors():
    idata = fixed_posterior(DATA.weights, DATA.locs, DATA.scales, chains=2, draws=4)
    weights, locs, scales = gmm_utils.posterior_parameters(idata)
    assert weights.shape == locs.shape == scales.shape == (2, 4, DATA.k)
    np.testing.assert_array_equal(locs[1, 3], DATA.locs)
    with pytest.raises(TypeError, match="`idata` must be an arviz.InferenceData"):
        gmm_utils.posterior_parameters({"weights": weights, "locs": locs, "scales": scales})
    mismatched = az.from_dict(posterior={"weights": weights, "locs": locs[..., :2], "scales": scales})
    with pytest.raises(ValueError, match="of one shape"):
        gmm_utils.posterior_parameters(mismatched)
    with pytest.raises(ValueError, match="`chunk_size`"):
        membership_probabilities(idata, chunk_size=0)


def test_co_clustering_counts_shared_labels_whatever_they_are_called():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(50, 12))
    together = gmm_utils.co_clustering(labels)
    assert together.shape == (12, 12) and np.allclose(np.diag(together), 1.0) and np.allclose(together, together.T)
    np.testing.assert_allclose(together[0, 1], np.mean(labels[:, 0] == labels[:, 1]))
    renamed = np.array([rng.permutation(3)[row] for row in labels])  # other names in every draw
    np.testing.assert_allclose(gmm_utils.co_clustering(renamed), together)


@pytest.mark.parametrize(
    "labels, error", [([0, 1, 1], ValueError), ([[0.5, 1.0]], TypeError), ([[0, -1]], ValueError), (np.zeros((0, 3), int), ValueError)],
)
def test_co_clustering_rejects_bad_labels(labels, error):
    with pytest.raises(error, match="labels"):
        gmm_utils.co_clustering(labels)
