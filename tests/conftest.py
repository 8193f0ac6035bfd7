"""Shared fixtures: the repository root and the built HTML book; the session's JAX devices."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import gmm_utils

# The one place the tests set the device count, before any test starts JAX: four devices, as
# the chapters have, so every fit's default chain method is the same whatever the test order.
gmm_utils.set_host_device_count(4)

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def toc_files(source: Path = ROOT) -> list[str]:
    """The documents of ``source/_toc.yml`` in reading order (``intro``, ``chapters/01_...``)."""
    toc = yaml.safe_load((source / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return files


def jupyter_book_command(source: Path) -> list[str]:
    """The strict build command of the Makefile's `book` target, for ``source``."""
    flags = re.search(r"^JB_BUILD_FLAGS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert flags, "JB_BUILD_FLAGS not found in the Makefile"
    return [str(Path(sys.executable).with_name("jupyter-book")), "build", str(source), *flags.group(1).split()]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book once per test session (strict: -W) and return ``_build/html``.

    Set ``GMM_BOOK_HTML`` to the ``html`` folder of an existing build to skip building
    (for iterating on the page tests only).
    """
    prebuilt = os.environ.get("GMM_BOOK_HTML")
    if prebuilt:
        return Path(prebuilt)
    result = subprocess.run(
        jupyter_book_command(ROOT),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"jupyter-book build failed:\n{log}"
    return ROOT / "_build" / "html"
