"""The chapters follow the book's conventions and are committed with outputs stripped.

Executing them is nbval's job (`pytest` collects chapters/*.ipynb with --nbval-lax).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import CHAPTERS, ROOT, toc_files

NOTEBOOK_IDS = [path.name for path in CHAPTERS]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def markdown(notebook: dict) -> str:
    return "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")


def code_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks in chapters/"


@pytest.mark.parametrize("path", CHAPTERS, ids=NOTEBOOK_IDS)
def test_outputs_are_stripped(path):
    for index, cell in enumerate(code_cells(load(path))):
        assert cell["outputs"] == [], f"{path.name}: code cell {index} has outputs; strip them before committing"
        assert cell["execution_count"] is None, f"{path.name}: code cell {index} has an execution count"


def test_every_notebook_is_in_the_toc_and_every_toc_file_exists():
    listed = toc_files()
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in listed, f"{path.name} is not in _toc.yml"
    for entry in listed:
        assert any((ROOT / f"{entry}{suffix}").exists() for suffix in (".ipynb", ".md")), f"{entry} missing"


def test_chapter_files_sort_in_reading_order():
    for path in CHAPTERS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name


def book_code_cells(notebook: dict) -> list[dict]:
    """The code cells after the Colab setup cell."""
    return code_cells(notebook)[1:]


@pytest.mark.parametrize("path", CHAPTERS, ids=NOTEBOOK_IDS)
def test_colab_setup_cell_comes_first_installs_from_the_one_repository_url_and_is_hidden(path):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    setup = code_cells(load(path))[0]
    source = "".join(setup["source"])
    assert setup["metadata"].get("tags") == ["remove-cell"], f"{path.name}: tag the Colab setup cell remove-cell"
    assert 'if "google.colab" in sys.modules:' in source, f"{path.name}: the first code cell is the Colab setup cell"
    assert f'"gmm_utils @ git+{url}"' in source, f"{path.name}: the Colab cell must install from {url}"
    assert "jax" not in source.lower().replace("gmm_utils", ""), f"{path.name}: the setup cell must not touch JAX"


@pytest.mark.parametrize("path", CHAPTERS, ids=NOTEBOOK_IDS)
def test_first_code_cell_sets_devices_before_anything_imports_jax(path):
    first = "".join(book_code_cells(load(path))[0]["source"])
    lines = [line for line in first.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "import gmm_utils", f"{path.name}: the first line must be `import gmm_utils`"
    assert lines[1].startswith("gmm_utils.set_host_device_count("), f"{path.name}: set the device count next"
    assert lines[2].startswith("gmm_utils.use_xla_reductions()"), f"{path.name}: then XLA's reductions"
    assert "gmm_utils.enable_compilation_cache()" in first, f"{path.name}: keep compiled programs on disk"
    assert "gmm_utils.set_style()" in first


@pytest.mark.parametrize("path", [p for p in CHAPTERS if not p.name.startswith("9")], ids=lambda p: p.name)
def test_chapter_has_the_book_structure(path):
    notebook = load(path)
    text = markdown(notebook)
    first = "".join(notebook["cells"][0]["source"])
    assert first.startswith("# "), f"{path.name}: start with a `# Title` markdown cell"
    for item in ("**You will learn**", "**You need**", "**Time**"):
        assert item in first, f"{path.name}: the opening box lacks {item}"
    for heading in ("## Key takeaways", "## Exercises", "## References", "## Versions"):
        assert heading in text, f"{path.name}: missing section {heading!r}"
    assert len(re.findall(r"```\{exercise\}", text)) >= 2, f"{path.name}: needs at least two exercises"
    assert len(re.findall(r"```\{solution(?:-start)?\}", text)) >= 2, f"{path.name}: needs solutions"
    assert ":class: dropdown" in text
    assert "```{bibliography}" in text
    assert "print_versions()" in "".join(code_cells(notebook)[-1]["source"]), f"{path.name}: end with versions"
    assert any("# Check:" in "".join(c["source"]) for c in code_cells(notebook)), f"{path.name}: no `# Check:` cell"


@pytest.mark.parametrize("path", CHAPTERS, ids=NOTEBOOK_IDS)
def test_no_progress_bars_no_svg_no_debug_prints(path):
    source = "\n".join("".join(c["source"]) for c in code_cells(load(path)))
    assert "progress_bar=True" not in source
    assert "figure_format" not in source or "svg" not in source.lower()
    assert "tqdm" not in source


def test_glue_keys_are_unique_across_the_book():
    seen: dict[str, str] = {}
    for path in CHAPTERS:
        source = "\n".join("".join(c["source"]) for c in code_cells(load(path)))
        for key in re.findall(r"glue\(\s*[\"']([^\"']+)[\"']", source):
            owner = seen.setdefault(key, path.name)
            assert owner == path.name, f"glue key {key!r} is used in both {owner} and {path.name}"
    # every glued key used in the text is defined in the same notebook
    for path in CHAPTERS:
        notebook = load(path)
        source = "\n".join("".join(c["source"]) for c in code_cells(notebook))
        defined = set(re.findall(r"glue\(\s*[\"']([^\"']+)[\"']", source))
        # keys built in a loop, glue(f"ch09_{name}_wall", ...): each {...} stands for a word
        patterns = [
            re.compile(re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(template)) + "$")
            for template in re.findall(r"glue\(\s*f[\"']([^\"']+)[\"']", source)
        ]
        used = set(re.findall(r"\{glue:(?:text|)\}`([^`:]+)", markdown(notebook)))
        missing = {key for key in used - defined if not any(p.match(key) for p in patterns)}
        assert not missing, f"{path.name}: glued in text but never computed: {sorted(missing)}"


def exercises_and_solutions(notebook: dict) -> tuple[list[str], dict[str, list[dict]]]:
    """The exercise labels of a notebook, and for each gated solution the cells between its start and end.

    A solution written as one ``{solution}`` directive maps to an empty list: it holds no executed code.
    """
    exercises: list[str] = []
    solutions: dict[str, list[dict]] = {}
    open_label = None
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            exercises += re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)", source)
            for label in re.findall(r"```\{solution\} (\S+)", source):
                solutions[label] = []
            if "{solution-end}" in source:
                assert open_label, "a solution-end without its solution-start"
                open_label = None
            started = re.findall(r"```\{solution-start\} (\S+)", source)
            if started:
                assert open_label is None, f"solution {open_label} is not closed before {started[0]}"
                open_label = started[-1]
                solutions[open_label] = []
                continue
        if open_label is not None:
            solutions[open_label].append(cell)
    assert open_label is None, f"solution {open_label} has no solution-end"
    return exercises, solutions


@pytest.mark.parametrize("path", [p for p in CHAPTERS if not p.name.startswith("9")], ids=lambda p: p.name)
def test_every_exercise_has_a_solution_and_solution_code_is_executed(path):
    notebook = load(path)
    exercises, solutions = exercises_and_solutions(notebook)
    assert set(exercises) == set(solutions), f"{path.name}: exercises without solutions or the reverse"
    # Code shown in a solution must run in the build and under nbval: it lives in code cells between
    # `{solution-start}` and `{solution-end}`, never in a fenced block inside a `{solution}` directive.
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "{solution" in source:
            assert not re.search(r"(~~~|```)\s*(python|ipython3|\{code-cell\})", source), (
                f"{path.name}: a solution shows code that is never executed; use the gated syntax"
            )
    for label, cells in solutions.items():
        if cells:
            assert any(c["cell_type"] == "code" for c in cells), f"{path.name}: gated solution {label} runs no code"


def test_at_least_five_exercises_ask_the_learner_to_write_a_model_or_a_check():
    # Label convention: `chNN-write-...` for an exercise whose learner writes a model or a check.
    written = []
    for path in CHAPTERS:
        if path.name[:2] in {"01", "02", "03", "04", "05", "06"}:
            exercises, solutions = exercises_and_solutions(load(path))
            for label in exercises:
                if re.match(r"ch\d\d-write-", label):
                    assert solutions.get(label), f"{path.name}: {label} needs an executed (gated) solution"
                    written.append(label)
    assert len(written) >= 5, f"only {len(written)} exercises ask the learner to write a model: {written}"
