"""Check a learner's machine before the workshop: ``python -m gmm_utils.check``.

Run it in a terminal from the book's repository, with the book's environment active::

    python -m gmm_utils.check

It checks, in this order,

1. the Python version (3.11 or newer);
2. the installed version of every package pinned in ``requirements.txt`` (read from
   the repository next to this package when it is there, else the copy of the pins in
   :data:`PINNED_VERSIONS`);
3. the notebook interface a learner opens the chapters with: that ``jupyter lab
   --version`` runs with the ``jupyter`` next to this Python (the README's
   ``.venv/bin/jupyter lab chapters/``), and that the ``python3`` kernel JupyterLab
   would start runs in this environment and imports ``gmm_utils``;
4. that JAX gets :data:`WANTED_DEVICES` CPU devices, so four chains run in parallel
   (the command sets the count itself, before JAX starts, as every chapter does);
5. a tiny NUTS fit of :func:`gmm_utils.marginal_model` (four chains, 200 points, two
   components) that must finish in under :data:`FIT_TIME_LIMIT` seconds, compilation
   included, and converge (R-hat below :data:`FIT_MAX_RHAT`);

then prints one line per check and, at the end, a numbered list of what is wrong with
the command that fixes each item. The exit code is 0 when everything passed and 1
otherwise, so a workshop set-up script can test it.

Every check is a pure function of what was measured (``check_python("3.10.4")``,
``check_fit(FitOutcome(seconds=20.0, ...))``), so each can be tested with a fake
failing input; only :func:`main` looks at the real machine. The fixes name the
interpreter that ran the check (``.venv/bin/python -m pip ...``), so that a learner who
copies one installs into the book's environment, not into whatever ``python`` is first
on the ``PATH``.

Examples
--------
>>> check_python("3.10.4").ok
False
>>> check_package("numpyro", pinned="0.22.0", installed="0.22.0").ok
True
>>> exit_code([check_device_count(4, "cpu"), check_device_count(1, "cpu")])
1
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .devices import set_host_device_count, use_xla_reductions
from .display import package_versions

#: The oldest Python the book supports.
MIN_PYTHON = (3, 11)
#: CPU devices the book asks JAX for: one per chain.
WANTED_DEVICES = 4
#: Seconds the tiny NUTS fit may take, compilation included.
FIT_TIME_LIMIT = 15.0
#: The tiny fit is easy (two well-separated, ordered components): its chains must agree.
FIT_MAX_RHAT = 1.05

#: The pins of the repository's ``requirements.txt``, used when that file is not next to
#: the package (e.g. ``gmm_utils`` installed without the repository). A test keeps the
#: two equal.
PINNED_VERSIONS: dict[str, str] = {
    "jupyter-book": "1.0.4.post1",
    "jax": "0.10.2",
    "jaxlib": "0.10.2",
    "numpyro": "0.22.0",
    "funsor": "0.4.8",
    "arviz": "0.23.4",
    "numpy": "2.4.6",
    "scipy": "1.17.1",
    "pandas": "3.1.1",
    "matplotlib": "3.11.2",
    "seaborn": "0.13.2",
    "nbval": "0.11.0",
    "jupyterlab": "4.6.6",
    "pytest": "9.2.0",
    "sphinx-exercise": "1.2.1",
    "sphinx-mathjax-offline": "0.0.2",
}

#: The kernel JupyterLab starts for the chapters (their notebooks name it).
KERNEL_NAME = "python3"
#: Seconds allowed for ``jupyter lab --version`` and for the kernel to start and answer.
NOTEBOOK_TIMEOUT = 120.0

#: The repository's ``requirements.txt`` (it exists when the package is used from a
#: clone, as ``pip install -e .`` does).
REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "requirements.txt"

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    name : str
        What was checked, e.g. ``"python"``, ``"numpyro"``, ``"devices"``, ``"nuts fit"``.
    ok : bool
        Whether the check passed.
    found : str
        What was found, in words (shown on the check's line).
    fix : str
        How to fix it, when ``ok`` is false (shown in the list at the end).
    command : str
        The shell command that fixes it, if there is one (printed on its own line, to
        copy and paste).
    """

    name: str
    ok: bool
    found: str
    fix: str = ""
    command: str = ""


