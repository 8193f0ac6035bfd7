"""The book's build settings turn a raising notebook and stderr output into a failed build.

A tiny book with the real _config.yml and one bad notebook is built with the Makefile's
flags: the build must exit non-zero and name the problem, never produce pages silently.
"""

from __future__ import annotations

import shutil
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import ROOT, jupyter_book_command

BAD_CELLS = {
    "raises": ("raise ValueError('boom from a cell')", "boom from a cell"),
    "writes_stderr": ("import sys\nprint('noise on stderr', file=sys.stderr)", "stderr"),
}


def build_tiny_book(folder, name: str, source: str) -> subprocess.CompletedProcess:
    """Build a one-notebook book in ``folder`` with the real config and the Makefile's flags."""
    shutil.copy(ROOT / "_config.yml", folder / "_config.yml")
    shutil.copy(ROOT / "references.bib", folder / "references.bib")
    shutil.copytree(ROOT / "_ext", folder / "_ext")  # local Sphinx extensions named in _config.yml
    (folder / "intro.md").write_text("# A tiny book\n")
    (folder / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n  - file: {name}\n")
    notebook = new_notebook(cells=[new_markdown_cell(f"# {name}"), new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(notebook, folder / f"{name}.ipynb")
    return subprocess.run(jupyter_book_command(folder), capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", BAD_CELLS)
def test_a_bad_notebook_fails_the_build(tmp_path, name):
    source, expected_in_log = BAD_CELLS[name]
    result = build_tiny_book(tmp_path, name, source)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-3000:]
    assert expected_in_log in log and name in log


def test_a_good_notebook_builds(tmp_path):
    """The control: a clean notebook builds with the same set-up, so the failures above are real."""
    result = build_tiny_book(tmp_path, "fine", "print(1 + 1)")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
