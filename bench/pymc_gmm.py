"""Fit the book's ordered marginal Gaussian mixture with PyMC's NUTS, for the side-by-side benchmark.

PyMC is not a dependency of the book: ``make bench`` installs it into its own virtual
environment (``.venv-bench``, pinned by ``bench/requirements-pymc.txt``) and
``python bench/run.py --pymc-python .venv-bench/bin/python`` runs this script
there. It reads the data from an ``.npy`` file and writes the draws, the sampler
statistics and the timings to an ``.npz`` file; the book's ArviZ then computes ESS and
R-hat from those draws, so both samplers are scored by the same code.

    python bench/pymc_gmm.py x.npy out.npz [--init jitter+adapt_full] [--cores 2] [--warm-cache]

The model is the book's ``marginal_model(x, k, ordered=True)``: flat Dirichlet weights,
Normal(0, 10) means with an ordered transform (Stan's ``ordered[K]``), HalfCauchy(10)
standard deviations, and the marginal mixture likelihood (PyMC's ``NormalMixture``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import numpy as np


def build_model(x: np.ndarray, k: int):  # noqa: ANN201 - returns a pm.Model
    import pymc as pm

    with pm.Model() as model:
        weights = pm.Dirichlet("weights", a=np.ones(k))
        locs = pm.Normal(
            "locs",
            0.0,
            10.0,
            shape=k,
            transform=pm.distributions.transforms.ordered,
            initval=np.linspace(
                np.min(x), np.max(x), k
            ),  # increasing, as the ordered transform needs
        )
        scales = pm.HalfCauchy("scales", 10.0, shape=k)
        pm.NormalMixture("x", w=weights, mu=locs, sigma=scales, observed=x)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", help=".npy file with the observations x, shape (n,)")
    parser.add_argument("out", help=".npz file to write")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init",
        default="auto",
        help="PyMC's init: auto (jitter+adapt_diag) or jitter+adapt_full",
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=None,
        help="PyMC's cores; default: PyMC's own choice",
    )
    parser.add_argument(
        "--warm-cache",
        action="store_true",
        help="first run a short fit, so that PyTensor's compilation cache is warm",
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    import pymc as pm
    import pytensor

    logging.getLogger("pymc").setLevel(logging.ERROR)
    x = np.load(args.data)
    options = {
        "init": args.init,
        "progressbar": False,
        "compute_convergence_checks": False,
    }
    if args.cores is not None:
        options["cores"] = args.cores

    warm_cache_s = 0.0
    if args.warm_cache:
        start = time.perf_counter()
        with build_model(x, args.k):
            pm.sample(
                draws=5,
                tune=5,
                chains=1,
                random_seed=args.seed + 1,
                **{**options, "cores": 1},
            )
        warm_cache_s = time.perf_counter() - start

    start = time.perf_counter()
    with build_model(x, args.k):
        idata = pm.sample(
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_seed=args.seed,
            **options,
        )
    wall = time.perf_counter() - start

    from pymc.sampling.mcmc import _cpu_count

    cores = min(
        args.cores if args.cores is not None else min(4, _cpu_count()), args.chains
    )
    posterior, stats = idata.posterior, idata.sample_stats
    np.savez(
        args.out,
        weights=posterior["weights"].values,
        locs=posterior["locs"].values,
        scales=posterior["scales"].values,
        n_steps=stats["n_steps"].values,
        diverging=stats["diverging"].values,
        meta=json.dumps(
            {
                "wall": wall,
                "warm_cache_s": warm_cache_s,
                "init": args.init,
                "cores": cores,
                "pymc": pm.__version__,
                "pytensor": pytensor.__version__,
            }
        ),
    )


if __name__ == "__main__":
    main()
