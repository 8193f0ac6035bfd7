"""gmm_utils.plots and gmm_utils.display."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import gmm_utils


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_set_style_sets_one_family_of_figures():
    gmm_utils.set_style(dpi=90)
    assert matplotlib.rcParams["figure.dpi"] == 90
    assert matplotlib.rcParams["axes.spines.top"] is False
    import arviz as az

    assert az.rcParams["stats.ci_prob"] == pytest.approx(0.90)


def test_plot_data_density_draws_histogram_density_and_components():
    data = gmm_utils.simulate_gmm(n=500, seed=0)
    ax = gmm_utils.plot_data_density(data, kde=True)
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "density"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "true mixture density" in labels and "KDE of the data" in labels
    assert sum("mathcal{N}" in label for label in labels) == data.k
    # The plotted true density integrates to about one over its grid.
    line = next(line for line in ax.get_lines() if line.get_label() == "true mixture density")
    grid, density = line.get_data()
    assert abs(np.trapezoid(density, grid) - 1) < 0.01


def test_plot_points_by_component_has_one_row_per_component():
    data = gmm_utils.simulate_gmm(n=300, seed=0)
    ax = gmm_utils.plot_points_by_component(data)
    assert len(ax.collections) == data.k
    assert sum(len(c.get_offsets()) for c in ax.collections) == data.n


def test_show_source_returns_the_real_code_as_a_python_block():
    shown = gmm_utils.show_source(gmm_utils.simulate_gmm)
    assert shown.data.startswith("```python\ndef simulate_gmm(")
    assert shown.data.rstrip().endswith("```")


def test_glue_turns_numpy_scalars_into_python_numbers(monkeypatch):
    glued = {}
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    gmm_utils.glue("a", np.float64(0.25))
    gmm_utils.glue("b", np.array([3]))
    gmm_utils.glue("c", "text")
    assert glued == {"a": 0.25, "b": 3, "c": "text"}
    assert type(glued["a"]) is float and type(glued["b"]) is int
    with pytest.raises(TypeError, match="`name`"):
        gmm_utils.glue("", 1.0)


def test_package_versions_lists_the_key_packages():
    from gmm_utils.display import package_versions

    versions = package_versions()
    assert versions["numpyro"] != "not installed" and versions["jax"] != "not installed"
    assert package_versions(("no-such-package-xyz",))["no-such-package-xyz"] == "not installed"