@dataclass(frozen=True)
class FitOutcome:
    """What the tiny NUTS fit measured.

    Attributes
    ----------
    seconds : float
        Wall time of the fit, compilation included.
    max_rhat : float
        Largest rank-normalized R-hat over the ``weights``, ``locs`` and ``scales``.
    chain_method : str
        How the chains ran: ``"parallel"`` (one device per chain) or ``"vectorized"``.
    """

    seconds: float
    max_rhat: float
    chain_method: str


@dataclass(frozen=True)
class CommandOutcome:
    """What running one command gave.

    Attributes
    ----------
    command : tuple of str
        The command, program first.
    returncode : int or None
        Its exit code; ``None`` when the program does not exist or did not finish.
    output : str
        What it printed (stdout, then stderr), or why it did not run.
    """

    command: tuple[str, ...]
    returncode: int | None
    output: str


@dataclass(frozen=True)
class KernelOutcome:
    """What starting a Jupyter kernel and importing ``gmm_utils`` in it gave.

    Attributes
    ----------
    name : str
        The kernel's name (``"python3"``).
    prefix : str or None
        ``sys.prefix`` as the kernel reported it after ``import gmm_utils``: the
        environment it runs in. ``None`` when it did not get that far.
    error : str
        Why not, when ``prefix`` is ``None``.
    """

    name: str
    prefix: str | None
    error: str = ""


def _reinstall(python: str = "python") -> str:
    """The command that reinstalls the pinned environment with ``python``."""
    return f"{python} -m pip install --force-reinstall -r requirements.txt"


def normalize_name(name: str) -> str:
    """A package name in PEP 503 form: ``Sphinx_Exercise`` -> ``sphinx-exercise``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(text: str) -> dict[str, str]:
    """The exact pins (``name==version``) of a requirements file.

    Comments, blank lines, options (``-e .``, ``-r other.txt``) and requirements that
    are not exact pins are skipped. Names are normalized (:func:`normalize_name`).

    Parameters
    ----------
    text : str
        The content of a ``requirements.txt``.

    Returns
    -------
    dict of str to str
        Package name to pinned version, in file order.

    Examples
    --------
    >>> parse_requirements("# pins\\nnumpyro==0.22.0  # NUTS\\n-e .\\nJAX[cpu] == 0.10.2\\n")
    {'numpyro': '0.22.0', 'jax': '0.10.2'}
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be the text of a requirements file, got {type(text).__name__}")
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[normalize_name(match.group(1))] = match.group(3)
    return pins


def load_pins(path: Path | None = REQUIREMENTS_FILE) -> tuple[dict[str, str], str]:
    """The pins to check against, and where they came from.

    Parameters
    ----------
    path : pathlib.Path or None
        A ``requirements.txt``. If it is ``None`` or does not exist, the pins embedded
        in this module (:data:`PINNED_VERSIONS`) are used.

    Returns
    -------
    pins : dict of str to str
        Package name to pinned version.
    source : str
        The file read, or a note that the embedded pins were used.
    """
    if path is not None and Path(path).is_file():
        return parse_requirements(Path(path).read_text(encoding="utf-8")), str(path)
    return dict(PINNED_VERSIONS), "the pins embedded in gmm_utils/check.py (no requirements.txt found)"


def check_python(version: str | None = None, minimum: tuple[int, int] = MIN_PYTHON) -> CheckResult:
    """Python must be ``minimum`` or newer.

    Parameters
    ----------
    version : str, optional
        A version such as ``"3.11.7"``. Default: the running Python.
    minimum : tuple of int
        ``(major, minor)``.

    Examples
    --------
    >>> check_python("3.12.1").ok, check_python("3.10.4").ok
    (True, False)
    """
    version = platform.python_version() if version is None else version
    parts = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if len(parts) < 2:
        raise ValueError(f"`version` must look like '3.11.7', got {version!r}")
    need = ".".join(map(str, minimum))
    if parts >= minimum:
        return CheckResult("python", True, f"{version} (need {need} or newer)")
    return CheckResult(
        "python",
        False,
        f"{version} (need {need} or newer)",
        f"Install Python {need} or newer (python.org, your package manager, or `uv python install {need}`), "
        "then make the book's environment again with it, from the repository:",
        f"python{need} -m venv .venv && .venv/bin/python -m pip install -r requirements.txt",
    )


