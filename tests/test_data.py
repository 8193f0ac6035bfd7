"""Unit tests for gmm_utils.data: simulation, density and moments (NumPy only)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

import gmm_utils
from gmm_utils.data import DEFAULT_LOCS, DEFAULT_SCALES, DEFAULT_WEIGHTS


def test_defaults_are_the_seed_notebooks_setup():
    data = gmm_utils.simulate_gmm()
    assert data.n == 2500 and data.k == 3
    np.testing.assert_allclose(data.weights, [0.2, 0.3, 0.5])
    np.testing.assert_allclose(data.locs, [-1.0, 1.0, 4.0])
    np.testing.assert_allclose(data.scales, [0.2, 0.9, 0.5])
    assert data.x.shape == (2500,) and data.z.shape == (2500,)
    assert data.z.dtype.kind == "i" and set(np.unique(data.z)) <= {0, 1, 2}


def test_same_seed_same_data_and_other_seed_other_data():
    first, again = gmm_utils.simulate_gmm(seed=7), gmm_utils.simulate_gmm(seed=7)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.z, again.z)
    assert not np.array_equal(first.x, gmm_utils.simulate_gmm(seed=8).x)


def test_result_is_frozen_and_read_only():
    data = gmm_utils.simulate_gmm(n=10)
    with pytest.raises(AttributeError):
        data.x = np.zeros(10)  # type: ignore[misc]
    with pytest.raises(ValueError):
        data.x[0] = 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_component_matches_its_normal(seed):
    data = gmm_utils.simulate_gmm(n=20_000, seed=seed)
    for j in range(data.k):
        points = data.x[data.z == j]
        # Kolmogorov-Smirnov against the component's Normal; p > 1e-4 fails only for a wrong sampler.
        assert stats.kstest(points, "norm", args=(data.locs[j], data.scales[j])).pvalue > 1e-4
        share = points.size / data.n
        assert abs(share - data.weights[j]) < 5 * np.sqrt(data.weights[j] * (1 - data.weights[j]) / data.n)


def test_single_component_and_zero_weight_component():
    data = gmm_utils.simulate_gmm(n=100, weights=[1.0], locs=[3.0], scales=[2.0], seed=0)
    assert data.k == 1 and np.all(data.z == 0)
    data = gmm_utils.simulate_gmm(n=500, weights=[0.0, 1.0], locs=[0.0, 5.0], scales=[1.0, 1.0], seed=0)
    assert np.all(data.z == 1)


BAD_INPUTS = [
    ({"n": 0}, ValueError, "`n`"),
    ({"n": -5}, ValueError, "`n`"),
    ({"n": 2.5}, ValueError, "`n`"),
    ({"n": "100"}, ValueError, "`n`"),
    ({"n": True}, ValueError, "`n`"),
    ({"weights": (0.5, 0.6, -0.1)}, ValueError, "non-negative"),
    ({"weights": (0.2, 0.3, 0.4)}, ValueError, "sum to 1"),
    ({"weights": (0.2, 0.3, np.nan)}, ValueError, "`weights` must be finite"),
    ({"locs": (-1.0, np.inf, 4.0)}, ValueError, "`locs` must be finite"),
    ({"scales": (0.2, 0.0, 0.5)}, ValueError, "`scales` must be positive"),
    ({"scales": (0.2, -0.9, 0.5)}, ValueError, "`scales` must be positive"),
    ({"scales": (0.2, np.nan, 0.5)}, ValueError, "`scales` must be finite"),
    ({"locs": (-1.0, 1.0)}, ValueError, "same length"),
    ({"weights": (), "locs": (), "scales": ()}, ValueError, "must not be empty"),
    ({"locs": [[-1.0, 1.0, 4.0]]}, ValueError, "one-dimensional"),
    ({"locs": ("a", "b", "c")}, TypeError, "`locs`"),
    ({"seed": 1.5}, TypeError, "`seed`"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_INPUTS)
def test_bad_input_raises_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        gmm_utils.simulate_gmm(**kwargs)


def test_weights_summing_to_one_within_tolerance_are_accepted():
    gmm_utils.simulate_gmm(n=5, weights=(0.2, 0.3, 0.5 + 5e-7))


def test_mixture_pdf_matches_scipy_and_integrates_to_one():
    grid = np.linspace(-5, 8, 1001)
    expected = sum(
        w * stats.norm.pdf(grid, m, s) for w, m, s in zip(DEFAULT_WEIGHTS, DEFAULT_LOCS, DEFAULT_SCALES)
    )
    np.testing.assert_allclose(
        gmm_utils.mixture_pdf(grid, DEFAULT_WEIGHTS, DEFAULT_LOCS, DEFAULT_SCALES), expected, rtol=1e-12, atol=1e-15
    )
    total, _ = integrate.quad(
        lambda t: gmm_utils.mixture_pdf(t, DEFAULT_WEIGHTS, DEFAULT_LOCS, DEFAULT_SCALES)[0], -np.inf, np.inf,
        points=None, limit=200,
    )
    assert abs(total - 1) < 1e-8


def test_mixture_pdf_components_sum_to_the_density():
    grid = np.linspace(-3, 6, 50)
    parts = gmm_utils.mixture_pdf(grid, DEFAULT_WEIGHTS, DEFAULT_LOCS, DEFAULT_SCALES, components=True)
    assert parts.shape == (50, 3)
    np.testing.assert_allclose(parts.sum(axis=1), gmm_utils.mixture_pdf(grid, DEFAULT_WEIGHTS, DEFAULT_LOCS, DEFAULT_SCALES))


def test_mixture_pdf_rejects_bad_input():
    with pytest.raises(ValueError, match="`x` must be finite"):
        gmm_utils.mixture_pdf([0.0, np.nan], [1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="`scales` must be positive"):
        gmm_utils.mixture_pdf([0.0], [1.0], [0.0], [-1.0])


def test_mixture_moments_match_numerical_integration():
    mean, variance = gmm_utils.mixture_moments(DEFAULT_WEIGHTS, DEFAULT_LOCS, DEFAULT_SCALES)

    def density(t):
        return gmm_utils.mixture_pdf(t, DEFAULT_WEIGHTS, DEFAULT_LOCS, DEFAULT_SCALES)[0]

    numeric_mean, _ = integrate.quad(lambda t: t * density(t), -np.inf, np.inf, limit=200)
    numeric_second, _ = integrate.quad(lambda t: t * t * density(t), -np.inf, np.inf, limit=200)
    assert abs(mean - numeric_mean) < 1e-7
    assert abs(variance - (numeric_second - numeric_mean**2)) < 1e-7


def test_galaxy_velocities_are_the_published_values_in_units_of_1000_km_s():
    x = gmm_utils.galaxy_velocities()
    assert x.shape == (82,)
    assert np.all(np.isfinite(x)) and 5.0 < x.min() < x.max() < 40.0  # thousands of km/s
    # MASS's values, unchanged: its documentation notes that the 78th, 26690 km/s, should be 26960.
    assert x[77] == pytest.approx(26.690)
    np.testing.assert_allclose(gmm_utils.galaxy_velocities(1.0), 1000.0 * x)
    with pytest.raises(ValueError):
        x[0] = 0.0  # read-only


@pytest.mark.parametrize(
    "unit, error", [(0.0, ValueError), (-1000.0, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
                    ("1000", TypeError), (None, TypeError), (True, TypeError)],
)
def test_galaxy_velocities_reject_a_bad_unit(unit, error):
    with pytest.raises(error, match="unit_km_s"):
        gmm_utils.galaxy_velocities(unit)


def test_every_shipped_data_file_is_package_data():
    # A non-editable install (Colab, a wheel) carries only what pyproject.toml's package-data names.
    import tomllib
    from pathlib import Path

    root = Path(gmm_utils.__file__).parent
    setuptools = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "gmm_utils.datasets" in setuptools["packages"]
    patterns = setuptools["package-data"]["gmm_utils.datasets"]
    shipped = {path for pattern in patterns for path in (root / "datasets").glob(pattern)}
    data_files = {path for path in (root / "datasets").iterdir() if path.is_file() and not path.name.startswith(".")}
    assert data_files and data_files <= shipped


def test_old_faithful_is_the_published_table_in_minutes():
    x = gmm_utils.old_faithful()
    assert x.shape == (272, 2) and np.all(np.isfinite(x))
    assert 1.5 < x[:, 0].min() < x[:, 0].max() < 5.5  # eruption durations, minutes
    assert 40.0 < x[:, 1].min() < x[:, 1].max() < 100.0  # waiting times, minutes
    np.testing.assert_allclose(x[0], [3.6, 79.0])  # R's datasets::faithful, first row
    with pytest.raises(ValueError):
        x[0, 0] = 0.0  # read-only


def test_palmer_penguins_keeps_the_complete_rows_with_their_species():
    penguins = gmm_utils.palmer_penguins()
    assert penguins.measurements.shape == (333, 4) and np.all(np.isfinite(penguins.measurements))
    assert penguins.columns == ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
    species, counts = np.unique(penguins.species, return_counts=True)
    assert dict(zip(species.tolist(), counts.tolist())) == {"Adelie": 146, "Chinstrap": 68, "Gentoo": 119}
    assert set(penguins.sex) == {"female", "male"}
    # Gentoo penguins are the heavy ones: the columns are not shuffled against the species.
    mass = penguins.measurements[:, 3]
    assert mass[penguins.species == "Gentoo"].mean() > mass[penguins.species == "Adelie"].mean() + 1000
    for array in (penguins.measurements, penguins.species, penguins.sex):
        with pytest.raises(ValueError):
            array[0] = array[1]  # read-only
