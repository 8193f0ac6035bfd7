"""One figure style for the whole book, and the plots of data and mixture densities."""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .data import GMMData, mixture_pdf

#: One colour per component (seaborn's colour-blind-safe palette), used by every figure.
COMPONENT_COLORS: list[tuple[float, float, float]] = sns.color_palette("colorblind", 10)
#: Colours for things that are not components.
DATA_COLOR = "0.75"  # light grey histograms
TRUTH_COLOR = "0.1"  # near-black true densities


def set_style(dpi: int = 100) -> None:
    """Set the book's figure style: call once, in a chapter's first code cell.

    Seaborn's ``ticks`` theme with the colour-blind palette, no top/right spines,
    readable font sizes, figures at ``dpi`` (PNG, the inline default; SVG would bloat
    notebooks), and ArviZ's credible intervals at 90%.
    """
    sns.set_theme(context="notebook", style="ticks", palette="colorblind")
    mpl.rcParams.update({
        "figure.figsize": (7.0, 3.5), "figure.dpi": dpi, "savefig.dpi": dpi, "figure.constrained_layout.use": True,
        "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": "medium", "axes.titleweight": "bold",
        "legend.frameon": False, "image.cmap": "viridis",
    })
    import arviz as az

    az.rcParams["stats.ci_prob"] = 0.90
    az.rcParams["plot.max_subplots"] = 60


def plot_data_density(
    data: GMMData,
    ax: plt.Axes | None = None,
    *,
    bins: int = 80,
    components: bool = True,
    kde: bool = False,
) -> plt.Axes:
    """Histogram of ``data.x`` (as a density) with the true mixture density.

    Parameters
    ----------
    data : GMMData
        From :func:`gmm_utils.simulate_gmm`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    bins : int
        Histogram bins.
    components : bool
        Also draw each weighted component ``w_j N(x | mu_j, sigma_j)``, filled.
    kde : bool
        Also draw a kernel density estimate of the data (what the seed notebook showed).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots()
    grid = np.linspace(data.x.min() - 0.5, data.x.max() + 0.5, 400)
    ax.hist(data.x, bins=bins, density=True, color=DATA_COLOR, label=f"data (n = {data.n})")
    if components:
        weighted = mixture_pdf(grid, data.weights, data.locs, data.scales, components=True)
        for j in range(data.k):
            ax.fill_between(
                grid, weighted[:, j], color=COMPONENT_COLORS[j], alpha=0.35, lw=0,
                label=rf"$w_{j + 1}\,\mathcal{{N}}(\mu_{j + 1}, \sigma_{j + 1})$",
            )
    if kde:
        sns.kdeplot(x=np.asarray(data.x), ax=ax, color=COMPONENT_COLORS[7], lw=1.5, ls="--", label="KDE of the data")
    ax.plot(grid, mixture_pdf(grid, data.weights, data.locs, data.scales), color=TRUTH_COLOR, lw=1.8,
            label="true mixture density")
    ax.set(xlabel="x", ylabel="density")
    ax.legend(loc="upper center", fontsize="small")
    return ax


def plot_points_by_component(
    data: GMMData, ax: plt.Axes | None = None, *, seed: int = 0, max_points: int = 2500
) -> plt.Axes:
    """Each point at its value ``x``, coloured by its true component ``z`` (jittered rows).

    Parameters
    ----------
    data, ax
        As for :func:`plot_data_density`.
    seed : int
        Seed of the vertical jitter.
    max_points : int
        Draw at most this many points (the first ones).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 2.4))
    rng = np.random.default_rng(seed)
    x, z = np.asarray(data.x)[:max_points], np.asarray(data.z)[:max_points]
    for j in range(data.k):
        mine = z == j
        jitter = rng.uniform(-0.3, 0.3, mine.sum())
        ax.scatter(x[mine], j + jitter, s=4, alpha=0.5, color=COMPONENT_COLORS[j], label=f"component {j + 1}")
    ax.set_yticks(range(data.k), [f"z = {j + 1}" for j in range(data.k)])
    ax.set(xlabel="x", ylim=(-0.6, data.k - 0.4))
    ax.invert_yaxis()
    return ax