def _same_version(installed: str, pinned: str) -> bool:
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pragma: no cover - packaging comes with pip and Sphinx
        return installed == pinned
    try:
        return Version(installed) == Version(pinned)
    except InvalidVersion:
        return installed == pinned


def check_package(
    name: str, pinned: str, installed: str | None, requirements: str = "requirements.txt", python: str = "python"
) -> CheckResult:
    """The installed version of ``name`` must be the pinned one.

    Parameters
    ----------
    name : str
        Package name, as pinned.
    pinned : str
        The version in ``requirements.txt``.
    installed : str or None
        The installed version; ``None`` or ``"not installed"`` if it is missing.
    requirements : str
        The requirements file to name in the fix.
    python : str
        The interpreter to name in the fix (the one that runs the check).

    Examples
    --------
    >>> check_package("arviz", pinned="0.23.4", installed="0.20.0").ok
    False
    """
    if installed in (None, "not installed"):
        return CheckResult(
            name,
            False,
            f"not installed (pinned {pinned})",
            f"{name} is missing. Install the book's pinned environment:",
            f"{python} -m pip install -r {requirements}",
        )
    if _same_version(installed, pinned):
        return CheckResult(name, True, f"{installed} (pinned {pinned})")
    return CheckResult(
        name,
        False,
        f"{installed} (pinned {pinned})",
        f"{name} {installed} is installed but the book is tested with {pinned}. Install the pinned versions:",
        f"{python} -m pip install -r {requirements}",
    )


def check_packages(
    pins: Mapping[str, str],
    installed: Mapping[str, str | None] | None = None,
    requirements: str = "requirements.txt",
    python: str = "python",
) -> list[CheckResult]:
    """:func:`check_package` for every pin.

    Parameters
    ----------
    pins : mapping of str to str
        Package name to pinned version (:func:`load_pins`).
    installed : mapping of str to str or None, optional
        Package name to installed version. Default: look each one up in this Python.
    requirements : str
        The requirements file to name in the fixes.
    python : str
        The interpreter to name in the fixes.
    """
    if installed is None:
        installed = package_versions(tuple(pins))
    return [check_package(name, pin, installed.get(name), requirements, python) for name, pin in pins.items()]


def run_command(command: Sequence[str | os.PathLike], timeout: float = NOTEBOOK_TIMEOUT) -> CommandOutcome:
    """Run ``command`` and record what happened; never raises for a missing program.

    Examples
    --------
    >>> run_command(["/no/such/program", "--version"]).returncode is None
    True
    """
    command = tuple(str(part) for part in command)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return CommandOutcome(command, None, f"{command[0]} does not exist")
    except PermissionError:
        return CommandOutcome(command, None, f"{command[0]} is not executable")
    except subprocess.TimeoutExpired:
        return CommandOutcome(command, None, f"no answer within {timeout:g} s")
    return CommandOutcome(command, result.returncode, (result.stdout + result.stderr).strip())


def jupyter_next_to(python: str | os.PathLike = sys.executable) -> Path:
    """The ``jupyter`` command installed with ``python`` (``.venv/bin/jupyter`` for ``.venv/bin/python``).

    The path is not resolved: a virtual environment's ``python`` is a link to the base
    interpreter, whose folder holds no ``jupyter`` of the environment.
    """
    return Path(python).with_name("jupyter.exe" if os.name == "nt" else "jupyter")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no output"


