"""Every command the README, the landing page and the teaching page tell a reader to type works.

The commands are read from the pages' fenced ``bash`` blocks (and ``# or: <command>``
alternatives in their comments), so a newly documented command is picked up by itself;
it fails :func:`test_every_documented_command_is_mapped` until :data:`HOW` says how to run
it. A command runs as documented (:data:`AS_DOCUMENTED`) or, when it would start a server,
take minutes or need the network, through the cheap proxies listed with the reason.
Everything here runs offline in seconds: building the book, nbval and the machine
check's NUTS fit are tested elsewhere (``tests/test_book.py``, ``chapters/``,
``tests/test_check.py``), and ``make test`` runs this very suite, so it is never run here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

DOCUMENTS = ("README.md", "intro.md", "teaching.md")
#: Run the command itself, exactly as the page shows it.
AS_DOCUMENTED = "as documented"

#: How each documented command is tested: (why, commands to run). ``{tmp}`` is a fresh
#: temporary folder. Review an entry when its command or the Makefile changes.
HOW: dict[str, tuple[str, list[str]]] = {
    "make book": (
        "executes every chapter (minutes); tests/test_book.py builds the book: check the recipe and its program",
        ["make -n book", ".venv/bin/jupyter-book --version"],
    ),
    "make test": (
        "runs this test suite (it would recurse): check the recipe and its program",
        ["make -n test", ".venv/bin/python -m pytest --version"],
    ),
    "make bench": (
        "minutes of fits, and installs PyMC from the network: check the recipe and the benchmark's command line",
        ["make -n bench", ".venv/bin/python bench/run.py --help"],
    ),
    "make timings": (
        "executes every chapter from an empty cache (minutes): check the recipe and the script's command line",
        ["make -n timings", ".venv/bin/python bench/timings.py --help"],
    ),
    "make timings TIMINGS_FLAGS=--isolated": (
        "the same with a cache per chapter: check that the flag reaches the script",
        ["make -n timings TIMINGS_FLAGS=--isolated"],
    ),
    "make install": (
        "installs from the network when requirements.txt changed: check the recipe",
        ["make -n install", ".venv/bin/python -m pip --version"],
    ),
    "python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt": (
        "the install needs the network; create a venv the same way (offline, with pip), and the machine "
        "check's proxy below compares every installed package with its pin",
        ["python3 -m venv {tmp}/venv", "{tmp}/venv/bin/python -m pip --version"],
    ),
    ".venv/bin/jupyter lab chapters/": (
        "starts a server that runs until stopped: the same JupyterLab prints its version",
        [".venv/bin/jupyter lab --version"],
    ),
    ".venv/bin/python -m gmm_utils.check": (
        "its NUTS fit takes up to 15 s (tests/test_check.py runs the whole command): everything but the fit",
        [".venv/bin/python -m gmm_utils.check --skip-fit"],
    ),
}

#: What a proxy's output must show, beyond exit code 0 (a program that exits 0 without
#: doing its job does not pass).
EXPECTED_OUTPUT = {
    "make -n book": r"jupyter-book build \.",
    "make -n test": r"-m pytest",
    "make -n bench": r"bench/run\.py --pymc-python",
    "make -n timings": r"bench/timings\.py",
    "make -n timings TIMINGS_FLAGS=--isolated": r"bench/timings\.py --isolated",
    ".venv/bin/python bench/timings.py --help": r"usage: .*timings",
    ".venv/bin/jupyter lab --version": r"^\d+\.\d+\.\d+",
    ".venv/bin/python -m gmm_utils.check --skip-fit": r"All good",
    ".venv/bin/python bench/run.py --help": r"usage: bench/run\.py",
}

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?:\{code-block\}[ \t]*)?(?P<lang>bash|sh|shell|console)[ \t]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)


def commands_in(markdown: str) -> list[str]:
    """The commands of the fenced shell blocks of ``markdown``, in order.

    A line ending in ``\\`` continues on the next; ``$ `` prompts (``console`` blocks)
    and comments are dropped, and a comment ``# or: <command>`` adds ``<command>``.
    Whitespace inside a command is normalized to single spaces.
    """
    commands = []
    for block in _FENCE.finditer(markdown):
        body = re.sub(r"\\\n", " ", block.group("body"))
        for line in body.splitlines():
            line = line.strip()
            if block.group("lang") == "console":
                if not line.startswith("$ "):
                    continue  # output, not a command
                line = line[2:]
            command, _, comment = line.partition(" #") if not line.startswith("#") else ("", "", line[1:])
            if command.strip():
                commands.append(" ".join(command.split()))
            alternative = re.match(r"\s*or:\s*(.+)", comment)
            if alternative:
                commands.append(" ".join(alternative.group(1).split()))
    return commands


def documented() -> dict[str, list[str]]:
    """Each documented command, with the pages that show it."""
    found: dict[str, list[str]] = {}
    for name in DOCUMENTS:
        for command in commands_in((ROOT / name).read_text(encoding="utf-8")):
            found.setdefault(command, [])
            if name not in found[command]:
                found[command].append(name)
    return found


def run(command: str, tmp: Path) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        shlex.split(command.format(tmp=tmp)),
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_the_parser_reads_shell_blocks_only():
    markdown = """
