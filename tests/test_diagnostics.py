"""Tests for gmm_utils.diagnostics: the pass/fail table on synthetic and on real fits."""

from __future__ import annotations

import arviz as az
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gmm_utils  # noqa: E402
from gmm_utils.diagnostics import (  # noqa: E402
    CHECKS,
    check_convergence,
    convergence_table,
    divergence_check,
    e_bfmi_check,
    ess_check,
    plot_pair_by_chain,
    rhat_check,
    tree_depth_check,
)

CHAINS, DRAWS, K = 4, 1000, 3


def synthetic_idata(
    *,
    shift: float = 0.0,
    divergences: int = 0,
    n_steps: int = 7,
    sticky_energy: bool = False,
    with_stats: bool = True,
    seed: int = 0,
) -> az.InferenceData:
    """iid Normal draws (a perfect sampler), optionally with chain 0 shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    locs = rng.normal(size=(CHAINS, DRAWS, K))
    locs[0] += shift
    posterior = {"locs": locs, "sigma": rng.gamma(5.0, size=(CHAINS, DRAWS))}
    groups = {"posterior": posterior}
    if with_stats:
        diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
        diverging.flat[rng.choice(CHAINS * DRAWS, size=divergences, replace=False)] = True
        if sticky_energy:  # a random walk: energy barely changes between draws -> tiny E-BFMI
            energy = np.cumsum(rng.normal(scale=0.05, size=(CHAINS, DRAWS)), axis=1) + rng.normal(size=(CHAINS, 1)) * 10
        else:
            energy = rng.normal(size=(CHAINS, DRAWS))
        steps = np.full((CHAINS, DRAWS), n_steps)
        groups["sample_stats"] = {
            "diverging": diverging,
            "energy": energy,
            "n_steps": steps,
            "tree_depth": np.ceil(np.log2(steps + 1)).astype(int),
        }
    return az.from_dict(**groups, dims={"locs": ["component"]})


def test_good_fit_passes_every_check() -> None:
    table = check_convergence(synthetic_idata())
    assert list(table.index) == list(CHECKS)
    assert set(table.columns) == {"statistic", "value", "threshold", "passed", "worst"}
    assert table["passed"].dtype == bool
    assert table["passed"].all(), table
    assert table.loc["r_hat", "value"] < 1.01
    assert table.loc["ess_bulk", "value"] > 2000  # iid draws: ESS near the 4000 draws


def test_chains_that_disagree_fail_rhat_and_name_the_parameter() -> None:
    idata = synthetic_idata(shift=5.0)
    table = check_convergence(idata)
    assert table.loc["r_hat", "value"] > 1.1
    assert not table.loc["r_hat", "passed"]
    assert table.loc["r_hat", "worst"].startswith("locs[")
    assert not table.loc["ess_bulk", "passed"]
    # the sampler checks know nothing about it: that is the point of chapter 4
    assert table.loc[["divergences", "tree_depth", "e_bfmi"], "passed"].all()
    # restricted to the parameter that is fine, R-hat passes
    assert check_convergence(idata, var_names=["sigma"], checks=("r_hat",))["passed"].all()


def test_a_single_chain_gets_r_hat_from_its_two_halves(caplog: pytest.LogCaptureFixture) -> None:
    good = synthetic_idata().sel(chain=[0])
    table = check_convergence(good)
    assert np.isfinite(table.loc["r_hat", "value"]) and table.loc["r_hat", "passed"]
    assert not caplog.records  # ArviZ logs a warning when it is given one chain
    drifting = synthetic_idata().sel(chain=[0])
    drifting.posterior["locs"] = drifting.posterior["locs"] + np.linspace(0.0, 5.0, DRAWS)[None, :, None]
    assert not check_convergence(drifting).loc["r_hat", "passed"]


def test_divergences_are_counted() -> None:
    table = check_convergence(synthetic_idata(divergences=7))
    assert table.loc["divergences", "value"] == 7
    assert not table.loc["divergences", "passed"]
    assert check_convergence(synthetic_idata(divergences=7), max_divergences=7).loc["divergences", "passed"]


def test_tree_depth_saturation_uses_n_steps_and_the_recorded_max_depth() -> None:
    idata = synthetic_idata(n_steps=2**10 - 1)
    table = check_convergence(idata)
    assert table.loc["tree_depth", "value"] == CHAINS * DRAWS
    assert not table.loc["tree_depth", "passed"]
    assert "(10)" in table.loc["tree_depth", "statistic"]
    # a fit that ran with max_tree_depth=12 and used 1023 steps did not saturate
    idata.sample_stats.attrs["max_tree_depth"] = 12
    assert check_convergence(idata).loc["tree_depth", "passed"]
    assert not check_convergence(idata, max_tree_depth=10).loc["tree_depth", "passed"]
    # without n_steps, tree_depth is used
    del idata.sample_stats["n_steps"]
    assert not check_convergence(idata, max_tree_depth=10).loc["tree_depth", "passed"]


def test_low_e_bfmi_fails() -> None:
    table = check_convergence(synthetic_idata(sticky_energy=True))
    assert table.loc["e_bfmi", "value"] < 0.3
    assert not table.loc["e_bfmi", "passed"]
    assert table.loc["e_bfmi", "worst"].startswith("chain ")


def test_undefined_statistic_fails() -> None:
    idata = synthetic_idata()
    idata.posterior["constant"] = idata.posterior["sigma"] * 0.0
    table = check_convergence(idata)
    assert not table.loc["r_hat", "passed"]
    assert "constant" in table.loc["r_hat", "worst"]


def test_discrete_labels_are_left_out_by_default() -> None:
    idata = synthetic_idata()
    labels = np.zeros((CHAINS, DRAWS, 5), dtype=int)
    labels[0] = 1  # chains "disagree" on the labels: no R-hat for discrete draws, though
    idata.posterior["z"] = (("chain", "draw", "point"), labels)
    assert check_convergence(idata)["passed"].all()
    assert not check_convergence(idata, var_names=["locs", "z"], checks=("r_hat",))["passed"].all()


def test_posterior_only_checks_need_no_sample_stats() -> None:
    idata = synthetic_idata(with_stats=False)
    table = check_convergence(idata, checks=("r_hat", "ess_bulk", "ess_tail"))
    assert list(table.index) == ["r_hat", "ess_bulk", "ess_tail"]
    assert table["passed"].all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"idata": {"locs": np.zeros((4, 10))}}, TypeError, "idata"),
        ({"idata": az.from_dict(sample_stats={"diverging": np.zeros((4, 10), bool)})}, ValueError, "posterior"),
        ({"idata": synthetic_idata(with_stats=False)}, ValueError, "sample_stats"),
        ({"checks": ("r_hat", "geweke")}, ValueError, "checks"),
        ({"checks": ()}, ValueError, "checks"),
        ({"var_names": ["mu"]}, ValueError, "var_names"),
        ({"max_rhat": 0.99}, ValueError, "max_rhat"),
        ({"min_ess": -1}, ValueError, "min_ess"),
        ({"min_bfmi": "0.3"}, TypeError, "min_bfmi"),
        ({"max_tree_depth": float("nan")}, ValueError, "max_tree_depth"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs: dict, error: type, message: str) -> None:
    kwargs = dict(kwargs)
    idata = kwargs.pop("idata", None)
    if idata is None:
        idata = synthetic_idata()
    with pytest.raises(error, match=message):
        check_convergence(idata, **kwargs)


def test_missing_sample_stat_is_named() -> None:
    idata = synthetic_idata()
    del idata.sample_stats["energy"]
    with pytest.raises(ValueError, match="energy"):
        check_convergence(idata)
    assert "e_bfmi" not in check_convergence(idata, checks=CHECKS[:-1]).index


def test_plot_pair_by_chain_draws_one_cloud_per_chain() -> None:
    ax = plot_pair_by_chain(synthetic_idata(shift=3.0), "locs", (0, 2), max_draws=100)
    assert len(ax.collections) == CHAINS
    assert all(len(c.get_offsets()) == 100 for c in ax.collections)
    assert ax.get_xlabel() == "locs[0]" and ax.get_ylabel() == "locs[2]"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="var_name"):
        plot_pair_by_chain(synthetic_idata(), "mu")
    with pytest.raises(ValueError, match="var_name"):
        plot_pair_by_chain(synthetic_idata(), "sigma")
    with pytest.raises(ValueError, match="components"):
        plot_pair_by_chain(synthetic_idata(), "locs", (0, 3))
    with pytest.raises(TypeError, match="idata"):
        plot_pair_by_chain(None)


def test_each_check_is_a_function_whose_row_is_the_tables() -> None:
    idata = synthetic_idata(shift=5.0, divergences=3)
    table = check_convergence(idata)
    rows = {
        "r_hat": rhat_check(idata.posterior),
        "ess_bulk": ess_check(idata.posterior, "bulk"),
        "ess_tail": ess_check(idata.posterior, "tail"),
        "divergences": divergence_check(idata.sample_stats),
        "tree_depth": tree_depth_check(idata.sample_stats),
        "e_bfmi": e_bfmi_check(idata.sample_stats),
    }
    assert convergence_table(rows).equals(table)
    assert rows["divergences"].value == 3 and not rows["divergences"].passed
    assert rhat_check(idata.posterior, max_rhat=10.0).passed  # the threshold is the check's argument


def test_exported_from_the_package() -> None:
    assert gmm_utils.check_convergence is check_convergence
    assert gmm_utils.plot_pair_by_chain is plot_pair_by_chain


# --- The chapter 4 claims on real fits (the chapter's settings, two seeds each) -------------

CHAPTER_DRAWS = {"num_warmup": 500, "num_samples": 1000}


@pytest.fixture(scope="module")
def chapter_data() -> np.ndarray:
    return gmm_utils.simulate_gmm(seed=42).x[:500]


@pytest.mark.parametrize("seed", [42, 1])
def test_exchangeable_priors_fail_r_hat_with_four_chains_and_no_divergence(chapter_data: np.ndarray, seed: int) -> None:
    idata = gmm_utils.run_nuts(gmm_utils.marginal_model, {"x": chapter_data, "k": 3}, seed=seed, **CHAPTER_DRAWS)
    table = check_convergence(idata)
    assert table.loc["r_hat", "value"] > 1.1
    assert table.loc["divergences", "value"] == 0
    # the chains found the same means under different labels
    chain_means = np.sort(idata.posterior["locs"].mean("draw").to_numpy(), axis=1)
    assert np.allclose(chain_means, chain_means.mean(axis=0), atol=0.2)


@pytest.mark.parametrize("seed", [42, 1])
def test_ordered_means_pass_every_check(chapter_data: np.ndarray, seed: int) -> None:
    idata = gmm_utils.run_nuts(
        gmm_utils.marginal_model, {"x": chapter_data, "k": 3, "ordered": True},
        init_strategy=gmm_utils.init_to_data(chapter_data, 3), seed=seed, **CHAPTER_DRAWS,
    )
    table = check_convergence(idata)
    assert table["passed"].all(), table
    # and it recovers the truth (the first 500 points of the seed's mixture)
    locs = idata.posterior["locs"].to_numpy().reshape(-1, 3)
    low, high = np.quantile(locs, [0.005, 0.995], axis=0)
    assert np.all((low < [-1.0, 1.0, 4.0]) & ([-1.0, 1.0, 4.0] < high))