def check_jupyterlab(outcome: CommandOutcome, python: str = "python") -> CheckResult:
    """``jupyter lab --version`` must run and print a version.

    It runs the JupyterLab a learner starts with ``.venv/bin/jupyter lab chapters/``
    (without starting a server). Without JupyterLab, ``jupyter lab`` prints "Jupyter
    command `jupyter-lab` not found" and exits 1.

    Parameters
    ----------
    outcome : CommandOutcome
        What ``<bin>/jupyter lab --version`` gave (:func:`run_command`), or a fake one.
    python : str
        The interpreter to name in the fix.

    Examples
    --------
    >>> check_jupyterlab(CommandOutcome(("jupyter", "lab", "--version"), 0, "4.6.6")).ok
    True
    >>> check_jupyterlab(CommandOutcome(("jupyter", "lab", "--version"), 1,
    ...                                 "Jupyter command `jupyter-lab` not found.")).ok
    False
    """
    shown = " ".join(outcome.command)
    version = outcome.output.strip().splitlines()[-1].strip() if outcome.output.strip() else ""
    if outcome.returncode == 0 and re.fullmatch(r"\d+\.\d+\S*", version):
        return CheckResult("jupyter lab", True, f"{version} ({shown})")
    if outcome.returncode is None:
        found = f"`{shown}` did not run: {outcome.output}"
    else:
        found = f"`{shown}` exited with {outcome.returncode}: {_first_line(outcome.output)}"
    return CheckResult(
        "jupyter lab",
        False,
        found,
        "JupyterLab, the notebook interface the chapters are opened with (`.venv/bin/jupyter lab "
        "chapters/`), does not run from this environment. Install the pinned packages, JupyterLab "
        "included, into the environment that runs this check:",
        f"{python} -m pip install -r requirements.txt",
    )


