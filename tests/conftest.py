"""Shared fixtures: the repository root and the built HTML book."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


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
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--warningiserror", "--nitpick", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"jupyter-book build failed:\n{log}"
    return ROOT / "_build" / "html"
