"""Tests for gmm_utils.calibration: exact posteriors pass, wrong ones fail, NUTS over many data sets
matches a conjugate posterior, priors are arguments of one program, and bad input is refused."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import gmm_utils

NUM_DATASETS = 400


def normal_mean_model(x=None, *, n=None, prior_scale=1.0):
    """mu ~ N(0, prior_scale), x_i ~ N(mu, 1): the posterior of mu is normal, known exactly."""
    mu = numpyro.sample("mu", dist.Normal(0.0, prior_scale))
    with numpyro.plate("data", n if x is None else x.shape[0]):
        numpyro.sample("x", dist.Normal(mu, 1.0), obs=x)


def exact_posterior(x, prior_scale=1.0):
    precision = 1.0 / prior_scale**2 + x.shape[-1]
    return x.sum(axis=-1) / precision, np.sqrt(1.0 / precision)


def exact_draws(sd_factor=1.0, shift=0.0, num_draws=990, seed=0):
    """Truth and posterior draws of 400 data sets of 5 points; sd_factor, shift: a wrong posterior."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=NUM_DATASETS)
    x = mu[:, None] + rng.normal(size=(NUM_DATASETS, 5))
    mean, sd = exact_posterior(x)
    draws = mean[:, None] + shift * sd + sd_factor * sd * rng.normal(size=(NUM_DATASETS, num_draws))
    return {"mu": mu}, {"mu": draws}


def test_the_exact_posterior_is_calibrated():
    truth, draws = exact_draws()
    ranks = gmm_utils.sbc_ranks(truth, draws, num_draws=99)
    assert ranks.ranks["mu"].shape == (NUM_DATASETS,) and ranks.num_draws == 99
    table = gmm_utils.uniformity_table(ranks)
    assert bool(table.loc["mu", "ecdf_inside"]) and table.loc["mu", "chi2_pvalue"] > 1e-3
    assert abs(table.loc["mu", "mean_rank_fraction"] - 0.5) < 0.05


@pytest.mark.parametrize("sd_factor, shift", [(0.5, 0.0), (2.0, 0.0), (1.0, 1.0)])
def test_a_wrong_posterior_fails(sd_factor, shift):
    table = gmm_utils.uniformity_table(gmm_utils.sbc_ranks(*exact_draws(sd_factor, shift)))
    assert not table.loc["mu", "ecdf_inside"] and table.loc["mu", "chi2_pvalue"] < 1e-6
    if shift:  # draws too high: the truth ranks low
        assert table.loc["mu", "mean_rank_fraction"] < 0.3


def test_columns_name_every_component_and_the_plots_draw_one_panel_each():
    rng = np.random.default_rng(1)
    truth = {"locs": rng.normal(size=(50, 2)), "df": rng.normal(size=50)}
    draws = {name: value[:, None] + rng.normal(size=(50, 200, *value.shape[1:])) for name, value in truth.items()}
    ranks = gmm_utils.sbc_ranks(truth, draws, num_draws=99)
    assert list(ranks.columns()) == ["locs[0]", "locs[1]", "df"]
    assert list(gmm_utils.uniformity_table(ranks).index) == ["locs[0]", "locs[1]", "df"]
    for plot in (gmm_utils.plot_rank_histograms, gmm_utils.plot_rank_ecdfs):
        fig = plot(ranks)
        assert sum(ax.get_visible() for ax in fig.axes) == 3


@pytest.fixture(scope="module")
def conjugate_fits():
    truth, data = gmm_utils.simulate_datasets(normal_mean_model, 8, 20, seed=3)
    fits = gmm_utils.fit_datasets(normal_mean_model, data, {"prior_scale": 1.0}, num_warmup=300, num_samples=1000)
    return truth, data, fits


def test_fit_datasets_matches_the_exact_posterior_of_every_data_set(conjugate_fits):
    truth, data, fits = conjugate_fits
    assert truth["mu"].shape == (8,) and data.shape == (8, 20)
    assert fits.draws["mu"].shape == (8, 1000) and fits.num_datasets == 8
    assert (fits.num_divergent == 0).all() and (fits.at_max_depth == 0).all()
    mean, sd = exact_posterior(data)
    # Monte Carlo error of a mean of 1,000 NUTS draws (ESS at least ~200): well under sd / 3.
    assert np.all(np.abs(fits.draws["mu"].mean(axis=1) - mean) < sd / 3)
    assert np.all(np.abs(fits.draws["mu"].std(axis=1) / sd - 1) < 0.2)


