"""Tests of gmm_utils.latent: the three runners of the latent formulation, their kernels, the label sweep
timer, the projection of DiscreteHMCGibbs, and the one protocol by which chapters 2 and 3 compare them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import gmm_utils
from gmm_utils import init_to_data, label_conditional_gibbs_fn, run_blocked_gibbs, run_discrete_gibbs, run_enumerated
from numpyro.infer import NUTS, DiscreteHMCGibbs, HMCGibbs

DATA = gmm_utils.simulate_gmm(n=60, seed=7)
TRUTH = {"weights": jnp.asarray(DATA.weights), "locs": jnp.asarray(DATA.locs), "scales": jnp.asarray(DATA.scales)}
QUICK = {"num_chains": 2, "num_warmup": 150, "num_samples": 100, "seed": 3}
MODEL = {"x": DATA.x, "k": 3, "ordered": True}


def test_label_conditional_draws_from_the_responsibilities():
    gibbs_fn = label_conditional_gibbs_fn(DATA.x)
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    current = {"z": jnp.zeros(DATA.n, dtype=jnp.int32)}
    draws = np.asarray(jax.vmap(lambda key: gibbs_fn(key, current, TRUTH)["z"])(keys))  # (2000, n)
    assert draws.shape == (2000, DATA.n) and draws.dtype == np.int32
    log_terms = np.log(DATA.weights) + stats.norm.logpdf(DATA.x[:, None], DATA.locs, DATA.scales)
    responsibilities = np.exp(log_terms - logsumexp(log_terms, axis=1, keepdims=True))
    frequencies = np.stack([(draws == j).mean(axis=0) for j in range(DATA.k)], axis=1)
    standard_error = np.sqrt(responsibilities * (1 - responsibilities) / 2000)
    assert np.all(np.abs(frequencies - responsibilities) <= 5 * standard_error + 1e-3)


def test_label_conditional_bad_data():
    with pytest.raises(ValueError, match="`x` must be finite"):
        label_conditional_gibbs_fn([0.0, np.nan])


def check_like_run_nuts(idata, n_points, num_chains=2, num_draws=100):
    assert set(idata.groups()) >= {"posterior", "sample_stats", "observed_data", "log_likelihood"}
    assert idata.posterior["locs"].shape == (num_chains, num_draws, 3)
    assert idata.log_likelihood["x"].shape == (num_chains, num_draws, n_points)
    for stat in ("diverging", "energy", "n_steps", "tree_depth", "acceptance_rate", "step_size", "lp"):
        assert stat in idata.sample_stats, stat
    assert idata.posterior.attrs["sampling_time"] > 0
    # The stored log-likelihood is the pointwise *marginal* one, whatever was sampled.
    post = idata.posterior
    w, m, s = (post[name].values.astype(float) for name in ("weights", "locs", "scales"))
    x = idata.observed_data["x"].values
    expected = logsumexp(np.log(w)[..., None, :] + stats.norm.logpdf(x[:, None], m[..., None, :], s[..., None, :]), axis=-1)
    np.testing.assert_allclose(idata.log_likelihood["x"].values, expected, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def fits():
    start = init_to_data(DATA.x, 3)
    return {
        "blocked": run_blocked_gibbs(MODEL, init_strategy=start, keep_labels=True, **QUICK),
        "discrete": run_discrete_gibbs(MODEL, init_strategy=start, **QUICK),
        "enumerated": run_enumerated(MODEL, init_strategy=start, **QUICK),
    }


@pytest.mark.parametrize("name", ["blocked", "discrete", "enumerated"])
def test_runners_return_the_same_form_as_run_nuts(fits, name):
    check_like_run_nuts(fits[name], DATA.n)
    # One default chain method for every runner: a device per chain (tests/conftest.py sets four).
    assert fits[name].posterior.attrs["chain_method"] == gmm_utils.inference.choose_chain_method(2) == "parallel"
    assert fits[name].posterior.attrs["sampler"] == {"blocked": "HMCGibbs", "discrete": "DiscreteHMCGibbs", "enumerated": "NUTS"}[name]


def test_labels_are_kept_only_on_request(fits):
    assert "z" not in fits["discrete"].posterior and "z" not in fits["enumerated"].posterior
    z = fits["blocked"].posterior["z"]
    assert z.dims == ("chain", "draw", "point") and z.shape == (2, 100, DATA.n)
    assert int(z.min()) >= 0 and int(z.max()) <= 2


@pytest.mark.parametrize("name", ["blocked", "discrete", "enumerated"])
def test_runners_find_the_components(fits, name):
    # Loose: 60 points, few draws. A wrong conditional or a broken kernel misses by far more.
    means = fits[name].posterior["locs"].mean(("chain", "draw")).values
    np.testing.assert_allclose(means, DATA.locs, atol=0.6)
    assert gmm_utils.fit_summary(fits[name])["max_rhat"] < 1.2


def test_gibbs_runners_validate_settings():
    with pytest.raises(ValueError, match="`target_accept_prob` must lie in"):
        run_blocked_gibbs(MODEL, target_accept_prob=0.0)
    with pytest.raises(ValueError, match="`num_chains` must be a positive integer"):
        run_discrete_gibbs(MODEL, num_chains=0)
    with pytest.raises(TypeError, match="'ordered'"):  # model arguments go in the mapping
        run_enumerated({"x": DATA.x}, ordered=True)
    with pytest.raises(ValueError, match="`model_kwargs` must be a mapping with the observations `x`"):
        run_blocked_gibbs({"k": 3})


def test_time_label_sweep_grows_with_n():
    # 30 times the points: a sweep costs O(n^2), hundreds of times more; a bound of "more"
    # leaves a margin no busy machine can eat (CPU seconds do not count waiting).
    small = gmm_utils.time_label_sweep(DATA.x[:20], DATA.weights, DATA.locs, DATA.scales, repeats=2, clock="cpu")
    large = gmm_utils.time_label_sweep(np.tile(DATA.x, 10), DATA.weights, DATA.locs, DATA.scales, repeats=2,
                                       clock="cpu")
    assert 0 < small < large
    assert gmm_utils.time_label_sweep(DATA.x, DATA.weights, DATA.locs, DATA.scales, repeats=1) > 0
    with pytest.raises(ValueError, match="`repeats` must be a positive integer"):
        gmm_utils.time_label_sweep(DATA.x, DATA.weights, DATA.locs, DATA.scales, repeats=0)
    with pytest.raises(ValueError, match="`clock` must be 'wall' or 'cpu'"):
        gmm_utils.time_label_sweep(DATA.x, DATA.weights, DATA.locs, DATA.scales, clock="gpu")


def test_kernels_are_numpyros_own_around_the_books_nuts():
    discrete = gmm_utils.discrete_gibbs_kernel(modified=True, dense_mass=False)
    blocked = gmm_utils.blocked_gibbs_kernel(DATA.x, target_accept_prob=0.9)
    assert isinstance(discrete, DiscreteHMCGibbs) and isinstance(blocked, HMCGibbs)
    assert isinstance(discrete.inner_kernel, NUTS) and isinstance(blocked.inner_kernel, NUTS)
    with pytest.raises(TypeError, match="num_chain"):
        gmm_utils.blocked_gibbs_kernel(DATA.x, num_chain=2)


def test_the_kernel_options_reach_the_nuts_block():
    # Behaviour, not attributes: NUTS adapts its step size to the target acceptance rate.
    rates = [
        float(run_blocked_gibbs(MODEL, target_accept_prob=target, init_strategy=init_to_data(DATA.x, 3), **QUICK)
              .sample_stats["acceptance_rate"].mean())
        for target in (0.6, 0.97)
    ]
    assert rates[0] < rates[1]


def summary(run_time, ess=400.0):
    return {"wall_time": run_time + 5.0, "compile_time": 5.0, "run_time": run_time, "min_ess_bulk": ess,
            "min_ess_tail": ess, "ess_per_second": ess / (run_time + 5.0), "ess_per_run_second": ess / run_time,
            "max_rhat": 1.02, "divergences": 0}


def test_project_discrete_gibbs_adds_the_sweeps_to_the_sampling_time():
    blocked = summary(run_time=2.0)
    projected = gmm_utils.project_discrete_gibbs(blocked, 0.1, num_chains=4, num_warmup=500, num_samples=1000,
                                                 seed=42, cores=2)
    sweeps = 0.1 * 1500 * 4 / 2  # seconds per sweep x iterations x chains / cores
    assert projected["sweep_time"] == pytest.approx(sweeps)
    assert projected["run_time"] == pytest.approx(2.0 + sweeps)
    assert projected["ess_per_run_second"] == pytest.approx(400.0 / (2.0 + sweeps))
    # Same chain as blocked Gibbs: same ESS and R-hat; times it never measured are NaN.
    assert projected["min_ess_bulk"] == 400.0 and projected["max_rhat"] == 1.02
    assert np.isnan(projected["compile_time"]) and np.isnan(projected["wall_time"])
    assert gmm_utils.speedup(blocked, projected) == pytest.approx((2.0 + sweeps) / 2.0)
    with pytest.raises(ValueError, match="`sweep_seconds` must be a positive number"):
        gmm_utils.project_discrete_gibbs(blocked, 0.0, num_chains=4, num_warmup=1, num_samples=1)


CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def chapter_code(pattern):
    (path,) = CHAPTERS.glob(pattern)
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


def test_chapters_2_and_3_compare_under_one_protocol_with_one_function():
    # The ratio both chapters report (enumeration over blocked Gibbs, effective draws per
    # second of sampling after compilation) must come from the same protocol and the same
    # function in both, so that only the noise of timing can make them differ.
    protocol = gmm_utils.COMPARISON_PROTOCOL
    assert set(protocol) == {"num_chains", "num_warmup", "num_samples", "seed"} and protocol["num_chains"] > 1
    for pattern in ("02_*.ipynb", "03_*.ipynb"):
        code = chapter_code(pattern)
        assert re.search(r"SAMPLING = dict\(gmm_utils\.COMPARISON_PROTOCOL\)", code), pattern
        assert "gmm_utils.speedup(enumerated, blocked)" in code, pattern
        assert "gmm_utils.compare_fits(" in code and "gmm_utils.project_discrete_gibbs(" in code, pattern
        assert re.search(r"RANDOM_SEED = (\d+)", code).group(1) == str(protocol["seed"]), pattern
        # The comparison's fits run with the protocol itself, never a variant of it.
        for runner in ("run_blocked_gibbs", "run_enumerated"):
            call = re.search(runner + r"\(\s*\{\"x\": data\.x,[^)]*\)", code).group(0)
            assert "**SAMPLING" in call, (pattern, call)
