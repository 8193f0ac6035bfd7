"""Tests for gmm_utils.predictive: exact checks on fixed parameters, then the claims of chapters 5 and 6.

The first part builds ``InferenceData`` by hand (every draw equal to known parameters), so
densities, CDFs and membership probabilities can be compared with closed forms. The
second part fits the book's model with a data seed the chapters do not use (the
chapters assert the same claims for seed 42) and checks that the posterior predictive
checks pass the right model and fail the wrong ones, and what PSIS-LOO says about K.
"""

from __future__ import annotations

import warnings

import arviz as az
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

import gmm_utils  # noqa: E402
from gmm_utils.predictive import (  # noqa: E402
    DensityBand,
    ECDFBand,
    assign_clusters,
    ecdf_band,
    elpd_by_chain,
    plot_density_band,
    plot_ecdf_band,
    posterior_predictive_pvalues,
    predictive_cdf,
    predictive_density_band,
    sample_posterior_predictive,
    tail_share,
)

WEIGHTS = np.array([0.2, 0.3, 0.5])
LOCS = np.array([-1.0, 1.0, 4.0])
SCALES = np.array([0.2, 0.9, 0.5])


def fixed_idata(chains: int = 2, draws: int = 5, x: np.ndarray | None = None, jitter: float = 0.0, seed: int = 0):
    """A posterior whose every draw is the true mixture (optionally jittered), with observed data."""
    rng = np.random.default_rng(seed)
    shape = (chains, draws, 3)
    posterior = {
        "weights": np.broadcast_to(WEIGHTS, shape).copy(),
        "locs": np.broadcast_to(LOCS, shape) + jitter * rng.normal(size=shape),
        "scales": np.broadcast_to(SCALES, shape) * np.exp(jitter * rng.normal(size=shape)),
    }
    groups = {"posterior": posterior}
    if x is not None:
        groups["observed_data"] = {"x": np.asarray(x)}
    return az.from_dict(**groups, dims={name: ["component"] for name in posterior} | {"x": ["point"]})


def true_pdf(x):
    return gmm_utils.mixture_pdf(np.asarray(x), WEIGHTS, LOCS, SCALES)


# ---------------------------------------------------------------------------------------
# tail_share


def test_tail_share_counts_points_beyond_the_threshold():
    assert tail_share([0.0] * 19 + [10.0], 3.0) == pytest.approx(0.05)
    assert tail_share([0.0] * 19 + [10.0], 5.0) == pytest.approx(0.0)
    rows = np.vstack([np.zeros(20), np.r_[np.zeros(19), 10.0]])
    np.testing.assert_allclose(tail_share(rows, 3.0), [0.0, 0.05])


def test_tail_share_of_a_normal_sample_is_near_its_expectation():
    x = np.random.default_rng(0).normal(size=1_000_000)
    assert tail_share(x, 3.0) == pytest.approx(2 * stats.norm.sf(3.0), rel=0.1)


def test_tail_share_rejects_a_single_point():
    with pytest.raises(ValueError, match="`x`"):
        tail_share([1.0])


# ---------------------------------------------------------------------------------------
# densities, CDF, memberships on fixed parameters