def test_prior_parameters_are_arguments_of_one_compiled_program(conjugate_fits):
    _, data, fits = conjugate_fits
    narrow = gmm_utils.fit_datasets(normal_mean_model, data, {"prior_scale": 0.01}, num_warmup=300, num_samples=1000)
    assert narrow.compile_seconds < 0.05 * fits.compile_seconds  # a lookup, not a compilation
    assert np.abs(narrow.draws["mu"]).mean() < 0.05  # the new prior was used
    assert fits.fits_per_second > 0


def test_fit_datasets_runs_the_book_mixture_model():
    kwargs = {"k": 2, "ordered": True, "scale_prior": dist.LogNormal(0.0, 0.3)}
    truth, data = gmm_utils.simulate_datasets(gmm_utils.marginal_model, 4, 30, kwargs)
    fits = gmm_utils.fit_datasets(gmm_utils.marginal_model, data, kwargs, num_warmup=50, num_samples=20)
    assert fits.draws["locs"].shape == (4, 20, 2)
    assert np.all(np.diff(fits.draws["locs"], axis=-1) > 0)  # the ordered prior holds in every draw


def test_bad_input_is_refused_with_the_argument_named():
    data = np.zeros((4, 10))
    with pytest.raises(TypeError, match="`model`"):
        gmm_utils.fit_datasets("model", data)
    with pytest.raises(ValueError, match="`data`"):
        gmm_utils.fit_datasets(normal_mean_model, np.zeros(10))
    with pytest.raises(ValueError, match="`data`"):
        gmm_utils.fit_datasets(normal_mean_model, np.full((4, 10), np.nan))
    with pytest.raises(TypeError, match="num_chain"):
        gmm_utils.fit_datasets(normal_mean_model, data, num_chain=2)
    with pytest.raises(ValueError, match="`k`"):
        gmm_utils.sbc_priors(0)
    with pytest.raises(ValueError, match="`num_datasets`"):
        gmm_utils.simulate_datasets(normal_mean_model, 0, 10)
    truth, draws = exact_draws(num_draws=50)
    with pytest.raises(ValueError, match="`num_draws`"):
        gmm_utils.sbc_ranks(truth, draws, num_draws=99)
    with pytest.raises(ValueError, match="`draws` has no 'mu'"):
        gmm_utils.sbc_ranks(truth, {"sigma": draws["mu"]})
    with pytest.raises(ValueError, match=r"`draws\['mu'\]` must have shape"):
        gmm_utils.sbc_ranks(truth, {"mu": draws["mu"][:10]})
    with pytest.raises(ValueError, match="finite"):
        gmm_utils.sbc_ranks({"mu": np.full(NUM_DATASETS, np.nan)}, draws, num_draws=10)
    with pytest.raises(ValueError, match="`truth`"):
        gmm_utils.sbc_ranks({}, draws)
    with pytest.raises(ValueError, match="`num_bins`"):
        gmm_utils.uniformity_table(gmm_utils.sbc_ranks(*exact_draws()), num_bins=7)


def test_the_sbc_priors_simulate_mixtures_with_visible_components():
    truth, data = gmm_utils.simulate_datasets(
        gmm_utils.marginal_model, 400, 100, {"k": 3, "ordered": True, **gmm_utils.sbc_priors(3)}, seed=1
    )
    assert truth["weights"].shape == (400, 3) and np.all(np.diff(truth["locs"], axis=1) > 0)
    assert np.mean(truth["weights"].min(axis=1) < 0.05) < 0.05  # rarely a component of a handful of points
    assert np.quantile(truth["scales"], [0.01, 0.99]).tolist() == pytest.approx([0.5, 2.0], abs=0.15)
    assert np.all(np.isfinite(data)) and np.quantile(np.ptp(data, axis=1), 0.99) < 40


