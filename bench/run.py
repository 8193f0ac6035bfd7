"""``make bench``: time every formulation of chapters 2 and 3 with NumPyro's chain methods, beside PyMC,
and chapter 7's calibration fits, one compiled program against a loop of ``run_nuts``.

Each fit runs in a fresh Python process (``python bench/run.py --fit SPEC``), so one fit's
compilation cannot help the next, except through the persistent cache the three ``MAIN``
fits share on purpose. The measurements are :mod:`gmm_utils.speed`'s (:func:`timed_fit`,
:func:`gradient_cost`); PyMC runs ``bench/pymc_gmm.py`` in its own environment and is scored
by this environment's ArviZ. The table goes to stdout, the whole result (with the machine's
description) to ``--json``. The run fails when a timing claim of the chapters does not hold.

    python bench/run.py [--quick] [--complete] [--json PATH] [--pymc-python PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

import gmm_utils
from gmm_utils.inference import CHAIN_METHODS
from gmm_utils.speed import FORMULATIONS, MARGINAL_FORMULATIONS

PYMC_SCRIPT = Path(__file__).resolve().parent / "pymc_gmm.py"
#: The chain methods the standard plan tries per formulation (the others: parallel only).
STANDARD_CHAIN_METHODS = {"marginal": CHAIN_METHODS, "mixture_same_family": ("parallel", "vectorized")}
#: Gibbs kernels cannot run chains vectorized.
_GIBBS = ("blocked_gibbs", "discrete_gibbs")


class Role(enum.Enum):
    """What a fit of the plan is for: the book's main fit three ways, or one cell of the grid."""

    MAIN_COLD = "cold cache"
    MAIN_WARM = "warm cache"
    MAIN_YNNPACK = "YNNPACK, cold cache"
    GRID = "grid"

    @property
    def is_main(self) -> bool:
        return self is not Role.GRID


@dataclasses.dataclass(frozen=True)
class Fit:
    """One fit of the plan: what the fresh process runs."""

    role: Role
    formulation: str
    chain_method: str
    num_warmup: int
    num_samples: int
    num_chains: int = 4
    seed: int = 0
    subsample_size: int | None = None  # the first points only (DiscreteHMCGibbs: its sweep costs O(n^2 k))
    xla_reductions: bool = True

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "role": self.role.name})

    @classmethod
    def from_json(cls, text: str) -> Fit:
        spec = json.loads(text)
        return cls(**{**spec, "role": Role[spec["role"]]})

    @property
    def name(self) -> str:
        return f"MAIN ({self.role.value})" if self.role.is_main else f"{self.formulation} / {self.chain_method}"


def plan(
    *, formulations: Iterable[str] = FORMULATIONS, chain_methods: Iterable[str] = CHAIN_METHODS, complete: bool = False,
    num_warmup: int = 1000, num_samples: int = 2000, grid_warmup: int = 500, grid_samples: int = 1000,
    subsample_size: int = 200, num_chains: int = 4, seed: int = 0,
) -> list[Fit]:
    """The fits the benchmark runs.

    First the book's main fit (the marginal model, chains in parallel) at the full setting,
    twice on one fresh persistent cache (cold, then warm), then with JAX's default
    reductions (YNNPACK, see :func:`gmm_utils.use_xla_reductions`). Then the grid, on shorter
    runs: every formulation with parallel chains, the main one also vectorized and
    sequential, ``MixtureSameFamily`` also vectorized; with ``complete=True`` every
    formulation with every chain method. ``DiscreteHMCGibbs`` sees ``subsample_size`` points.
    """
    formulations, chain_methods = list(formulations), list(chain_methods)
    for name in formulations:
        if name not in FORMULATIONS:
            raise ValueError(f"unknown formulation {name!r}; choose from {FORMULATIONS}")
    for name in chain_methods:
        if name not in CHAIN_METHODS:
            raise ValueError(f"unknown chain method {name!r}; choose from {CHAIN_METHODS}")
    common = {"num_chains": num_chains, "seed": seed}
    main = {"formulation": "marginal", "chain_method": "parallel", "num_warmup": num_warmup, "num_samples": num_samples}
    fits = [Fit(Role.MAIN_COLD, **main, **common), Fit(Role.MAIN_WARM, **main, **common),
            Fit(Role.MAIN_YNNPACK, **main, **common, xla_reductions=False)]
    for formulation in formulations:
        for method in chain_methods if complete else STANDARD_CHAIN_METHODS.get(formulation, ("parallel",)):
            if method not in chain_methods or (formulation in _GIBBS and method == "vectorized"):
                continue
            if (formulation, method) == ("marginal", "parallel"):
                continue  # the main fit is this cell
            size = subsample_size if formulation == "discrete_gibbs" else None
            fits.append(Fit(Role.GRID, formulation, method, grid_warmup, grid_samples, subsample_size=size, **common))
    return fits


