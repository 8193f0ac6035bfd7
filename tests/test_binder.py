"""Binder builds the book's own pinned environment: the same pins, Python and gmm_utils."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT
from gmm_utils.check import MIN_PYTHON, parse_requirements

BINDER = ROOT / "binder"


def resolved_lines(path: Path) -> list[str]:
    """The lines of a requirements file with its ``-r`` includes expanded, as pip reads them
    (an include is relative to the file that names it)."""
    lines = []
    for line in path.read_text().splitlines():
        include = re.match(r"^\s*-r\s+(\S+)", line)
        if include:
            lines += resolved_lines((path.parent / include.group(1)).resolve())
        else:
            lines.append(line)
    return lines


def test_binder_installs_exactly_the_pinned_environment():
    binder = "\n".join(resolved_lines(BINDER / "requirements.txt"))
    top = (ROOT / "requirements.txt").read_text()
    assert parse_requirements(binder) == parse_requirements(top)
    assert parse_requirements(binder), "no pins found"


def test_binder_installs_gmm_utils_from_the_repository():
    # repo2docker runs pip from the repository root, where `-e .` is the book's package.
    lines = [line.strip() for line in resolved_lines(BINDER / "requirements.txt")]
    assert "-e ." in lines
    assert (ROOT / "pyproject.toml").exists()


def test_binder_python_is_the_supported_one():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert match, f"runtime.txt must read like python-3.11, got {runtime!r}"
    assert tuple(map(int, match.groups())) >= MIN_PYTHON
    requires = re.search(r'requires-python\s*=\s*">=\s*(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert requires and tuple(map(int, requires.groups())) == MIN_PYTHON
