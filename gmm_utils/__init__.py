"""Shared helpers for the book *Gaussian Mixture Models with NumPyro*.

Every chapter imports this one package instead of copying helpers between notebooks.

Importing ``gmm_utils`` is cheap and safe: it imports NumPy only, never JAX, so a
chapter can call :func:`set_host_device_count` *after* ``import gmm_utils`` and still
*before* JAX starts. The modules that need JAX, NumPyro, ArviZ or Matplotlib are
loaded the first time one of their names is used (``gmm_utils.run_nuts``, ...).

Modules
-------
data           simulate mixtures, the real data sets (galaxies, Old Faithful, penguins), 1-D densities (NumPy only)
devices        how JAX's CPU backend starts: host devices, XLA's reductions, the compilation cache
plots          one figure style for the book, data and density plots
display        show the real source of a helper in a chapter, print versions
distributions  the one mixture density (``component_log_densities``), ``MixtureGaussian``, ``OrderStatistics``
multivariate   ``MultivariateMixtureGaussian`` and ``multivariate_mixture_model``: mixtures of vectors
models         ``marginal_model``, ``latent_model``, ``student_t_mixture_model``, ``stick_breaking_model``
inference      ``SamplerOptions`` and ``run_nuts``: NUTS with the book's defaults, returning ArviZ data
latent         the latent formulation fitted three ways (DiscreteHMCGibbs, HMCGibbs, enumeration)
labels         the posterior's parameters, memberships, sampled labels, accuracy, co-clustering, relabelling
diagnostics    ``check_convergence``: the convergence checks as one pass/fail table
speed          fast fits and scaling up: compile timing, gradient cost, timed fits (``make bench`` uses them)
predictive     posterior predictive checks (replicated data, PIT, p-values) and ``assign_clusters``
calibration    simulation-based calibration: many fits in one compiled program, ranks, uniformity
check          ``python -m gmm_utils.check``: check a learner's machine before a workshop
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from .data import GMMData, mixture_moments, mixture_pdf, simulate_gmm
from .devices import set_host_device_count, usable_cores, use_xla_reductions

# ArviZ 0.23 prints a "major refactor" FutureWarning once per calendar day, on its first
# import that day; it would appear on whichever chapter happens to run first. It says
# nothing about this book's code, so we silence exactly that message and nothing else.
warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
# NumPyro imports tqdm.auto, which warns in Jupyter when ipywidgets is missing. The book
# never shows progress bars (run_nuts has progress_bar=False), so the warning is moot.
warnings.filterwarnings("ignore", message=r"IProgress not found")

# The public names, written once: module -> the names it exports. ``data`` and ``devices``
# are imported above (NumPy only); the others are loaded on first access (PEP 562).
EXPORTS: dict[str, tuple[str, ...]] = {
    "data": (
        "GMMData", "mixture_moments", "mixture_pdf", "simulate_gmm", "galaxy_velocities", "old_faithful",
        "palmer_penguins", "Penguins",
    ),
    "devices": ("set_host_device_count", "usable_cores", "use_xla_reductions", "enable_compilation_cache"),
    "plots": (
        "set_style", "COMPONENT_COLORS", "DATA_COLOR", "TRUTH_COLOR", "plot_data_density", "plot_points_by_component",
    ),
    "display": ("show_source", "print_versions", "glue"),
    "distributions": (
        "component_log_densities", "mixture_log_likelihood", "mixture_cdf", "MixtureGaussian", "OrderStatistics",
    ),
    "multivariate": (
        "multivariate_component_log_densities", "MultivariateMixtureGaussian", "multivariate_mixture_model",
        "correlation_entries",
    ),
    "models": ("marginal_model", "latent_model", "student_t_mixture_model", "stick_breaking_model", "stick_breaking_weights"),
    "inference": (
        "SamplerOptions", "run_nuts", "nuts_kernel", "to_inference_data", "run_mcmc", "fit_summary",
        "init_to_data", "init_near", "compile_then_run", "compare_fits", "speedup",
    ),
    "latent": (
        "run_discrete_gibbs", "run_blocked_gibbs", "run_enumerated", "label_conditional_gibbs_fn", "time_label_sweep",
        "discrete_gibbs_kernel", "blocked_gibbs_kernel", "project_discrete_gibbs", "COMPARISON_PROTOCOL",
    ),
    "labels": (
        "posterior_parameters", "membership_probabilities", "sample_labels", "match_labels", "confusion_matrix",
        "label_accuracy", "co_clustering", "relabel_draws",
    ),
    "diagnostics": ("check_convergence", "plot_pair_by_chain"),
    "predictive": (
        "sample_posterior_predictive", "predictive_density_band", "plot_density_band", "predictive_cdf", "ecdf_band",
        "plot_ecdf_band", "posterior_predictive_pvalues", "tail_share", "assign_clusters", "elpd_by_chain",
    ),
    "speed": (
        "CompileTimer", "fused_mixture_log_prob", "with_likelihood", "subsampled_marginal_model", "gradient_cost",
        "gradient_scaling", "gradient_cost_in_fresh_process", "timed_fit",
    ),
    "calibration": (
        "sbc_priors", "simulate_datasets", "fit_datasets", "BatchFits", "sbc_ranks", "SBCRanks", "uniformity_table",
        "plot_rank_histograms", "plot_rank_ecdfs",
    ),
}
_MODULE_OF = {name: module for module, names in EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module_name = _MODULE_OF.get(name)
    if module_name is None:
        raise AttributeError(f"module 'gmm_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
