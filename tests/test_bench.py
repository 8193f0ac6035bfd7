"""Tests of ``make bench``'s orchestration, ``bench/run.py``: the plan, a fit in a fresh process, the table, the claims.

The full benchmark takes many minutes and is not part of the suite; its pieces run here on
tiny settings or on made-up measurements.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from conftest import ROOT
from gmm_utils.inference import CHAIN_METHODS
from gmm_utils.speed import FORMULATIONS

_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
bench = sys.modules["bench_run"] = importlib.util.module_from_spec(_spec)  # dataclasses look the module up
_spec.loader.exec_module(bench)
Fit, Role = bench.Fit, bench.Role


def test_the_complete_plan_covers_every_formulation_and_chain_method():
    fits = bench.plan(complete=True)
    assert [fit.role for fit in fits[:3]] == [Role.MAIN_COLD, Role.MAIN_WARM, Role.MAIN_YNNPACK]
    assert (fits[0].num_warmup, fits[0].num_samples, fits[0].num_chains) == (1000, 2000, 4)
    pairs = {(fit.formulation, fit.chain_method) for fit in fits}
    for formulation in FORMULATIONS:
        for method in CHAIN_METHODS:
            gibbs_vectorized = formulation in ("blocked_gibbs", "discrete_gibbs") and method == "vectorized"
            assert ((formulation, method) in pairs) != gibbs_vectorized, (formulation, method)
    assert all(fit.subsample_size == (200 if fit.formulation == "discrete_gibbs" else None) for fit in fits)
    with pytest.raises(ValueError, match="unknown formulation"):
        bench.plan(formulations=["hmm"])


def test_the_standard_plan_runs_the_main_fit_three_ways_and_every_formulation():
    fits = bench.plan()
    assert fits[2].xla_reductions is False and all(fit.xla_reductions for fit in fits if fit.role is not Role.MAIN_YNNPACK)
    pairs = [(fit.formulation, fit.chain_method) for fit in fits]
    assert len(pairs) == len(set(pairs[2:])) + 2  # the main fit three times, nothing else repeated
    assert {formulation for formulation, _ in pairs} == set(FORMULATIONS)
    assert {method for formulation, method in pairs if formulation == "marginal"} == set(CHAIN_METHODS)
    assert ("mixture_same_family", "vectorized") in pairs
    assert all(fit.num_warmup == 500 for fit in fits if fit.role is Role.GRID)
    assert [fit.role.is_main for fit in fits].count(True) == 3


def test_a_fit_survives_its_trip_to_the_fresh_process():
    fit = bench.plan()[-1]
    assert Fit.from_json(fit.to_json()) == fit
    assert bench.Fit(Role.MAIN_WARM, "marginal", "parallel", 10, 10).name == "MAIN (warm cache)"
    assert fit.name == f"{fit.formulation} / {fit.chain_method}"


def test_one_fit_runs_in_a_fresh_process():
    # A Gibbs kernel (its NUTS block's statistics are read), on the first 100 points and their labels.
    fit = Fit(Role.GRID, "discrete_gibbs", "parallel", num_warmup=30, num_samples=20, num_chains=2, subsample_size=100)
    row = bench.run_in_fresh_process(fit, timeout=240)
    assert "error" not in row, row.get("error")
    assert row["n"] == 100 and row["chain_method"] == "parallel" and row["gradients"] > 0  # n read from the data
    assert row["wall_s"] > row["compile_s"] > 0 and row["gradient_us"] > 0
    assert row["efficiency"] == pytest.approx(row["bound_s"] / row["wall_s"])


def test_a_failing_fit_reports_the_child_s_error_instead_of_raising():
    row = bench.run_in_fresh_process(Fit(Role.GRID, "nope", "parallel", 5, 5, num_chains=1), timeout=120)
    assert "`formulation` must be one of" in row["error"]


def made_up_row(role, formulation="marginal", method="parallel", **values):
    base = {"n": 2500, "wall_s": 10.0, "compile_s": 4.0, "gradients": 100_000, "ess_per_s": 1000.0, "step_cpu_us": 30.0,
            "gradient_us": 25.0, "efficiency": 0.5, "max_rhat": 1.001, "mean_steps": 6.5, "bound_s": 5.0,
            "min_ess_bulk": 10_000.0, "divergences": 0}
    return {"fit": Fit(role, formulation, method, 10, 10), **base, **values}


def made_up_result(*, warm_wall: float) -> dict:
    """A benchmark result with every row and gradient the timing claims read."""

    def cost(cpu_us):
        return {"cpu_us": cpu_us, "wall_us": cpu_us}

    rows = [
        made_up_row(Role.MAIN_COLD, wall_s=12.0, compile_s=6.0, ess_per_s=900.0),
        made_up_row(Role.MAIN_WARM, wall_s=warm_wall, compile_s=1.0),
        made_up_row(Role.MAIN_YNNPACK, wall_s=20.0, ess_per_s=400.0),
        made_up_row(Role.GRID, "mixture_same_family", step_cpu_us=40.0, gradient_us=55.0),
        made_up_row(Role.GRID, "marginal", "vectorized", wall_s=16.0),
        made_up_row(Role.GRID, "marginal", "sequential", wall_s=18.0),
        {"fit": Fit(Role.GRID, "enumeration", "parallel", 10, 10), "error": "x"},
    ]
    gradients = {"xla": {"marginal": cost(20.0), "mixture_same_family": cost(55.0), "fused": cost(22.0)},
                 "ynnpack": {"marginal": cost(70.0), "fused": cost(35.0)}}
    pymc = [{"sampler": "PyMC NUTS, init=auto, default cores", "n": 2500, "wall_s": 60.0, "mean_steps": 11.0,
             "min_ess_bulk": 6000.0, "ess_per_s": 100.0, "max_rhat": 1.002, "divergences": 0, "default": True}]
    machine = {"cores": 2, "load_at_start": [0.1], "load_at_end": [0.2], "benchmark_seconds": 70.0}
    sbc = {"num_datasets": 200, "num_samples": 1000, "batch_compile_s": 15.0, "batch_run_s": 10.0,
           "batch_fits_per_s": 8.0, "loop_first_s": 16.0, "loop_later_s": 4.0, "loop_fits_per_s": 0.25}
    result = {"rows": rows, "gradients": gradients, "pymc": pymc, "machine": machine, "sbc": sbc,
              "summary": bench.summary(rows, pymc)}
    result["claims"] = bench.timing_claims(result)
    return result


def test_the_table_and_the_summary():
    result = made_up_result(warm_wall=5.0)
    assert result["summary"]["main_cold_speedup_over_pymc"] == pytest.approx(9.0)
    assert result["summary"]["main_warm_ess_per_s"] == 1000.0 and result["summary"]["pymc_default_ess_per_s"] == 100.0
    table = bench.format_table(result)
    assert "MAIN (cold cache)" in table and "MAIN (YNNPACK, cold cache)" in table and "PyMC NUTS" in table
    assert "enumeration / parallel" in table and "ERROR: x" in table
    assert "main_cold_speedup_over_pymc: 9" in table and "[holds] chapter 12" in table
    assert "8.00 fits/s in one compiled program" in table and "0.250 fits/s in a loop of run_nuts" in table
    result["claims"][1]["holds"] = None  # a claim the run could not check
    assert "[not run] chapter 12: MixtureSameFamily's" in bench.format_table(result)
    written = json.loads(bench.to_json(result))
    assert written["rows"][0]["fit"]["role"] == "MAIN_COLD" and written["rows"][0]["n"] == 2500


def test_timing_claims_hold_on_a_benchmark_that_supports_them():
    claims = made_up_result(warm_wall=5.0)["claims"]
    assert len(claims) == 10 and all(claim["holds"] is True for claim in claims), claims
    assert {claim["chapter"] for claim in claims} == {7, 12, 13}


def test_timing_claims_report_a_failed_and_a_missing_measurement():
    result = made_up_result(warm_wall=13.0)  # the warm run slower than the cold one
    result["gradients"]["ynnpack"] = {"error": "timed out"}
    claims = {claim["claim"]: claim for claim in bench.timing_claims(result)}
    assert claims["the main fit from a warm cache takes less wall time than from a cold one"]["holds"] is False
    assert claims["XLA's own reductions make MixtureGaussian's gradient cheaper than YNNPACK's"]["holds"] is None
    assert all(claim["holds"] is None for claim in bench.timing_claims({"rows": []}))


def test_make_bench_fails_when_a_timing_claim_fails(monkeypatch, capsys):
    failing, holding = made_up_result(warm_wall=13.0), made_up_result(warm_wall=5.0)
    monkeypatch.setattr(bench, "run_benchmark", lambda fits, **options: failing)
    assert bench.main(["--formulations", "marginal"]) == 1
    output = capsys.readouterr()
    assert "[FAILS] chapter 12: the main fit from a warm cache" in output.out
    assert "timing claim(s) of the chapters failed" in output.err
    assert bench.main(["--formulations", "marginal", "--quick"]) == 0  # tiny runs: reported only
    monkeypatch.setattr(bench, "run_benchmark", lambda fits, **options: holding)
    assert bench.main(["--formulations", "marginal"]) == 0


def test_the_command_line_rejects_unknown_formulations():
    with pytest.raises(ValueError, match="unknown formulation"):
        bench.main(["--formulations", "marginal,nope", "--quick"])


def test_run_pymc_reports_a_missing_python_as_an_error(tmp_path):
    row = bench.run_pymc(tmp_path / "no-such-python", num_warmup=5, num_samples=5)
    assert "cannot run" in row["error"] and row["sampler"] == "PyMC NUTS, init=auto, default cores"


def test_the_package_does_not_reach_into_bench():
    for path in (ROOT / "gmm_utils").glob("*.py"):  # a non-editable install (Colab) has no bench/
        text = path.read_text()
        assert "pymc_gmm" not in text and '"bench"' not in text, path


def test_the_sbc_comparison_runs_in_a_fresh_process():
    row = bench.run_sbc_in_fresh_process(quick=True, timeout=300)
    assert "error" not in row, row
    assert row["num_datasets"] == 8 and row["batch_fits_per_s"] > 0 and row["loop_fits_per_s"] > 0
    assert row["loop_first_s"] > row["loop_later_s"] > 0  # the loop's first fit pays its compilation


def test_a_too_slow_batch_fails_the_sbc_claim():
    result = made_up_result(warm_wall=5.0)
    result["sbc"]["batch_fits_per_s"] = 2.0  # only 8x the loop's 0.25
    claims = {claim["chapter"]: claim for claim in bench.timing_claims(result) if claim["chapter"] == 7}
    assert claims[7]["holds"] is False