# --------------------------------------------------------------------------- one fit, in a fresh process


def sampler_and_potential(
    formulation: str, x: np.ndarray, labels: np.ndarray, **options: Any
) -> tuple[Any, Any, bool]:
    """What :func:`gmm_utils.speed.timed_fit` samples for ``formulation``, the model whose potential
    NUTS differentiates (for :func:`gmm_utils.speed.gradient_cost`) and whether it enumerates.

    The Gibbs kernels' NUTS block moves the parameters given the labels, so their potential
    is the latent model's with ``z`` held at ``labels`` (the cost does not depend on them).
    """
    from numpyro.contrib.funsor import config_enumerate
    from numpyro.handlers import condition

    from gmm_utils.latent import blocked_gibbs_kernel, discrete_gibbs_kernel
    from gmm_utils.speed import with_likelihood

    if formulation in MARGINAL_FORMULATIONS:
        model = with_likelihood(gmm_utils.marginal_model, formulation)
        return model, model, False
    if formulation == "enumeration":
        model = config_enumerate(gmm_utils.latent_model)
        return model, model, True
    fixed = condition(gmm_utils.latent_model, data={"z": labels})
    if formulation == "blocked_gibbs":
        return blocked_gibbs_kernel(x, **options), fixed, False
    if formulation == "discrete_gibbs":
        return discrete_gibbs_kernel(**options), fixed, False
    raise ValueError(f"`formulation` must be one of {FORMULATIONS}, got {formulation!r}")


def run_fit(fit: Fit, cache_dir: str | None = None) -> dict[str, Any]:
    """Run ``fit`` in this process (JAX not started yet): its gradient cost, then the timed fit."""
    from gmm_utils.speed import gradient_cost, timed_fit

    gmm_utils.set_host_device_count(fit.num_chains)
    if fit.xla_reductions:
        gmm_utils.use_xla_reductions()
    if cache_dir:
        gmm_utils.enable_compilation_cache(cache_dir)
    data = gmm_utils.simulate_gmm()
    x, labels = data.x[: fit.subsample_size], data.z[: fit.subsample_size]
    k = len(data.weights)
    options = {"num_chains": fit.num_chains, "num_warmup": fit.num_warmup, "num_samples": fit.num_samples,
               "seed": fit.seed, "chain_method": fit.chain_method, "init_strategy": gmm_utils.init_to_data(x, k)}
    sampler, potential, enumerated = sampler_and_potential(fit.formulation, x, labels, **options)
    model_kwargs = {"x": x, "k": k, "ordered": True}
    gradient = gradient_cost(potential, model_kwargs, chain_method=fit.chain_method, num_chains=fit.num_chains,
                             enum=enumerated)
    timed = timed_fit(sampler, model_kwargs, gradient=gradient, **options)
    return {field.name: getattr(timed, field.name) for field in dataclasses.fields(timed) if field.name != "idata"}