def start_kernel(
    name: str = KERNEL_NAME, timeout: float = NOTEBOOK_TIMEOUT, kernel_dirs: Sequence[str | os.PathLike] | None = None
) -> KernelOutcome:
    """Start the kernel ``name`` as JupyterLab would, import ``gmm_utils`` in it, and stop it.

    JupyterLab started from this environment finds kernels with the same
    ``jupyter_client`` and the same search path as this process, and runs a spec whose
    command is ``python`` with its own interpreter, which is this one; so this is the
    kernel a learner's notebooks get. The kernel's own output is discarded.

    Parameters
    ----------
    name : str
        The kernel's name.
    timeout : float
        Seconds for the kernel to start, and again for it to run the import.
    kernel_dirs : sequence of path-like, optional
        Look for kernel specs only here (and ipykernel's own ``python3``), not on
        Jupyter's path: for tests.
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager
    except ImportError as error:
        return KernelOutcome(name, None, f"jupyter_client is missing: {error}")
    specs = KernelSpecManager() if kernel_dirs is None else KernelSpecManager(kernel_dirs=[str(d) for d in kernel_dirs])
    manager = KernelManager(kernel_name=name, kernel_spec_manager=specs)
    client = None
    try:
        manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=timeout)
        printed: list[str] = []
        errors: list[str] = []

        def collect(message: dict) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                printed.append(content["text"])
            elif message["msg_type"] == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")

        client.execute_interactive(
            "import sys, gmm_utils; print(sys.prefix)", timeout=timeout, output_hook=collect, allow_stdin=False
        )
        if errors:
            return KernelOutcome(name, None, errors[0])
        lines = "".join(printed).split()
        return KernelOutcome(name, lines[-1] if lines else None, "" if lines else "the kernel printed nothing")
    except Exception as error:  # no such kernel, a kernel that dies or hangs: report it
        return KernelOutcome(name, None, f"{type(error).__name__}: {error}")
    finally:
        if client is not None:
            client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def check_kernel(
    outcome: KernelOutcome, prefix: str = sys.prefix, python: str = "python", jupyter: str = "jupyter"
) -> CheckResult:
    """The notebooks' kernel must start, import ``gmm_utils`` and run in this environment.

    A ``python3`` kernel spec elsewhere on Jupyter's path (for example in
    ``~/.local/share/jupyter/kernels``) shadows this environment's own; its notebooks
    would then run another Python, without the book's pinned packages.

    Parameters
    ----------
    outcome : KernelOutcome
        What :func:`start_kernel` gave, or a fake one.
    prefix : str
        ``sys.prefix`` of the environment the kernel must run in (this one).
    python, jupyter : str
        The interpreter and the ``jupyter`` command to name in the fix.

    Examples
    --------
    >>> check_kernel(KernelOutcome("python3", "/env"), prefix="/env").ok
    True
    >>> check_kernel(KernelOutcome("python3", "/usr"), prefix="/env").ok
    False
    """
    if outcome.prefix is None:
        if "NoSuchKernel" in outcome.error:
            return CheckResult(
                "kernel",
                False,
                f"no kernel named '{outcome.name}'",
                f"JupyterLab finds no '{outcome.name}' kernel to run the chapters. Install this "
                "environment's kernel:",
                f"{python} -m ipykernel install --sys-prefix --name {outcome.name}",
            )
        return CheckResult(
            "kernel",
            False,
            f"'{outcome.name}' did not run `import gmm_utils`: {outcome.error}",
            f"The '{outcome.name}' kernel JupyterLab would start for the chapters failed to start or "
            "to import gmm_utils. Reinstall the pinned environment:",
            _reinstall(python),
        )
    if os.path.realpath(outcome.prefix) != os.path.realpath(prefix):
        return CheckResult(
            "kernel",
            False,
            f"'{outcome.name}' runs in {outcome.prefix}, not in this environment ({prefix})",
            f"Another '{outcome.name}' kernel spec comes first on Jupyter's path (`{jupyter} kernelspec "
            "list` shows where), so notebooks would run without the book's pinned packages. Remove it; "
            "this environment's own kernel is then used:",
            f"{jupyter} kernelspec remove -f {outcome.name}",
        )
    return CheckResult("kernel", True, f"'{outcome.name}' starts in this environment and imports gmm_utils")


def check_device_count(count: int, backend: str, wanted: int = WANTED_DEVICES) -> CheckResult:
    """JAX must see ``wanted`` CPU devices, one per chain.

    Parameters
    ----------
    count : int
        ``jax.local_device_count()``.
    backend : str
        ``jax.default_backend()``; the book runs on ``"cpu"``.
    wanted : int
        Devices asked for with :func:`gmm_utils.set_host_device_count`.

    Examples
    --------
    >>> check_device_count(4, "cpu").ok, check_device_count(1, "cpu").ok
    (True, False)
    """
    found = f"{count} x {backend} (want {wanted} x cpu, one per chain)"
    if backend != "cpu":
        return CheckResult(
            "devices",
            False,
            found,
            f"JAX runs on '{backend}'. The book is written and timed for the CPU: set JAX_PLATFORMS=cpu "
            "in the shell that starts Python or Jupyter.",
            "export JAX_PLATFORMS=cpu",
        )
    if count != wanted:
        return CheckResult(
            "devices",
            False,
            found,
            f"JAX started with {count} device(s) before the count could be set to {wanted}. Run this "
            "command in a fresh terminal, not inside a notebook, and make sure nothing imports JAX at "
            "start-up (a sitecustomize.py or PYTHONSTARTUP file). In notebooks, "
            f"`gmm_utils.set_host_device_count({wanted})` must be in the first cell, before JAX starts.",
        )
    return CheckResult("devices", True, found)


def check_fit(
    outcome: FitOutcome, limit: float = FIT_TIME_LIMIT, max_rhat: float = FIT_MAX_RHAT, python: str = "python"
) -> CheckResult:
    """The tiny NUTS fit must finish within ``limit`` seconds and converge.

    Parameters
    ----------
    outcome : FitOutcome
        What :func:`tiny_fit` measured (or a fake one, in tests).
    limit : float
        Seconds allowed, compilation included.
    max_rhat : float
        Largest R-hat allowed.
    python : str
        The interpreter to name in the fix.

    Examples
    --------
    >>> check_fit(FitOutcome(seconds=20.0, max_rhat=1.0, chain_method="parallel")).ok
    False
    """
    found = f"{outcome.seconds:.1f} s (limit {limit:g} s), max R-hat {outcome.max_rhat:.3f}, {outcome.chain_method} chains"
    if not outcome.max_rhat < max_rhat:  # also catches a NaN R-hat
        return CheckResult(
            "nuts fit",
            False,
            found,
            f"The tiny fit did not converge (R-hat {outcome.max_rhat:.3f}, want below {max_rhat:g}), which "
            "points to a broken JAX or NumPyro installation. Reinstall the pinned environment:",
            _reinstall(python),
        )
    if outcome.seconds > limit:
        return CheckResult(
            "nuts fit",
            False,
            found,
            f"The tiny fit took {outcome.seconds:.1f} s; the chapters' fits would be too slow to follow "
            "along. Close other programs, plug the laptop in (power saving slows the CPU), check that "
            "the chains ran in parallel (see the devices line), and run the check again. If it stays "
            "slow, use the book's Binder or Colab launch buttons during the workshop.",
        )
    return CheckResult("nuts fit", True, found)


def tiny_fit(seed: int = 0, num_chains: int = WANTED_DEVICES) -> FitOutcome:
    """Fit :func:`gmm_utils.marginal_model` to 200 points from two separated components.

    Four chains of 300 warm-up and 300 kept draws, ordered means. Starts JAX (call
    :func:`gmm_utils.set_host_device_count` before it).

    Returns
    -------
    FitOutcome
        Wall time (compilation included), largest R-hat and the chain method used.
    """
    import arviz as az

    from .data import simulate_gmm
    from .inference import choose_chain_method, run_nuts
    from .models import marginal_model

    data = simulate_gmm(n=200, weights=(0.4, 0.6), locs=(-2.0, 2.0), scales=(0.6, 0.8), seed=seed)
    start = time.perf_counter()
    idata = run_nuts(
        marginal_model,
        num_chains=num_chains,
        num_warmup=300,
        num_samples=300,
        seed=seed,
        log_likelihood=False,
        x=data.x,
        k=2,
        ordered=True,
    )
    seconds = time.perf_counter() - start
    rhat = az.rhat(idata, var_names=["weights", "locs", "scales"])
    max_rhat = max(float(rhat[name].max()) for name in rhat.data_vars)
    return FitOutcome(seconds=seconds, max_rhat=max_rhat, chain_method=choose_chain_method(num_chains))


def exit_code(results: Iterable[CheckResult]) -> int:
    """0 when every check passed, 1 otherwise."""
    return 0 if all(result.ok for result in results) else 1


def format_report(results: Sequence[CheckResult], pins_source: str = "") -> str:
    """One line per check, then a numbered list of what to fix (or "all good").

    Examples
    --------
    >>> print(format_report([CheckResult("python", True, "3.11.7")]))
      ok    python  3.11.7
    <BLANKLINE>
    All good: this machine is ready for the workshop.
    """
    width = max((len(result.name) for result in results), default=0)
    lines = [f"  {'ok' if r.ok else 'FAIL':<4}  {r.name:<{width}}  {r.found}" for r in results]
    if pins_source:
        lines.append(f"\nPackage versions compared with {pins_source}.")
    problems = [result for result in results if not result.ok]
    if not problems:
        lines.append("\nAll good: this machine is ready for the workshop.")
        return "\n".join(lines)
    lines.append(f"\n{len(problems)} problem{'s' if len(problems) > 1 else ''} to fix before the workshop:")
    for number, problem in enumerate(problems, start=1):
        lines.append(f"  {number}. {problem.name}: {problem.found}")
        lines.append(textwrap.fill(problem.fix, width=88, initial_indent="     ", subsequent_indent="     "))
        if problem.command:
            lines.append(f"       $ {problem.command}")
    lines.append("Then run `python -m gmm_utils.check` again.")
    return "\n".join(lines)


def _device_result(wanted: int, python: str = "python") -> CheckResult:
    """Set the device count (before JAX starts), then check what JAX got."""
    try:
        set_host_device_count(wanted)
        use_xla_reductions()  # as every chapter's first cell
    except RuntimeError:
        pass  # JAX already started: the count below shows it, and the fix says what to do
    try:
        import jax

        return check_device_count(jax.local_device_count(), jax.default_backend(), wanted)
    except Exception as error:  # a broken JAX: report it, do not crash the report
        return CheckResult(
            "devices",
            False,
            f"JAX failed to start: {type(error).__name__}: {error}",
            "Reinstall the pinned environment:",
            _reinstall(python),
        )


def _fit_result(limit: float, fit: Callable[[], FitOutcome], python: str = "python") -> CheckResult:
    try:
        outcome = fit()
    except Exception as error:
        return CheckResult(
            "nuts fit",
            False,
            f"failed: {type(error).__name__}: {error}",
            "The fit itself failed, which points to a broken or mismatched JAX/NumPyro installation. "
            "Reinstall the pinned environment:",
            _reinstall(python),
        )
    return check_fit(outcome, limit, python=python)


def shown_python(executable: str = sys.executable, cwd: str | None = None) -> str:
    """``executable`` as a learner would type it: relative when it is inside ``cwd``.

    Examples
    --------
    >>> shown_python("/home/me/book/.venv/bin/python", cwd="/home/me/book")
    '.venv/bin/python'
    >>> shown_python("/opt/conda/bin/python", cwd="/home/me/book")
    '/opt/conda/bin/python'
    """
    cwd = os.getcwd() if cwd is None else cwd
    try:
        relative = os.path.relpath(executable, cwd)
    except ValueError:  # another drive on Windows
        return executable
    return executable if relative.startswith("..") else relative


def run_checks(
    *,
    requirements: Path | None = REQUIREMENTS_FILE,
    wanted_devices: int = WANTED_DEVICES,
    time_limit: float = FIT_TIME_LIMIT,
    fit: Callable[[], FitOutcome] | None = tiny_fit,
    notebook: bool = True,
) -> tuple[list[CheckResult], str]:
    """Run every check on this machine, in order; return the results and the pins' source.

    ``fit=None`` skips the NUTS fit, ``notebook=False`` JupyterLab and its kernel. The
    device count is set first, before JAX starts.
    """
    python = shown_python()
    results = [_device_result(wanted_devices, python)]  # first: nothing may start JAX before it
    pins, source = load_pins(requirements)
    hint = str(requirements) if requirements is not None and Path(requirements).is_file() else "requirements.txt"
    results = [check_python(), *check_packages(pins, requirements=hint, python=python), *results]
    if notebook:
        jupyter = jupyter_next_to(sys.executable)
        shown_jupyter = str(Path(python).with_name(jupyter.name))
        notebook_results = [
            check_jupyterlab(run_command([jupyter, "lab", "--version"]), python=python),
            check_kernel(start_kernel(KERNEL_NAME), python=python, jupyter=shown_jupyter),
        ]
        results[-1:-1] = notebook_results  # before the devices line, after the packages
    if fit is not None:
        results.append(_fit_result(time_limit, fit, python))
    return results, source


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m gmm_utils.check [--skip-fit] [--time-limit S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m gmm_utils.check",
        description="Check this machine before the workshop 'Gaussian Mixture Models with NumPyro'.",
    )
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS_FILE, help="the pinned requirements file")
    parser.add_argument("--time-limit", type=float, default=FIT_TIME_LIMIT, help="seconds for the tiny NUTS fit")
    parser.add_argument("--skip-fit", action="store_true", help="skip the tiny NUTS fit")
    args = parser.parse_args(argv)
    print("Checking this machine for the workshop 'Gaussian Mixture Models with NumPyro'...", flush=True)
    results, source = run_checks(
        requirements=args.requirements, time_limit=args.time_limit, fit=None if args.skip_fit else tiny_fit
    )
    print(format_report(results, source))
    return exit_code(results)


if __name__ == "__main__":
    raise SystemExit(main())