Text with `make inline` (not a command block).

```bash
make book   # builds the book
# a comment line
make install      # or: python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt
.venv/bin/python -m gmm_utils.check \\
    --skip-fit
```

```python
print("not shell")
```

```console
$ make test
collected 620 items
```
"""
    assert commands_in(markdown) == [
        "make book",
        "make install",
        "python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt",
        ".venv/bin/python -m gmm_utils.check --skip-fit",
        "make test",
    ]


def test_every_page_documents_commands():
    for name in DOCUMENTS:  # guards against a parser that silently finds nothing
        assert commands_in((ROOT / name).read_text(encoding="utf-8")), f"no shell block found in {name}"


def unmapped(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """The documented commands :data:`HOW` does not say how to test."""
    return {command: pages for command, pages in found.items() if command not in HOW}


def test_a_newly_documented_command_is_caught():
    found = {**documented(), **{command: ["README.md"] for command in commands_in("```bash\nmake docs\n```\n")}}
    assert unmapped(found) == {"make docs": ["README.md"]}


def test_every_documented_command_is_mapped():
    missing = unmapped(documented())
    assert not missing, (
        f"documented commands without a test: {missing}. Add each to HOW in {Path(__file__).name}: "
        "AS_DOCUMENTED if it runs offline in seconds, else cheap proxies and the reason."
    )


def test_no_mapping_is_stale():
    stale = sorted(set(HOW) - set(documented()))
    assert not stale, f"HOW maps commands no page documents any more: {stale}; remove them"


def test_the_paths_a_documented_command_names_exist():
    for command in documented():
        for token in shlex.split(command):
            if "/" in token and not token.startswith(("-", "{")):
                assert (ROOT / token).exists(), f"`{command}` names {token}, which does not exist"


@pytest.mark.parametrize("command", sorted(HOW))
def test_documented_command_works(command, tmp_path):
    reason, proxies = HOW[command]
    to_run = [command] if proxies == [AS_DOCUMENTED] else proxies
    assert to_run and reason, f"HOW[{command!r}] needs a reason and at least one command"
    for proxy in to_run:
        words = proxy.split()
        assert not (words[0] == "make" and "test" in words and "-n" not in words), "never run `make test` here"
        result = run(proxy, tmp_path)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"`{proxy}` (for `{command}`: {reason}) exited {result.returncode}:\n{output[-3000:]}"
        expected = EXPECTED_OUTPUT.get(proxy)
        if expected:
            assert re.search(expected, output, flags=re.M), f"`{proxy}` did not print {expected!r}:\n{output[-3000:]}"
