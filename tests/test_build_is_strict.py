"""The book's build settings turn a raising notebook and stderr output into a failed build.

A tiny book with the real _config.yml and two bad notebooks is built with the Makefile's
flags: the build must exit non-zero and name both problems, never produce pages silently.
"""

from __future__ import annotations

import shutil
import subprocess

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import ROOT, jupyter_book_command


def write_notebook(path, source):
    notebook = new_notebook(cells=[new_markdown_cell(f"# {path.stem}"), new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(notebook, path)


def test_a_raising_cell_or_stderr_output_fails_the_build(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copy(ROOT / "references.bib", tmp_path / "references.bib")
    (tmp_path / "intro.md").write_text("# A tiny book\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: raises\n  - file: writes_stderr\n"
    )
    write_notebook(tmp_path / "raises.ipynb", "raise ValueError('boom from a cell')")
    write_notebook(tmp_path / "writes_stderr.ipynb", "import sys\nprint('noise on stderr', file=sys.stderr)")

    result = subprocess.run(jupyter_book_command(tmp_path), capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-3000:]
    assert "boom from a cell" in log or "raises.ipynb" in log
    assert "writes_stderr" in log
