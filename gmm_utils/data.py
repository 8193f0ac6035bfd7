"""Simulated and real data, and the mixture density, in plain NumPy (no JAX).

The book's running example is the set-up of the seed notebook: ``n = 2500`` points from
a three-component mixture with weights ``(0.2, 0.3, 0.5)``, means ``(-1, 1, 4)`` and
standard deviations ``(0.2, 0.9, 0.5)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from ._validation import finite_vector, mixture_parameters, positive_int, positive_number

#: The seed notebook's mixture: weights, means and standard deviations.
DEFAULT_WEIGHTS = (0.2, 0.3, 0.5)
DEFAULT_LOCS = (-1.0, 1.0, 4.0)
DEFAULT_SCALES = (0.2, 0.9, 0.5)
DEFAULT_N = 2500
DEFAULT_SEED = 42


@dataclass(frozen=True)
class GMMData:
    """A data set simulated from a Gaussian mixture, with the truth that made it.

    ``x`` (shape ``(n,)``) are the observations, ``z`` their true components in
    ``0, ..., k - 1``; ``weights``, ``locs`` and ``scales`` (``(k,)``) the true parameters;
    ``seed`` the seed given to :func:`numpy.random.default_rng`. The arrays are read-only,
    so the truth cannot be changed by accident.
    """

    x: np.ndarray
    z: np.ndarray
    weights: np.ndarray
    locs: np.ndarray
    scales: np.ndarray
    seed: int | None

    @property
    def n(self) -> int:
        """Number of observations."""
        return int(self.x.shape[0])

    @property
    def k(self) -> int:
        """Number of mixture components."""
        return int(self.weights.shape[0])

    def __repr__(self) -> str:
        return (
            f"GMMData(n={self.n}, k={self.k}, weights={self.weights.tolist()}, "
            f"locs={self.locs.tolist()}, scales={self.scales.tolist()}, seed={self.seed})"
        )


def simulate_gmm(
    n: int = DEFAULT_N,
    weights: Any = DEFAULT_WEIGHTS,
    locs: Any = DEFAULT_LOCS,
    scales: Any = DEFAULT_SCALES,
    seed: int | None = DEFAULT_SEED,
) -> GMMData:
    """Simulate ``n`` points from a one-dimensional Gaussian mixture.

    Each point first draws its component ``z_i ~ Categorical(weights)`` and then its
    value ``x_i ~ Normal(locs[z_i], scales[z_i])``.

    Parameters
    ----------
    n : int
        Number of points, a positive integer.
    weights : sequence of float, shape (k,)
        Mixture weights: non-negative, summing to one (within 1e-6).
    locs : sequence of float, shape (k,)
        Component means.
    scales : sequence of float, shape (k,)
        Component standard deviations, positive.
    seed : int or None
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same data.

    Returns
    -------
    GMMData
        ``x`` and ``z`` of shape ``(n,)`` and the true parameters.

    Raises ``ValueError`` naming the argument that is invalid (``TypeError`` for ``seed``).

    Examples
    --------
    >>> data = simulate_gmm(n=1000, seed=1)
    >>> data.x.shape, data.z.shape, data.k
    ((1000,), (1000,), 3)
    """
    n = positive_int("n", n)
    weights, locs, scales = mixture_parameters(weights, locs, scales)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"`seed` must be an integer or None, got {seed!r}")
    rng = np.random.default_rng(seed)
    z = rng.choice(weights.size, size=n, p=weights / weights.sum())
    x = rng.normal(locs[z], scales[z])
    for array in (x, z, weights, locs, scales):
        array.flags.writeable = False
    return GMMData(x=x, z=z, weights=weights, locs=locs, scales=scales, seed=seed)


def mixture_pdf(
    x: Any, weights: Any, locs: Any, scales: Any, *, components: bool = False
) -> np.ndarray:
    r"""Density of a one-dimensional Gaussian mixture, :math:`f(x) = \sum_j w_j \mathcal{N}(x \mid \mu_j, \sigma_j)`.

    The NumPy twin of :func:`gmm_utils.component_log_densities` (exponentiated), for
    plotting and simulated truth without JAX. ``x`` has shape ``(m,)``, the parameters
    ``(k,)`` (checked as in :func:`simulate_gmm`); the result has shape ``(m,)``, or with
    ``components=True`` the weighted component densities, ``(m, k)``.

    Examples
    --------
    >>> import numpy as np
    >>> float(mixture_pdf(np.array([0.0]), [1.0], [0.0], [1.0])[0])  # 1 / sqrt(2 pi)
    0.3989422804014327
    """
    x = finite_vector("x", np.atleast_1d(x), allow_empty=True)
    weights, locs, scales = mixture_parameters(weights, locs, scales)
    standardized = (x[:, None] - locs) / scales
    weighted = weights * np.exp(-0.5 * standardized**2) / (np.sqrt(2 * np.pi) * scales)
    return weighted if components else weighted.sum(axis=1)


def mixture_moments(weights: Any, locs: Any, scales: Any) -> tuple[float, float]:
    r"""Mean and variance of a one-dimensional Gaussian mixture.

    .. math::
        \mathbb{E}[x] = \sum_j w_j \mu_j, \qquad
        \operatorname{Var}[x] = \sum_j w_j (\sigma_j^2 + \mu_j^2) - \mathbb{E}[x]^2

    Examples
    --------
    >>> mixture_moments([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])
    (0.0, 2.0)
    """
    weights, locs, scales = mixture_parameters(weights, locs, scales)
    mean = float(np.sum(weights * locs))
    variance = float(np.sum(weights * (scales**2 + locs**2)) - mean**2)
    return mean, variance


#: The velocities' file inside the package, with its source in ``datasets/README.md``.
GALAXIES_FILE = "galaxies.csv"


def galaxy_velocities(unit_km_s: float = 1000.0) -> np.ndarray:
    """Velocities of 82 galaxies in the Corona Borealis region, in units of ``unit_km_s`` km/s.

    The classic data set of Bayesian mixture modelling: Postman, Huchra and Geller (1986), as
    analysed by Roeder (1990) and Richardson and Green (1997), and shipped with R's MASS package
    as ``galaxies``. The values are MASS's, in its order, unchanged: its documentation notes
    that the 78th, 26,690 km/s, should be 26,960 km/s, and that an 83rd measurement was
    dropped. The default unit, 1,000 km/s, puts the data between about 9 and 35.

    Returns a read-only array of shape ``(82,)``; a ``unit_km_s`` that is not a positive number raises.

    Examples
    --------
    >>> x = galaxy_velocities()
    >>> x.shape, float(x.min()), float(x.max())
    ((82,), 9.172, 34.279)
    """
    unit_km_s = positive_number("unit_km_s", unit_km_s)
    _, rows = _read_csv(GALAXIES_FILE)
    velocities = np.array(rows, dtype=float)[:, 0] / unit_km_s
    velocities.flags.writeable = False
    return velocities


def _read_csv(name: str) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of one of the book's data files, as strings."""
    with resources.files(__package__).joinpath(f"datasets/{name}").open() as file:
        lines = [line.rstrip("\n").split(",") for line in file if line.strip()]
    return lines[0], lines[1:]


