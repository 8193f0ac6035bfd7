"""Shared helpers for the book *Gaussian Mixture Models with NumPyro*.

Every chapter imports this one package instead of copying helpers between notebooks.

Importing ``gmm_utils`` is cheap and safe: it imports NumPy only, never JAX, so a
chapter can call :func:`set_host_device_count` *after* ``import gmm_utils`` and still
*before* JAX starts. The modules that need JAX, NumPyro, ArviZ or Matplotlib are
loaded the first time one of their names is used (``gmm_utils.run_nuts``, ...).

Modules
-------
data           simulate mixtures, mixture densities and moments (NumPy only)
devices        how JAX's CPU backend starts: host devices for parallel chains, XLA's reductions
plots          one figure style for the book, data and density plots
display        show the real source of a helper in a chapter, print versions
distributions  ``MixtureGaussian`` and ``OrderStatistics`` (NumPyro distributions)
models         ``marginal_model``, ``latent_model`` and ``student_t_mixture_model``
inference      ``run_nuts``: NUTS with the book's defaults, returning ArviZ data; ``fit_summary``
latent         the latent formulation fitted three ways (DiscreteHMCGibbs, HMCGibbs, enumeration)
labels         labels after marginalizing: membership probabilities, sampled labels, accuracy
diagnostics    ``check_convergence``: the convergence checks as one pass/fail table
benchmark      fast fits and scaling up: timed fits, gradient cost, compilation cache, ``make bench``
predictive     posterior predictive checks (replicated data, PIT, p-values) and ``assign_clusters``
check          ``python -m gmm_utils.check``: check a learner's machine before a workshop
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from .data import GMMData, mixture_moments, mixture_pdf, simulate_gmm
from .devices import set_host_device_count, usable_cores, use_xla_reductions

# ArviZ 0.23 prints a "major refactor" FutureWarning once per calendar day, on its first
# import that day; it would appear on whichever chapter happens to run first. It says
# nothing about this book's code, so we silence exactly that message and nothing else.
warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
# NumPyro imports tqdm.auto, which warns in Jupyter when ipywidgets is missing. The book
# never shows progress bars (run_nuts has progress_bar=False), so the warning is moot.
warnings.filterwarnings("ignore", message=r"IProgress not found")

# name -> module that defines it; loaded on first access (PEP 562).
_LAZY_EXPORTS: dict[str, str] = {
    # plots
    "set_style": "plots",
    "COMPONENT_COLORS": "plots",
    "DATA_COLOR": "plots",
    "TRUTH_COLOR": "plots",
    "plot_data_density": "plots",
    "plot_points_by_component": "plots",
    # display
    "show_source": "display",
    "print_versions": "display",
    "glue": "display",
    # distributions
    "MixtureGaussian": "distributions",
    "OrderStatistics": "distributions",
    # models
    "marginal_model": "models",
    "latent_model": "models",
    "student_t_mixture_model": "models",
    # inference
    "run_nuts": "inference",
    "nuts_kernel": "inference",
    "to_inference_data": "inference",
    "mixture_log_likelihood": "inference",
    "run_mcmc": "inference",
    "fit_summary": "inference",
    "init_to_data": "inference",
    "compile_then_run": "inference",
    "compare_fits": "inference",
    "speedup": "inference",
    # latent (chapter 2: the latent formulation, three samplers)
    "run_discrete_gibbs": "latent",
    "run_blocked_gibbs": "latent",
    "run_enumerated": "latent",
    "label_conditional_gibbs_fn": "latent",
    "time_label_sweep": "latent",
    "discrete_gibbs_kernel": "latent",
    "blocked_gibbs_kernel": "latent",
    "project_discrete_gibbs": "latent",
    "COMPARISON_PROTOCOL": "latent",
    # labels (chapter 3: labels after marginalizing)
    "membership_probabilities": "labels",
    "sample_labels": "labels",
    "match_labels": "labels",
    "confusion_matrix": "labels",
    "label_accuracy": "labels",
    # diagnostics
    "check_convergence": "diagnostics",
    "plot_pair_by_chain": "diagnostics",
    # predictive (chapters 5 and 6: posterior predictive checks, new points)
    "sample_posterior_predictive": "predictive",
    "predictive_density_band": "predictive",
    "plot_density_band": "predictive",
    "predictive_cdf": "predictive",
    "ecdf_band": "predictive",
    "plot_ecdf_band": "predictive",
    "posterior_predictive_pvalues": "predictive",
    "tail_share": "predictive",
    "membership_draws": "predictive",
    "assign_clusters": "predictive",
    "elpd_by_chain": "predictive",
    # benchmark (chapters 7 and 8: fast fits, scaling up)
    "enable_compilation_cache": "benchmark",
    "CompileTimer": "benchmark",
    "fused_mixture_log_prob": "benchmark",
    "FusedMixtureGaussian": "benchmark",
    "with_likelihood": "benchmark",
    "subsampled_marginal_model": "benchmark",
    "gradient_cost": "benchmark",
    "gradient_scaling": "benchmark",
    "timed_fit": "benchmark",
}

__all__ = [
    "GMMData",
    "mixture_moments",
    "mixture_pdf",
    "simulate_gmm",
    "set_host_device_count",
    "use_xla_reductions",
    "usable_cores",
    *_LAZY_EXPORTS,
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'gmm_utils' has no attribute {name!r}")
    module = importlib.import_module(f".{module_name}", __name__)
    value = getattr(module, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static type checkers and IDEs see the real names
    from .benchmark import (
        CompileTimer,
        FusedMixtureGaussian,
        enable_compilation_cache,
        fused_mixture_log_prob,
        gradient_cost,
        gradient_scaling,
        subsampled_marginal_model,
        timed_fit,
        with_likelihood,
    )
    from .display import glue, print_versions, show_source
    from .diagnostics import check_convergence, plot_pair_by_chain
    from .distributions import MixtureGaussian, OrderStatistics
    from .inference import (
        compare_fits,
        compile_then_run,
        fit_summary,
        init_to_data,
        mixture_log_likelihood,
        nuts_kernel,
        run_mcmc,
        run_nuts,
        speedup,
        to_inference_data,
    )
    from .labels import confusion_matrix, label_accuracy, match_labels, membership_probabilities, sample_labels
    from .latent import (
        COMPARISON_PROTOCOL,
        blocked_gibbs_kernel,
        discrete_gibbs_kernel,
        label_conditional_gibbs_fn,
        project_discrete_gibbs,
        run_blocked_gibbs,
        run_discrete_gibbs,
        run_enumerated,
        time_label_sweep,
    )
    from .models import latent_model, marginal_model, student_t_mixture_model
    from .predictive import (
        assign_clusters,
        ecdf_band,
        elpd_by_chain,
        membership_draws,
        plot_density_band,
        plot_ecdf_band,
        posterior_predictive_pvalues,
        predictive_cdf,
        predictive_density_band,
        sample_posterior_predictive,
        tail_share,
    )
    from .plots import COMPONENT_COLORS, DATA_COLOR, TRUTH_COLOR, plot_data_density, plot_points_by_component, set_style
