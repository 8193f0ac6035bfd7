"""Execute every chapter from an empty cache and print how long each one took.

``make timings`` runs this script. It executes the notebooks of ``_toc.yml`` in reading order, each in a
fresh kernel, the way ``make book`` does on a newcomer's machine: no jupyter-cache (nothing is read from or
written to ``_build``), and one new, empty JAX compilation cache for the whole run, so that a chapter may
reuse what an earlier chapter compiled, exactly as in a first build. With ``--isolated`` every chapter
gets its own empty cache instead: the worst case, a learner who opens one chapter on a new machine.

Usage::

    python bench/timings.py [--isolated] [--json PATH] [--budget-chapter 40] [--budget-book 240] [chapter ...]

It exits non-zero if a chapter fails. Budgets are reported (a chapter over budget is flagged), not
enforced: wall times depend on the machine and on what else it is doing; ``uptime``'s load is printed with
the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import toc_files  # noqa: E402  (the one reader of _toc.yml)


def chapters_in_reading_order() -> list[Path]:
    """The notebooks listed in ``_toc.yml``, in reading order (read by the tests' one reader of the toc)."""
    return [ROOT / f"{name}.ipynb" for name in toc_files(ROOT) if (ROOT / f"{name}.ipynb").exists()]


def execute(path: Path, cache_dir: Path, timeout: int = 300) -> float:
    """Execute ``path`` in a fresh kernel with ``cache_dir`` as its JAX cache; return the wall seconds."""
    notebook = nbformat.read(path, as_version=4)
    os.environ["GMM_BOOK_JAX_CACHE"] = str(cache_dir)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="notebook paths (default: every chapter of _toc.yml)")
    parser.add_argument("--isolated", action="store_true", help="an empty JAX cache for every chapter")
    parser.add_argument("--json", type=Path, help="also write the times to this JSON file")
    parser.add_argument("--budget-chapter", type=float, default=40.0, help="seconds per chapter (flagged)")
    parser.add_argument("--budget-book", type=float, default=240.0, help="seconds for the whole book")
    args = parser.parse_args(argv)
    paths = [Path(p).resolve() for p in args.chapters] or chapters_in_reading_order()

    times: dict[str, float] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gmm-timings-") as scratch:
        shared = Path(scratch) / "jax"
        for index, path in enumerate(paths):
            cache = Path(scratch) / f"jax-{index}" if args.isolated else shared
            try:
                times[path.stem] = execute(path, cache)
            except Exception as error:  # report every chapter, then fail
                failed.append(path.stem)
                print(f"{path.stem}: FAILED ({type(error).__name__}: {str(error).splitlines()[0][:200]})")
                continue
            flag = "  over budget" if times[path.stem] > args.budget_chapter else ""
            print(f"{path.stem:<40} {times[path.stem]:6.1f} s{flag}", flush=True)

    total = sum(times.values())
    cache_kind = "an empty JAX cache per chapter" if args.isolated else "one empty JAX cache, chapters in order"
    print(f"{'total':<40} {total:6.1f} s  (budget {args.budget_book:.0f} s; {cache_kind})")
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}; cores: {os.cpu_count()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"seconds": times, "total": total, "isolated": args.isolated, "failed": failed}
        args.json.write_text(json.dumps(record, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