def test_per_dataset_arguments_give_each_row_its_own_prior_one_after_another(conjugate_fits):
    """Rows with a wide and a narrow prior, run one after another (vectorize=False): each row's
    posterior is its own prior's exact one, in one compiled program."""
    _, data, _ = conjugate_fits
    prior_scale = np.array([1.0, 0.01] * 4, dtype=np.float32)
    fits = gmm_utils.fit_datasets(normal_mean_model, data, per_dataset={"prior_scale": prior_scale},
                                  vectorize=False, num_warmup=300, num_samples=1000)
    mean, sd = exact_posterior(data, prior_scale)
    assert np.all(np.abs(fits.draws["mu"].mean(axis=1) - mean) < sd / 3)
    assert np.all(np.abs(fits.draws["mu"].std(axis=1) / sd - 1) < 0.2)
    assert fits.stats["n_steps"].shape == (8, 1000) and fits.max_tree_depth == 10


def test_rows_of_batch_fits_read_as_the_chains_of_one_fit():
    kwargs = {"k": 2, "ordered": True, "scale_prior": dist.LogNormal(0.0, 0.3)}
    _, data = gmm_utils.simulate_datasets(gmm_utils.marginal_model, 1, 40, kwargs, seed=5)
    fits = gmm_utils.fit_datasets(gmm_utils.marginal_model, np.tile(data, (4, 1)), kwargs, num_warmup=200,
                                  num_samples=300, seed=1)
    idata = fits.as_chains(np.arange(4), x=data[0])
    assert idata.posterior.sizes["chain"] == 4 and idata.log_likelihood["x"].shape == (4, 300, 40)
    table = gmm_utils.check_convergence(idata)  # every check, the sampler's included, runs
    assert set(table.index) == set(gmm_utils.diagnostics.CHECKS)
    assert int(table.loc["divergences", "value"]) == int(fits.num_divergent.sum())
    expected = gmm_utils.mixture_log_likelihood(data[0], idata.posterior["weights"].to_numpy(),
                                                idata.posterior["locs"].to_numpy(), idata.posterior["scales"].to_numpy())
    np.testing.assert_allclose(idata.log_likelihood["x"].to_numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`rows`"):
        fits.as_chains(0)


def test_bad_per_dataset_arguments_are_refused(conjugate_fits):
    _, data, _ = conjugate_fits
    with pytest.raises(ValueError, match="per_dataset"):
        gmm_utils.fit_datasets(normal_mean_model, data, per_dataset={"prior_scale": np.ones(3)})
    with pytest.raises(TypeError, match="`vectorize`"):
        gmm_utils.fit_datasets(normal_mean_model, data, vectorize="no")


def two_mode_model(x=None, *, n=None):
    """x_i ~ N(|mu|, 0.1): given data near 5, mu has two modes, -5 and 5, with no mass between them."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    with numpyro.plate("data", n if x is None else x.shape[0]):
        numpyro.sample("x", dist.Normal(jnp.abs(mu), 0.1), obs=x)


def test_starts_give_each_row_its_own_start_in_one_compiled_program():
    data = np.full((4, 20), 5.0, dtype=np.float32)
    starts = np.array([-5.0, 5.0, 5.0, -5.0], dtype=np.float32)
    fits = gmm_utils.fit_datasets(two_mode_model, data, starts={"mu": starts}, vectorize=False,
                                  num_warmup=100, num_samples=100)
    np.testing.assert_array_equal(np.sign(fits.draws["mu"].mean(axis=1)), np.sign(starts))  # each stays in its mode
    flipped = gmm_utils.fit_datasets(two_mode_model, data, starts={"mu": -starts}, vectorize=False,
                                     num_warmup=100, num_samples=100)
    np.testing.assert_array_equal(np.sign(flipped.draws["mu"].mean(axis=1)), -np.sign(starts))
    assert flipped.compile_seconds < 0.05 * fits.compile_seconds  # the starts are arguments: no new program
    with pytest.raises(ValueError, match=r"starts\['mu'\]"):
        gmm_utils.fit_datasets(two_mode_model, data, starts={"mu": starts[:3]})