def old_faithful() -> np.ndarray:
    """The Old Faithful geyser's 272 eruptions: duration and waiting time to the next, in minutes.

    Härdle (1991), as R's ``datasets::faithful``. Returns a read-only array of shape ``(272, 2)``,
    columns ``eruptions_min`` and ``waiting_min``.

    Examples
    --------
    >>> x = old_faithful()
    >>> x.shape, float(x[:, 0].min()), float(x[:, 1].max())
    ((272, 2), 1.6, 96.0)
    """
    _, rows = _read_csv("faithful.csv")
    eruptions = np.array(rows, dtype=float)
    eruptions.flags.writeable = False
    return eruptions


@dataclass(frozen=True)
class Penguins:
    """The Palmer penguins with all four body measurements and sex recorded (333 of 344).

    ``measurements`` (shape ``(n, 4)``) in the order of ``columns``: bill length and depth (mm),
    flipper length (mm), body mass (g); ``species`` and ``sex`` (shape ``(n,)``) are strings,
    the truth a mixture is scored against, never one of its inputs.
    """

    measurements: np.ndarray
    columns: tuple[str, ...]
    species: np.ndarray
    sex: np.ndarray


PENGUIN_MEASUREMENTS = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def palmer_penguins() -> Penguins:
    """The Palmer Archipelago penguins (Gorman, Williams and Fraser 2014), complete rows only.

    The file is the ``palmerpenguins`` package's (344 penguins); the 11 rows with a missing
    measurement or sex are left out, so every array has 333 rows, all read-only.

    Examples
    --------
    >>> penguins = palmer_penguins()
    >>> penguins.measurements.shape, np.unique(penguins.species).tolist()
    ((333, 4), ['Adelie', 'Chinstrap', 'Gentoo'])
    """
    header, rows = _read_csv("penguins.csv")
    complete = [row for row in rows if "NA" not in row]
    columns = [header.index(name) for name in PENGUIN_MEASUREMENTS]
    measurements = np.array([[row[i] for i in columns] for row in complete], dtype=float)
    species = np.array([row[header.index("species")] for row in complete])
    sex = np.array([row[header.index("sex")] for row in complete])
    for array in (measurements, species, sex):
        array.flags.writeable = False
    return Penguins(measurements=measurements, columns=PENGUIN_MEASUREMENTS, species=species, sex=sex)