def _run_child(arguments: list[str], timeout: float) -> dict[str, Any]:
    """``python bench/run.py ARGUMENTS`` in a new process: the JSON of its last line of output,
    or ``{"error": ...}`` (its last line of errors)."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    environment = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}  # it sets its own
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_in_fresh_process(fit: Fit, *, cache_dir: str | None = None, timeout: float = 300.0) -> dict[str, Any]:
    """:func:`run_fit` in a new Python process: the row, or ``{"error": ...}``."""
    return _run_child(["--fit", fit.to_json(), *(["--cache-dir", cache_dir] if cache_dir else [])], timeout)


# --------------------------------------------------------------------------- SBC (chapter 7)


def run_sbc(num_datasets: int = 200, num_looped: int = 4, quick: bool = False,
            cache_dir: str | None = None) -> dict[str, Any]:
    """Chapter 7's comparison in this process (JAX not started yet): fits per second of one
    compiled NUTS program over ``num_datasets`` simulated data sets, and of a loop of
    ``run_nuts`` on the same settings (``num_looped`` fits, the first one paying compilation,
    projected to ``num_datasets``). Both start from the same empty compilation cache."""
    gmm_utils.set_host_device_count(2)
    gmm_utils.use_xla_reductions()
    if cache_dir:
        gmm_utils.enable_compilation_cache(cache_dir)
    k, num_points = 2, 100
    model_kwargs = {"k": k, "ordered": True, **gmm_utils.sbc_priors(k)}
    options = {"num_warmup": 500, "num_samples": 1000, "max_tree_depth": 5, "dense_mass": False, "seed": 7}
    if quick:
        num_datasets, num_looped, options = 8, 2, {**options, "num_warmup": 20, "num_samples": 20}
    _, data = gmm_utils.simulate_datasets(gmm_utils.marginal_model, num_datasets, num_points, model_kwargs, seed=7)
    fits = gmm_utils.fit_datasets(gmm_utils.marginal_model, data, model_kwargs, **options)
    loop_seconds = []
    for x in data[:num_looped]:
        start = time.perf_counter()
        gmm_utils.run_nuts(gmm_utils.marginal_model, {"x": x, **model_kwargs}, num_chains=1,
                           chain_method="sequential", log_likelihood=False, **options)
        loop_seconds.append(time.perf_counter() - start)
    loop_all_s = loop_seconds[0] + (num_datasets - 1) * float(np.median(loop_seconds[1:]))
    return {"num_datasets": num_datasets, "num_samples": options["num_samples"],
            "batch_compile_s": fits.compile_seconds, "batch_run_s": fits.run_seconds,
            "batch_fits_per_s": fits.fits_per_second, "loop_first_s": loop_seconds[0],
            "loop_later_s": float(np.median(loop_seconds[1:])), "loop_fits_per_s": num_datasets / loop_all_s}


def run_sbc_in_fresh_process(*, quick: bool = False, timeout: float = 600.0) -> dict[str, Any]:
    """:func:`run_sbc` in a new Python process with a new, empty compilation cache."""
    with tempfile.TemporaryDirectory(prefix="gmm-bench-sbc-cache-") as cache_dir:
        return _run_child(["--sbc", "--cache-dir", cache_dir, *(["--quick"] if quick else [])], timeout)


# --------------------------------------------------------------------------- PyMC


def run_pymc(
    python: str | os.PathLike[str], *, init: str = "auto", cores: int | None = None, num_chains: int = 4,
    num_warmup: int = 1000, num_samples: int = 2000, seed: int = 0, timeout: float = 600.0,
) -> dict[str, Any]:
    """Fit the same model with PyMC's NUTS in another Python (``bench/pymc_gmm.py``), scored by this ArviZ.

    The wall time covers ``pm.sample``; the script first runs a short fit so that
    PyTensor's compilation cache is warm. ``init`` and ``cores`` are PyMC's (``cores=None``:
    its default). Returns the row, or ``{"sampler": ..., "error": ...}``.
    """
    import arviz as az

    data = gmm_utils.simulate_gmm()
    label = f"PyMC NUTS, init={init}, " + (f"cores={cores}" if cores else "default cores")
    with tempfile.TemporaryDirectory() as folder:
        data_path, out_path = Path(folder) / "x.npy", Path(folder) / "out.npz"
        np.save(data_path, data.x)
        command = [str(python), str(PYMC_SCRIPT), str(data_path), str(out_path), "--k", str(len(data.weights)),
                   "--chains", str(num_chains), "--tune", str(num_warmup), "--draws", str(num_samples),
                   "--seed", str(seed), "--init", init, "--warm-cache"] + (["--cores", str(cores)] if cores else [])
        load_before = os.getloadavg()[0]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"sampler": label, "error": f"timed out after {timeout:.0f} s"}
        except OSError as error:  # no such Python
            return {"sampler": label, "error": f"cannot run {python}: {error}"}
        if result.returncode != 0 or not out_path.exists():
            return {"sampler": label, "error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
        draws = np.load(out_path)
        meta = json.loads(str(draws["meta"]))
        idata = az.from_dict(posterior={name: draws[name] for name in ("weights", "locs", "scales")},
                             sample_stats={"diverging": draws["diverging"]})
        mean_steps = float(np.mean(draws["n_steps"]))
    idata.posterior.attrs["sampling_time"] = meta["wall"]
    summary = gmm_utils.fit_summary(idata)
    return {
        "sampler": label, "n": int(data.x.size), "wall_s": meta["wall"], "warmup_compile_s": meta["warm_cache_s"],
        "mean_steps": mean_steps, "min_ess_bulk": summary["min_ess_bulk"], "ess_per_s": summary["ess_per_second"],
        "max_rhat": summary["max_rhat"], "divergences": summary["divergences"], "cores": meta["cores"],
        "versions": {"pymc": meta["pymc"], "pytensor": meta["pytensor"]},
        "load": (load_before + os.getloadavg()[0]) / 2, "default": init == "auto" and cores is None,
    }


# --------------------------------------------------------------------------- the whole run


def run_benchmark(
    fits: Sequence[Fit], *, pymc_python: str | os.PathLike[str] | None = None,
    pymc_variants: Sequence[dict[str, Any]] = ({"init": "auto"},), timeout: float = 300.0,
    report: Callable[[str], None] = lambda line: None, gradients: bool = True, sbc: bool = True,
    quick: bool = False,
) -> dict[str, Any]:
    """Run every fit in a fresh process (the main ones on one new shared cache), then PyMC, then
    the gradients with XLA's and YNNPACK's reductions; return ``machine``, ``rows``, ``pymc``,
    ``gradients``, ``sbc`` (chapter 7's batched fits against a loop), ``summary`` and ``claims``."""
    from gmm_utils.display import package_versions
    from gmm_utils.speed import gradient_cost_in_fresh_process

    start = time.perf_counter()
    machine = {"platform": platform.platform(terse=True), "processor": platform.processor() or platform.machine(),
               "cores": gmm_utils.usable_cores(), "load_at_start": list(os.getloadavg()),
               "versions": package_versions(("jax", "jaxlib", "numpyro", "arviz", "numpy"))}
    rows = []
    with tempfile.TemporaryDirectory(prefix="gmm-bench-cache-") as cache_dir:
        for fit in fits:
            row = {"fit": fit, **run_in_fresh_process(fit, cache_dir=cache_dir if fit.role.is_main else None,
                                                       timeout=timeout)}
            rows.append(row)
            report(progress_line(fit.name, row))
    pymc_rows = []
    if pymc_python is not None:
        sizes = {"num_chains": fits[0].num_chains, "num_warmup": fits[0].num_warmup,
                 "num_samples": fits[0].num_samples, "seed": fits[0].seed}
        for variant in pymc_variants:
            pymc_rows.append(run_pymc(pymc_python, timeout=timeout * 2, **sizes, **variant))
            report(progress_line(pymc_rows[-1]["sampler"], pymc_rows[-1]))
    costs: dict[str, Any] = {}
    for setting, names, xla in (("xla", MARGINAL_FORMULATIONS, True), ("ynnpack", ("marginal", "fused"), False)):
        if not gradients:
            break
        try:
            measured = gradient_cost_in_fresh_process(names, xla_reductions=xla, timeout=timeout)
            costs[setting] = {name: dataclasses.asdict(cost) for name, cost in measured.items()}
            timings = ", ".join(f"{name} {cost.cpu_us:.1f} CPU us" for name, cost in measured.items())
            report(f"gradients ({setting}): {timings}")
        except RuntimeError as error:
            costs[setting] = {"error": str(error)}
            report(f"gradients ({setting}): ERROR {error}")
    sbc_row = run_sbc_in_fresh_process(quick=quick, timeout=2 * timeout) if sbc else {"error": "not run"}
    if "error" in sbc_row:
        report(f"SBC fits: ERROR {sbc_row['error']}")
    else:
        report(f"SBC fits: {sbc_row['batch_fits_per_s']:.2f} per second in one compiled program, "
               f"{sbc_row['loop_fits_per_s']:.3f} in a loop of run_nuts")
    machine.update(load_at_end=list(os.getloadavg()), benchmark_seconds=time.perf_counter() - start)
    result = {"machine": machine, "rows": rows, "pymc": pymc_rows, "gradients": costs, "sbc": sbc_row,
              "summary": summary(rows, pymc_rows)}
    result["claims"] = timing_claims(result)
    return result


def progress_line(name: str, row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{name}: ERROR {row['error']}"
    return f"{name}: wall {row['wall_s']:.1f} s, ESS/s {row['ess_per_s']:.0f}, R-hat {row['max_rhat']:.3f}"


def _find(rows: Sequence[dict[str, Any]], role: Role, formulation: str = "marginal", method: str = "parallel") -> Any:
    """The row that measured ``(role, formulation, method)`` without error, or None."""
    return next((row for row in rows if "error" not in row and (row["fit"].role, row["fit"].formulation,
                 row["fit"].chain_method) == (role, formulation, method)), None)


def summary(rows: Sequence[dict[str, Any]], pymc_rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """ESS/s, efficiency and R-hat of each main fit, and its speed-up over PyMC's default sampler."""
    default = next((row for row in pymc_rows if "error" not in row and row["default"]), None)
    result: dict[str, float] = {}
    for role in (Role.MAIN_COLD, Role.MAIN_WARM, Role.MAIN_YNNPACK):
        row = _find(rows, role)
        if row is None:
            continue
        key = role.name.lower()
        result.update({f"{key}_ess_per_s": row["ess_per_s"], f"{key}_efficiency": row["efficiency"],
                       f"{key}_max_rhat": row["max_rhat"]})
        if default is not None:
            result[f"{key}_speedup_over_pymc"] = row["ess_per_s"] / default["ess_per_s"]
    if default is not None:
        result["pymc_default_ess_per_s"] = default["ess_per_s"]
    return result


def _per_step(row: dict[str, Any]) -> float:
    """Wall seconds of sampling (compilation excluded) per leapfrog step."""
    return (row["wall_s"] - row["compile_s"]) / row["gradients"]


def timing_claims(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The chapters' statements that one timing is smaller than another, checked on this run.

    Noise can swap two timings a few tens of percent apart, so the chapters assert counts
    and quote timings; the benchmark, on a quiet machine, checks their order here. Each
    claim has ``chapter``, ``claim``, ``smaller`` and ``larger`` (expected in that order),
    ``unit`` and ``holds`` (None when the run lacks a measurement it needs).
    """
    rows, gradients = result.get("rows", []), result.get("gradients", {})

    def cpu_us(setting: str, formulation: str) -> float | None:
        cost = gradients.get(setting, {}).get(formulation)
        return cost["cpu_us"] if isinstance(cost, dict) else None

    def of(row: Any, value: Callable[[dict[str, Any]], float]) -> float | None:
        return None if row is None else value(row)

    cold, warm, ynnpack = (_find(rows, role) for role in (Role.MAIN_COLD, Role.MAIN_WARM, Role.MAIN_YNNPACK))
    msf = _find(rows, Role.GRID, "mixture_same_family")
    sbc = result.get("sbc", {})
    sbc = sbc if "batch_fits_per_s" in sbc else None
    vectorized, sequential = (_find(rows, Role.GRID, "marginal", method) for method in ("vectorized", "sequential"))
    marginal_xla = cpu_us("xla", "marginal")
    candidates = [
        (7, "one compiled program fits the simulated data sets at least 10x as fast as a loop of run_nuts",
         of(sbc, lambda row: 10 / row["batch_fits_per_s"]), of(sbc, lambda row: 1 / row["loop_fits_per_s"]),
         "s per fit (10 x the batch's)"),
        (12, "MixtureSameFamily's gradient costs more than MixtureGaussian's",
         marginal_xla, cpu_us("xla", "mixture_same_family"), "CPU us"),
        (12, "XLA's own reductions make MixtureGaussian's gradient cheaper than YNNPACK's",
         marginal_xla, cpu_us("ynnpack", "marginal"), "CPU us"),
        (12, "with XLA's reductions the hand-fused gradient is not 10% cheaper than MixtureGaussian's",
         None if marginal_xla is None else 0.9 * marginal_xla, cpu_us("xla", "fused"),
         "CPU us (0.9 x MixtureGaussian's)"),
        (12, "the main fit from a warm cache takes less wall time than from a cold one",
         of(warm, lambda row: row["wall_s"]), of(cold, lambda row: row["wall_s"]), "s"),
        (12, "a warm cache removes at least half of the main fit's compilation",
         of(warm, lambda row: row["compile_s"]), of(cold, lambda row: 0.5 * row["compile_s"]),
         "s (half the cold compile)"),
        (12, "the main fit buys more ESS per second with XLA's reductions than with YNNPACK's",
         of(ynnpack, lambda row: row["ess_per_s"]), of(cold, lambda row: row["ess_per_s"]), "ESS/s"),
        (12, "inside the sampler a MixtureSameFamily leapfrog step costs less than its gradient timed alone",
         of(msf, lambda row: row["step_cpu_us"]), of(msf, lambda row: row["gradient_us"]), "CPU us"),
        (13, "parallel chains sample faster than vectorized ones (per leapfrog step)",
         of(warm, _per_step), of(vectorized, _per_step), "s per step"),
        (13, "parallel chains sample faster than sequential ones (per leapfrog step)",
         of(warm, _per_step), of(sequential, _per_step), "s per step"),
    ]
    return [
        {"chapter": chapter, "claim": claim, "smaller": smaller, "larger": larger, "unit": unit,
         "holds": None if smaller is None or larger is None else bool(smaller < larger)}
        for chapter, claim, smaller, larger, unit in candidates
    ]


COLUMNS = (  # title, width, key, format
    ("n", 6, "n", "d"), ("wall s", 7, "wall_s", ".2f"), ("compile s", 9, "compile_s", ".2f"),
    ("grad us", 8, "gradient_us", ".1f"), ("step us", 8, "step_cpu_us", ".1f"), ("steps", 6, "mean_steps", ".2f"),
    ("gradients", 9, "gradients", "d"), ("bound s", 7, "bound_s", ".2f"), ("effic.", 6, "efficiency", ".2f"),
    ("min ESS", 8, "min_ess_bulk", ".0f"), ("ESS/s", 7, "ess_per_s", ".0f"), ("R-hat", 6, "max_rhat", ".3f"),
    ("div", 4, "divergences", ""),
)


def format_table(result: dict[str, Any]) -> str:
    """The benchmark's result as the plain-text table ``make bench`` prints."""

    def line(name: str, row: dict[str, Any]) -> str:
        if "error" in row:
            return f"{name:<36} ERROR: {row['error']}"
        cells = (f"{'':>{width}}" if row.get(key) is None else f"{row[key]:>{width}{spec}}"
                 for _, width, key, spec in COLUMNS)
        return f"{name:<36} " + " ".join(cells)

    header = f"{'fit':<36} " + " ".join(f"{title:>{width}}" for title, width, _, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    lines += [line(row["fit"].name, row) for row in result["rows"]]
    lines += [line(row["sampler"], row) for row in result["pymc"]]
    machine = result["machine"]
    lines += ["", f"{machine['cores']} cores, load average {machine['load_at_start'][0]:.2f} at start, "
              f"{machine['load_at_end'][0]:.2f} at end; {machine['benchmark_seconds']:.0f} s in all."]
    lines += [f"{key}: {value:.3g}" for key, value in result["summary"].items()]
    sbc = result.get("sbc", {})
    if "batch_fits_per_s" in sbc:
        lines += [f"SBC (chapter 7), {sbc['num_datasets']} data sets, {sbc['num_samples']} draws each: "
                  f"{sbc['batch_fits_per_s']:.2f} fits/s in one compiled program "
                  f"(compile {sbc['batch_compile_s']:.1f} s, run {sbc['batch_run_s']:.1f} s), "
                  f"{sbc['loop_fits_per_s']:.3f} fits/s in a loop of run_nuts "
                  f"(first {sbc['loop_first_s']:.1f} s, then {sbc['loop_later_s']:.2f} s each)"]
    elif sbc:
        lines += [f"SBC (chapter 7): ERROR {sbc['error']}"]
    if result.get("claims"):
        lines += ["", "Timing claims of the chapters (the smaller value first):"]
        for claim in result["claims"]:
            verdict = {True: "holds", False: "FAILS", None: "not run"}[claim["holds"]]
            values = ""
            if claim["holds"] is not None:
                values = f" ({claim['smaller']:.4g} < {claim['larger']:.4g} {claim['unit']})"
            lines.append(f"  [{verdict}] chapter {claim['chapter']}: {claim['claim']}{values}")
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> str:
    """``result`` as JSON: each row's fit as its fields, the role by name."""

    def encode(value: Any) -> Any:
        if isinstance(value, Fit):
            return {**dataclasses.asdict(value), "role": value.role.name}
        return float(value)

    return json.dumps(result, indent=2, default=encode)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--pymc-python", help="a Python with PyMC installed (e.g. .venv-bench/bin/python)")
    parser.add_argument("--pymc-full", action="store_true", help="also time PyMC with cores=2 and adapt_full")
    parser.add_argument("--formulations", default=",".join(FORMULATIONS))
    parser.add_argument("--chain-methods", default=",".join(CHAIN_METHODS))
    parser.add_argument("--complete", action="store_true", help="every formulation with every chain method")
    parser.add_argument("--quick", action="store_true", help="tiny runs, to check that everything works")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per fit")
    parser.add_argument("--fit", help=argparse.SUPPRESS)  # internal: run one fit, print its row as JSON
    parser.add_argument("--sbc", action="store_true", help=argparse.SUPPRESS)  # internal: chapter 7's comparison
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fit:
        print(json.dumps(run_fit(Fit.from_json(args.fit), args.cache_dir), default=float))
        return 0
    if args.sbc:
        print(json.dumps(run_sbc(quick=args.quick, cache_dir=args.cache_dir), default=float))
        return 0
    sizes = {"num_warmup": 1000, "num_samples": 2000, "grid_warmup": 500, "grid_samples": 1000}
    if args.quick:
        sizes = {"num_warmup": 50, "num_samples": 50, "grid_warmup": 20, "grid_samples": 20}
    fits = plan(formulations=[name for name in args.formulations.split(",") if name],
                chain_methods=[name for name in args.chain_methods.split(",") if name], complete=args.complete, **sizes)
    variants = [{"init": "auto"}]
    if args.pymc_full and not args.quick:
        variants += [{"init": "auto", "cores": 2}, {"init": "jitter+adapt_full"}]
    result = run_benchmark(fits, pymc_python=args.pymc_python, pymc_variants=variants, timeout=args.timeout,
                           report=lambda line: print(line, file=sys.stderr, flush=True), quick=args.quick)
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json(result))
    failed = [claim for claim in result["claims"] if claim["holds"] is False]
    if failed and not args.quick:  # --quick's tiny runs time nothing worth comparing
        print(f"{len(failed)} timing claim(s) of the chapters failed on this run; on a busy machine (see the load "
              "average above) run `make bench` again when it is quiet.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