def test_density_band_of_a_point_mass_posterior_is_the_true_density():
    grid = np.linspace(-3.0, 7.0, 301)
    band = predictive_density_band(fixed_idata(), grid, prob=0.9)
    assert isinstance(band, DensityBand)
    np.testing.assert_allclose(band.mean, true_pdf(grid), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(band.lower, band.upper, rtol=1e-5, atol=1e-8)
    assert band.prob == 0.9


def test_density_band_brackets_its_mean_and_integrates_to_one():
    grid = np.linspace(-4.0, 8.0, 2001)
    band = predictive_density_band(fixed_idata(chains=2, draws=50, jitter=0.05), grid, prob=0.8)
    assert np.all(band.lower <= band.mean + 1e-12) and np.all(band.mean <= band.upper + 1e-12)
    assert np.trapezoid(band.mean, grid) == pytest.approx(1.0, abs=1e-4)
    assert np.any(band.upper - band.lower > 1e-3)  # jittered draws give a real band


@pytest.mark.parametrize("prob", [0.0, 1.0, 1.5, "0.9"])
def test_density_band_rejects_a_bad_prob(prob):
    with pytest.raises((ValueError, TypeError), match="`prob`"):
        predictive_density_band(fixed_idata(), np.linspace(0, 1, 5), prob=prob)


def test_density_band_rejects_a_bad_grid_and_bad_idata():
    with pytest.raises(ValueError, match="`grid`"):
        predictive_density_band(fixed_idata(), [0.0, np.nan])
    with pytest.raises(TypeError, match="`idata`"):
        predictive_density_band({"weights": WEIGHTS}, [0.0])
    no_scales = az.from_dict(posterior={"weights": np.ones((1, 2, 1)), "locs": np.zeros((1, 2, 1))})
    with pytest.raises(ValueError, match="`weights`, `locs` and `scales`"):
        predictive_density_band(no_scales, [0.0])


def test_predictive_cdf_is_the_mixture_cdf_and_defaults_to_the_observed_data():
    x = np.array([-2.0, -1.0, 0.0, 1.5, 4.0, 9.0])
    expected = stats.norm.cdf((x[:, None] - LOCS) / SCALES) @ WEIGHTS
    np.testing.assert_allclose(predictive_cdf(fixed_idata(), x), expected, rtol=1e-6)
    np.testing.assert_allclose(predictive_cdf(fixed_idata(x=x)), expected, rtol=1e-6)


def test_predictive_cdf_without_data_raises():
    with pytest.raises(ValueError, match="`x`"):
        predictive_cdf(fixed_idata())


def test_pit_of_data_from_the_model_is_uniform_and_of_data_from_another_is_not():
    data = gmm_utils.simulate_gmm(n=2000, seed=3)
    assert ecdf_band(predictive_cdf(fixed_idata(), data.x)).inside
    shifted = gmm_utils.simulate_gmm(n=2000, locs=(-1.0, 1.5, 4.0), seed=3)
    assert not ecdf_band(predictive_cdf(fixed_idata(), shifted.x)).inside


def test_membership_probabilities_per_draw_are_the_responsibilities_and_average_to_the_mean():
    x = np.array([-1.0, -0.4, 0.5, 2.6, 4.0])
    weighted = gmm_utils.mixture_pdf(x, WEIGHTS, LOCS, SCALES, components=True)
    draws = gmm_utils.membership_probabilities(fixed_idata(), x, per_draw=True)
    assert draws.shape == (2, 5, 5, 3)
    np.testing.assert_allclose(draws[1, 3], weighted / weighted.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-12)
    jittered = fixed_idata(chains=2, draws=20, jitter=0.05, x=x)
    np.testing.assert_allclose(
        gmm_utils.membership_probabilities(jittered, x, per_draw=True).mean(axis=(0, 1)), gmm_utils.membership_probabilities(jittered, x), atol=1e-5
    )


def test_assign_clusters_reports_the_most_probable_component_its_interval_and_the_density():
    x_new = np.array([-1.0, 1.0, 4.0, 2.6, 30.0])
    table = assign_clusters(fixed_idata(chains=2, draws=100, jitter=0.05), x_new, prob=0.9)
    assert list(table.columns[:6]) == ["x", "component", "probability", "lower", "upper", "log_density"]
    np.testing.assert_array_equal(table["component"].to_numpy()[:3], [0, 1, 2])
    assert (table["probability"].iloc[:3] > 0.95).all()
    assert ((table["lower"] <= table["probability"] + 1e-12) & (table["probability"] <= table["upper"] + 1e-12)).all()
    memberships = table[[f"p[{j}]" for j in range(3)]].to_numpy()
    np.testing.assert_allclose(memberships.sum(axis=1), 1.0, atol=1e-9)
    # between components 2 and 3 the call is uncertain, and its interval is wide
    assert table.loc[3, "probability"] < 0.95 and table.loc[3, "upper"] - table.loc[3, "lower"] > 0.02
    # a point far from every component is still "assigned", but its density gives it away
    assert table.loc[4, "log_density"] < np.log(true_pdf([4.0])[0]) - 100


def test_assign_clusters_log_density_matches_the_mixture_for_fixed_parameters():
    x_new = np.array([-1.0, 0.0, 4.0])
    table = assign_clusters(fixed_idata(), x_new)
    np.testing.assert_allclose(table["log_density"], np.log(true_pdf(x_new)), rtol=1e-6)


def test_assign_clusters_rejects_bad_input():
    with pytest.raises(ValueError, match="`x_new`"):
        assign_clusters(fixed_idata(), [0.0, np.inf])
    with pytest.raises(ValueError, match="`prob`"):
        assign_clusters(fixed_idata(), [0.0], prob=1.0)


# ---------------------------------------------------------------------------------------
# ECDF bands


def test_ecdf_band_of_uniform_values_is_inside_and_of_skewed_values_is_not():
    rng = np.random.default_rng(0)
    band = ecdf_band(rng.uniform(size=1500), prob=0.99)
    assert isinstance(band, ECDFBand) and band.inside
    assert band.eval_points.shape == band.ecdf.shape == band.lower.shape == band.upper.shape == (50,)
    assert np.all(band.lower <= band.upper)
    assert not ecdf_band(rng.beta(1.3, 1.0, size=1500), prob=0.99).inside


def test_ecdf_band_holds_its_coverage_roughly():
    rng = np.random.default_rng(5)
    inside = np.mean([ecdf_band(rng.uniform(size=300), prob=0.9).inside for _ in range(200)])
    assert 0.82 < inside < 0.97  # 90% simultaneous band, 200 trials


@pytest.mark.parametrize("values", [[-0.1, 0.5], [0.5, 1.2], [0.5, np.nan]])
def test_ecdf_band_rejects_values_outside_the_unit_interval(values):
    with pytest.raises(ValueError, match="`values`"):
        ecdf_band(values)


# ---------------------------------------------------------------------------------------
# posterior predictive p-values


def pp_idata(observed, replicated):
    replicated = np.asarray(replicated, dtype=float)
    return az.from_dict(
        posterior_predictive={"x": replicated}, observed_data={"x": np.asarray(observed, dtype=float)},
        dims={"x": ["point"]},
    )


def test_pvalues_are_the_share_of_replications_at_or_below_the_data_with_ties_halved():
    replicated = np.arange(100.0)[None, :, None] * np.ones((1, 1, 3))  # draw d: a data set of three d's
    idata = pp_idata([10.0, 10.0, 10.0], replicated)
    table = posterior_predictive_pvalues(idata, {"mean": lambda x: np.mean(x, axis=-1)}, prob=0.9)
    assert table.loc["mean", "p_value"] == pytest.approx((10 + 0.5) / 100)
    assert table.loc["mean", "observed"] == 10.0
    assert table.loc["mean", "replicated mean"] == pytest.approx(49.5)
    assert table.loc["mean", "lower"] < table.loc["mean", "upper"]
    zeros = posterior_predictive_pvalues(idata, {"zero": lambda x: np.zeros(np.shape(x)[:-1])})
    assert zeros.loc["zero", "p_value"] == 0.5  # all ties: no evidence either way


def test_pvalues_need_replicated_data_and_well_formed_statistics():
    with pytest.raises(ValueError, match="posterior_predictive"):
        posterior_predictive_pvalues(fixed_idata(x=[0.0, 1.0]), {"mean": np.mean})
    idata = pp_idata([0.0, 1.0], np.zeros((1, 4, 2)))
    with pytest.raises(TypeError, match="`statistics`"):
        posterior_predictive_pvalues(idata, {})
    with pytest.raises(TypeError, match="callable"):
        posterior_predictive_pvalues(idata, {"bad": 3.0})
    with pytest.raises(ValueError, match="to \\(draws,\\)"):
        posterior_predictive_pvalues(idata, {"not reduced": lambda x: x})


# ---------------------------------------------------------------------------------------
# replicated data


def test_sample_posterior_predictive_has_the_layout_arviz_reads_and_the_right_moments():
    x = gmm_utils.simulate_gmm(n=4000, seed=1).x
    idata = sample_posterior_predictive(fixed_idata(chains=2, draws=3, x=x), seed=1)
    assert dict(idata.posterior_predictive["x"].sizes) == {"chain": 2, "draw": 3, "point": 4000}
    replicated = idata.posterior_predictive["x"].values.ravel()
    mean, variance = gmm_utils.mixture_moments(WEIGHTS, LOCS, SCALES)
    assert abs(replicated.mean() - mean) < 4 * np.sqrt(variance / replicated.size)
    assert replicated.var() == pytest.approx(variance, rel=0.05)
    assert "posterior_predictive" not in fixed_idata(x=x).groups()  # the input is not modified


def test_sample_posterior_predictive_is_reproducible_and_takes_n():
    idata = fixed_idata(x=np.zeros(10))
    first = sample_posterior_predictive(idata, seed=3).posterior_predictive["x"].values
    again = sample_posterior_predictive(idata, seed=3).posterior_predictive["x"].values
    np.testing.assert_array_equal(first, again)
    assert sample_posterior_predictive(fixed_idata(), n=7).posterior_predictive["x"].shape == (2, 5, 7)


def test_sample_posterior_predictive_rejects_bad_input():
    with pytest.raises(ValueError, match="`n`"):
        sample_posterior_predictive(fixed_idata())
    with pytest.raises(TypeError, match="`seed`"):
        sample_posterior_predictive(fixed_idata(), n=5, seed=1.5)
    with pytest.raises(TypeError, match="`idata`"):
        sample_posterior_predictive(None, n=5)


# ---------------------------------------------------------------------------------------
# per-chain elpd and plots


def test_elpd_by_chain_has_one_estimate_per_chain_close_to_the_pooled_one():
    x = gmm_utils.simulate_gmm(n=300, seed=2).x
    idata = fixed_idata(chains=3, draws=200, jitter=0.02, x=x)
    log_lik = np.asarray(
        gmm_utils.mixture_log_likelihood(x, *gmm_utils.posterior_parameters(idata))
    )
    idata.add_groups(log_likelihood={"x": log_lik}, dims={"x": ["point"]})
    by_chain = elpd_by_chain(idata)
    assert by_chain.shape == (3,)
    assert np.all(np.abs(by_chain - az.loo(idata).elpd_loo) < 2.0)
    with pytest.raises(ValueError, match="log_likelihood"):
        elpd_by_chain(fixed_idata())


def test_plots_return_axes_and_reject_the_wrong_input():
    band = predictive_density_band(fixed_idata(), np.linspace(-2, 6, 50))
    assert isinstance(plot_density_band(band), plt.Axes)
    assert isinstance(plot_ecdf_band(ecdf_band(np.random.default_rng(0).uniform(size=100))), plt.Axes)
    with pytest.raises(TypeError, match="`band`"):
        plot_density_band((1, 2))
    with pytest.raises(TypeError, match="`band`"):
        plot_ecdf_band(band)
    plt.close("all")


# ---------------------------------------------------------------------------------------
# The chapters' claims, on data the chapters do not use (seed 7; they use seed 42)

SEED = 7
PRIORS = {"loc_prior": dist.Normal(0.0, 5.0), "scale_prior": dist.LogNormal(0.0, 1.0)}
STATISTICS = {
    "standard deviation": lambda x: np.std(x, axis=-1),
    "1% quantile": lambda x: np.quantile(x, 0.01, axis=-1),
    "99% quantile": lambda x: np.quantile(x, 0.99, axis=-1),
    "share beyond 3 sd": lambda x: tail_share(x, 3.0),
    "range": lambda x: np.max(x, axis=-1) - np.min(x, axis=-1),
}


def fit(x, k, **options):
    settings = {"num_chains": 4, "num_warmup": 500, "num_samples": 500, "seed": SEED, **options}
    return gmm_utils.run_nuts(
        gmm_utils.marginal_model, {"x": x, "k": k, "ordered": True, **PRIORS},
        init_strategy=gmm_utils.init_to_data(x, k), **settings,
    )


@pytest.fixture(scope="module")
def data():
    return gmm_utils.simulate_gmm(seed=SEED)


@pytest.fixture(scope="module")
def fits(data):
    """K = 1, 2, 3 and (capped, as in chapter 6) K = 4 on the seed-7 data, with replicated data for K = 2, 3."""
    out = {k: fit(data.x, k) for k in (1, 2, 3)}
    out[4] = fit(data.x, 4, num_warmup=300, num_samples=300, max_tree_depth=5)
    for k in (2, 3):
        out[k] = sample_posterior_predictive(out[k], model_kwargs={"ordered": True}, seed=SEED)
    return out


def test_the_three_component_model_passes_every_check(fits):
    idata = fits[3]
    assert gmm_utils.check_convergence(idata)["passed"].all()
    assert posterior_predictive_pvalues(idata, STATISTICS)["p_value"].between(0.01, 0.99).all()
    assert ecdf_band(predictive_cdf(idata)).inside
    assert ecdf_band(az.loo_pit(idata, y="x")).inside


def test_the_two_component_model_fails_the_low_quantile_and_loo_pit(fits):
    idata = fits[2]
    assert gmm_utils.check_convergence(idata)["passed"].all()  # the sampler is fine: the model is wrong
    p_values = posterior_predictive_pvalues(idata, STATISTICS)["p_value"]
    assert not 0.01 <= p_values["1% quantile"] <= 0.99
    assert 0.01 <= p_values["standard deviation"] <= 0.99  # fitted directly: blind
    assert not ecdf_band(az.loo_pit(idata, y="x")).inside


def test_heavy_tails_fail_the_range(data):
    rng = np.random.default_rng(SEED)
    x_heavy = data.locs[data.z] + data.scales[data.z] * rng.standard_t(3, size=data.n)
    idata = sample_posterior_predictive(fit(x_heavy, 3), model_kwargs={"ordered": True}, seed=SEED)
    p_values = posterior_predictive_pvalues(idata, STATISTICS)["p_value"]
    assert p_values["range"] > 0.99
    assert 0.01 <= p_values["standard deviation"] <= 0.99


def test_loo_puts_three_components_first_and_fewer_far_behind(fits):
    with warnings.catch_warnings():
        # pandas 3 deprecates the sort_values(inplace=True) that ArviZ 0.23's compare uses
        warnings.filterwarnings("ignore", message="The inplace keyword", category=DeprecationWarning)
        table = az.compare({f"K={k}": idata for k, idata in fits.items()})
    best = table.index[0]
    assert best in ("K=3", "K=4")
    assert table.loc["K=3", "elpd_diff"] <= 2 * max(table.loc["K=3", "dse"], 1e-9)
    for worse in ("K=1", "K=2"):
        assert table.loc[worse, "elpd_diff"] > 4 * table.loc[worse, "dse"]
    for idata in fits.values():
        assert float(az.loo(idata, pointwise=True).pareto_k.max()) < 0.7


def test_elpd_by_chain_does_not_repeat_the_pareto_warning_for_each_chain():
    rng = np.random.default_rng(3)
    log_lik = rng.normal(-1.0, 0.1, size=(2, 200, 20))
    log_lik[:, :, 0] = -np.abs(rng.standard_cauchy(size=(2, 200))) * 50  # one influential point
    idata = az.from_dict(
        posterior={"mu": rng.normal(size=(2, 200))}, log_likelihood={"x": log_lik}
    )
    with pytest.warns(UserWarning, match="Pareto"):  # ArviZ warns on one chain alone ...
        az.loo(idata.sel(chain=[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ... elpd_by_chain does not
        by_chain = elpd_by_chain(idata)
    assert by_chain.shape == (2,) and np.isfinite(by_chain).all()


# ---------------------------------------------------------------------------------------
# Student-t components: every helper uses them when the posterior has `df`

DF = 3.5


def fixed_student_t_idata(chains: int = 2, draws: int = 4, x: np.ndarray | None = None):
    idata = fixed_idata(chains=chains, draws=draws, x=x)
    idata.posterior["df"] = (("chain", "draw"), np.full((chains, draws), DF))
    return idata


def student_t_pdf(x):
    return stats.t.pdf((np.asarray(x)[:, None] - LOCS) / SCALES, DF) / SCALES @ WEIGHTS


def test_density_band_and_pit_use_student_t_components_when_the_posterior_has_df():
    x = np.linspace(-3.0, 8.0, 23)
    band = predictive_density_band(fixed_student_t_idata(), x)
    np.testing.assert_allclose(band.mean, student_t_pdf(x), rtol=1e-6)
    assert np.max(np.abs(band.mean - true_pdf(x))) > 1e-3  # not the Gaussian mixture's
    expected_cdf = stats.t.cdf((x[:, None] - LOCS) / SCALES, DF) @ WEIGHTS
    np.testing.assert_allclose(predictive_cdf(fixed_student_t_idata(), x), expected_cdf, rtol=1e-6)
    table = assign_clusters(fixed_student_t_idata(), [4.0, 12.0])
    np.testing.assert_allclose(table["log_density"], np.log(student_t_pdf([4.0, 12.0])), rtol=1e-6)


def test_sample_posterior_predictive_needs_the_student_t_model_for_a_student_t_fit():
    idata = fixed_student_t_idata(draws=3, x=np.zeros(4000))
    with pytest.raises(ValueError, match="model=gmm_utils.student_t_mixture_model"):
        sample_posterior_predictive(idata)
    replicated = sample_posterior_predictive(idata, gmm_utils.student_t_mixture_model, seed=2)
    values = replicated.posterior_predictive["x"].values
    assert values.shape == (2, 3, 4000)
    # Student-t components: far more points beyond 5 scales of their component than Normal ones would give
    # (P(|t_3.5| > 5) is about 1%, P(|N| > 5) about 6e-7), and a PIT ECDF inside its band.
    pit = predictive_cdf(fixed_student_t_idata(), values[0, 0])
    assert ecdf_band(pit).inside
    assert np.mean(np.abs((values[0, 0, :, None] - LOCS) / SCALES).min(axis=1) > 5) > 0.002


def test_df_must_be_positive_and_have_the_posterior_shape():
    idata = fixed_idata(x=np.zeros(5))
    idata.posterior["df"] = (("chain", "draw"), np.full((2, 5), -1.0))
    with pytest.raises(ValueError, match="`df` must be positive"):
        predictive_cdf(idata)
