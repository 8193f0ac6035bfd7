"""Check a learner's machine before the workshop: ``.venv/bin/python -m gmm_utils.check``.

From the book's repository, it checks the Python version; every package pinned in
``requirements.txt`` (the one place the pins live); that JupyterLab and the ``python3`` kernel
it would start run in this environment and import ``gmm_utils``; that JAX gets
:data:`WANTED_DEVICES` CPU devices; and a tiny NUTS fit, which must converge within
:data:`FIT_TIME_LIMIT` seconds. It prints one line per check and a numbered list of fixes,
each with its command (naming the interpreter that ran the check), and exits with 1 if any
check failed. Each ``check_*`` function is pure, so tests feed it fake failures.
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
from collections.abc import Iterable, Mapping, Sequence
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
#: The kernel JupyterLab starts for the chapters, and seconds allowed for it and for ``jupyter lab``.
KERNEL_NAME = "python3"
NOTEBOOK_TIMEOUT = 120.0
#: The repository's ``requirements.txt``, the book's pins (there when the package is used from a clone).
REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "requirements.txt"

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: its ``name``, whether it is ``ok``, what was ``found``, and, when
    it failed, the ``fix`` in words and the shell ``command`` that makes it (if there is one)."""

    name: str
    ok: bool
    found: str
    fix: str = ""
    command: str = ""


@dataclass(frozen=True)
class FitOutcome:
    """What the tiny NUTS fit measured: wall ``seconds`` (compilation included), the largest
    R-hat, and the ``chain_method`` (``"parallel"``: one device per chain)."""

    seconds: float
    max_rhat: float
    chain_method: str


@dataclass(frozen=True)
class CommandOutcome:
    """What running ``command`` gave: its ``returncode`` (``None`` if it did not run or
    finish) and its ``output`` (stdout, then stderr), or why it did not run."""

    command: tuple[str, ...]
    returncode: int | None
    output: str


@dataclass(frozen=True)
class KernelOutcome:
    """What starting kernel ``name`` and importing ``gmm_utils`` in it gave: the kernel's
    ``sys.prefix`` (its environment), or ``None`` and the ``error``."""

    name: str
    prefix: str | None
    error: str = ""


def _failed(name: str, found: str, fix: str, command: str = "") -> CheckResult:
    return CheckResult(name, False, found, fix, command)


def _reinstall(python: str) -> str:
    return f"{python} -m pip install --force-reinstall -r requirements.txt"


def parse_requirements(text: str) -> dict[str, str]:
    """The exact pins (``name==version``) of a requirements file, names in PEP 503 form.

    Comments, options (``-e .``) and requirements that are not exact pins are skipped.

    Examples
    --------
    >>> parse_requirements("# pins\\nnumpyro==0.22.0  # NUTS\\n-e .\\nJAX[cpu] == 0.10.2\\n")
    {'numpyro': '0.22.0', 'jax': '0.10.2'}
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be the text of a requirements file, got {type(text).__name__}")
    matches = (_PIN.match(line) for line in text.splitlines())
    return {re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(3) for m in matches if m}


def load_pins(path: str | os.PathLike[str] = REQUIREMENTS_FILE) -> dict[str, str]:
    """The pins of the requirements file ``path`` (FileNotFoundError outside a clone of the book)."""
    return parse_requirements(Path(path).read_text(encoding="utf-8"))


def check_python(version: str | None = None, minimum: tuple[int, int] = MIN_PYTHON) -> CheckResult:
    """Python ``version`` (default: this one) must be ``minimum`` or newer."""
    version = platform.python_version() if version is None else version
    parts = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if len(parts) < 2:
        raise ValueError(f"`version` must look like '3.11.7', got {version!r}")
    need = ".".join(map(str, minimum))
    found = f"{version} (need {need} or newer)"
    if parts >= minimum:
        return CheckResult("python", True, found)
    return _failed("python", found, f"Install Python {need} or newer (python.org, your package manager, or "
                   f"`uv python install {need}`), then make the book's environment again with it:",
                   f"python{need} -m venv .venv && .venv/bin/python -m pip install -r requirements.txt")


def _same_version(installed: str, pinned: str) -> bool:
    try:
        from packaging.version import Version

        return Version(installed) == Version(pinned)
    except (ImportError, ValueError):  # no packaging, or not a PEP 440 version
        return installed == pinned


def check_package(name: str, pinned: str, installed: str | None, requirements: str = "requirements.txt",
                  python: str = "python") -> CheckResult:
    """The ``installed`` version of ``name`` (``None`` or ``"not installed"`` if missing) must be ``pinned``.

    The fix installs ``requirements`` with ``python``.
    """
    command = f"{python} -m pip install -r {requirements}"
    if installed in (None, "not installed"):
        return _failed(name, f"not installed (pinned {pinned})", f"{name} is missing. Install the pinned "
                       "environment:", command)
    if _same_version(installed, pinned):
        return CheckResult(name, True, f"{installed} (pinned {pinned})")
    return _failed(name, f"{installed} (pinned {pinned})", f"{name} {installed} is installed but the book is "
                   f"tested with {pinned}. Install the pinned versions:", command)


def check_packages(pins: Mapping[str, str], installed: Mapping[str, str | None] | None = None,
                   requirements: str = "requirements.txt", python: str = "python") -> list[CheckResult]:
    """:func:`check_package` for every pin; ``installed`` defaults to this environment's versions."""
    installed = package_versions(tuple(pins)) if installed is None else installed
    return [check_package(name, pin, installed.get(name), requirements, python) for name, pin in pins.items()]


def check_requirements_file(path: str | os.PathLike[str]) -> CheckResult:
    """The requirements file must be there: without it no package version can be checked."""
    if Path(path).is_file():
        return CheckResult("requirements", True, str(path))
    return _failed("requirements", f"{path} not found, so no package version was checked",
                   "The pins live in the book repository's requirements.txt. Run the check in a clone of the "
                   "repository (with its environment), or pass the file with --requirements PATH:",
                   "git clone https://github.com/gmm-numpyro/gmm-numpyro-book")


def run_command(command: Sequence[str | os.PathLike[str]], timeout: float = NOTEBOOK_TIMEOUT) -> CommandOutcome:
    """Run ``command`` and record what happened; never raises for a missing program."""
    command = tuple(str(part) for part in command)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except OSError as error:  # no such program, or not executable
        return CommandOutcome(command, None, f"{command[0]}: {error.strerror}")
    except subprocess.TimeoutExpired:
        return CommandOutcome(command, None, f"no answer within {timeout:g} s")
    return CommandOutcome(command, result.returncode, (result.stdout + result.stderr).strip())


def jupyter_next_to(python: str | os.PathLike[str] = sys.executable) -> Path:
    """The ``jupyter`` installed with ``python``, not resolved (a venv's ``python`` links elsewhere)."""
    return Path(python).with_name("jupyter.exe" if os.name == "nt" else "jupyter")


def check_jupyterlab(outcome: CommandOutcome, python: str = "python") -> CheckResult:
    """``jupyter lab --version`` (the JupyterLab of ``.venv/bin/jupyter lab chapters/``) must print a version."""
    shown = " ".join(outcome.command)
    lines = [line.strip() for line in outcome.output.splitlines() if line.strip()]
    if outcome.returncode == 0 and lines and re.fullmatch(r"\d+\.\d+\S*", lines[-1]):
        return CheckResult("jupyter lab", True, f"{lines[-1]} ({shown})")
    found = (f"`{shown}` did not run: {outcome.output}" if outcome.returncode is None
             else f"`{shown}` exited with {outcome.returncode}: {lines[0] if lines else 'no output'}")
    return _failed("jupyter lab", found, "JupyterLab, which the chapters are opened with, does not run from this "
                   "environment. Install the pinned packages, JupyterLab included, into it:",
                   f"{python} -m pip install -r requirements.txt")


def start_kernel(name: str = KERNEL_NAME, timeout: float = NOTEBOOK_TIMEOUT,
                 kernel_dirs: Sequence[str | os.PathLike[str]] | None = None) -> KernelOutcome:
    """Start kernel ``name`` as JupyterLab would, import ``gmm_utils`` in it, and stop it.

    JupyterLab finds kernels with this ``jupyter_client`` and search path, so this is the kernel a
    learner's notebooks get. ``timeout`` is for the start and the import; ``kernel_dirs`` for tests.
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
        replies: list[dict] = []
        client.execute_interactive("import sys, gmm_utils; print(sys.prefix)", timeout=timeout,
                                   output_hook=replies.append, allow_stdin=False)
        for reply in replies:
            if reply["msg_type"] == "error":
                return KernelOutcome(name, None, f"{reply['content']['ename']}: {reply['content']['evalue']}")
        lines = "".join(r["content"]["text"] for r in replies if r["msg_type"] == "stream").split()
        return KernelOutcome(name, lines[-1] if lines else None, "" if lines else "the kernel printed nothing")
    except Exception as error:  # no such kernel, a kernel that dies or hangs: report it
        return KernelOutcome(name, None, f"{type(error).__name__}: {error}")
    finally:
        if client is not None:
            client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def check_kernel(outcome: KernelOutcome, prefix: str = sys.prefix, python: str = "python",
                 jupyter: str = "jupyter") -> CheckResult:
    """The notebooks' kernel must start, import ``gmm_utils`` and run in this environment (``prefix``).

    A ``python3`` kernel spec elsewhere on Jupyter's path (e.g. ``~/.local/share/jupyter``)
    would shadow this environment's own and run the chapters without the pinned packages.
    """
    name = outcome.name
    if outcome.prefix is None and "NoSuchKernel" in outcome.error:
        return _failed("kernel", f"no kernel named '{name}'", f"JupyterLab finds no '{name}' kernel to run "
                       "the chapters. Install this environment's kernel:",
                       f"{python} -m ipykernel install --sys-prefix --name {name}")
    if outcome.prefix is None:
        return _failed("kernel", f"'{name}' did not run `import gmm_utils`: {outcome.error}", f"The '{name}' "
                       "kernel failed to start or to import gmm_utils. Reinstall the pinned environment:",
                       _reinstall(python))
    if os.path.realpath(outcome.prefix) != os.path.realpath(prefix):
        return _failed("kernel", f"'{name}' runs in {outcome.prefix}, not in this environment ({prefix})",
                       f"Another '{name}' kernel spec comes first on Jupyter's path (`{jupyter} kernelspec "
                       "list` shows where). Remove it; this environment's own kernel is then used:",
                       f"{jupyter} kernelspec remove -f {name}")
    return CheckResult("kernel", True, f"'{name}' starts in this environment and imports gmm_utils")


def check_device_count(count: int, backend: str, wanted: int = WANTED_DEVICES) -> CheckResult:
    """JAX must see ``wanted`` CPU devices, one per chain (``count`` on ``backend`` found)."""
    found = f"{count} x {backend} (want {wanted} x cpu, one per chain)"
    if backend != "cpu":
        return _failed("devices", found, f"JAX runs on '{backend}'; the book is written and timed for the CPU. "
                       "Set JAX_PLATFORMS=cpu in the shell that starts Python or Jupyter:",
                       "export JAX_PLATFORMS=cpu")
    if count != wanted:
        return _failed("devices", found, f"JAX started with {count} device(s) before the count could be set. Run "
                       "this in a fresh terminal, with nothing importing JAX at start-up (sitecustomize.py, "
                       f"PYTHONSTARTUP). In notebooks, gmm_utils.set_host_device_count({wanted}) comes first.")
    return CheckResult("devices", True, found)


def check_fit(outcome: FitOutcome | Exception, limit: float = FIT_TIME_LIMIT, max_rhat: float = FIT_MAX_RHAT,
              python: str = "python") -> CheckResult:
    """The tiny NUTS fit (:func:`tiny_fit`, or the error it raised) must converge within ``limit`` seconds."""
    if isinstance(outcome, Exception):
        return _failed("nuts fit", f"failed: {type(outcome).__name__}: {outcome}", "The fit failed, which points "
                       "to a broken JAX or NumPyro installation. Reinstall the pinned environment:", _reinstall(python))
    found = (f"{outcome.seconds:.1f} s (limit {limit:g} s), max R-hat {outcome.max_rhat:.3f}, "
             f"{outcome.chain_method} chains")
    if not outcome.max_rhat < max_rhat:  # also catches a NaN R-hat
        return _failed("nuts fit", found, f"The tiny fit did not converge (R-hat {outcome.max_rhat:.3f}, want "
                       f"below {max_rhat:g}): a broken JAX or NumPyro installation. Reinstall it:", _reinstall(python))
    if outcome.seconds > limit:
        return _failed("nuts fit", found, f"The tiny fit took {outcome.seconds:.1f} s: the chapters' fits would be "
                       "too slow to follow. Close other programs, plug the laptop in, check the devices line, and "
                       "run the check again. If it stays slow, use the book's Binder or Colab buttons instead.")
    return CheckResult("nuts fit", True, found)


def tiny_fit(seed: int = 0, num_chains: int = WANTED_DEVICES) -> FitOutcome:
    """Fit :func:`gmm_utils.marginal_model` (ordered, 300 + 300 draws) to 200 points; starts JAX."""
    import arviz as az

    from .data import simulate_gmm
    from .inference import choose_chain_method, run_nuts
    from .models import marginal_model

    data = simulate_gmm(n=200, weights=(0.4, 0.6), locs=(-2.0, 2.0), scales=(0.6, 0.8), seed=seed)
    start = time.perf_counter()
    idata = run_nuts(marginal_model, {"x": data.x, "k": 2, "ordered": True}, num_chains=num_chains,
                     num_warmup=300, num_samples=300, seed=seed, log_likelihood=False)
    seconds = time.perf_counter() - start
    rhat = az.rhat(idata, var_names=["weights", "locs", "scales"])
    max_rhat = max(float(rhat[name].max()) for name in rhat.data_vars)
    return FitOutcome(seconds=seconds, max_rhat=max_rhat, chain_method=choose_chain_method(num_chains))


def exit_code(results: Iterable[CheckResult]) -> int:
    """0 when every check passed, 1 otherwise."""
    return 0 if all(result.ok for result in results) else 1


def format_report(results: Sequence[CheckResult]) -> str:
    """One line per check (``ok`` or ``FAIL``), then a numbered list of what to fix, or "All good"."""
    width = max((len(result.name) for result in results), default=0)
    lines = [f"  {'ok' if r.ok else 'FAIL':<4}  {r.name:<{width}}  {r.found}" for r in results]
    problems = [result for result in results if not result.ok]
    if not problems:
        return "\n".join([*lines, "\nAll good: this machine is ready for the workshop."])
    lines.append(f"\n{len(problems)} problem{'s' if len(problems) > 1 else ''} to fix before the workshop:")
    for number, problem in enumerate(problems, start=1):
        lines += [f"  {number}. {problem.name}: {problem.found}",
                  textwrap.fill(problem.fix, width=88, initial_indent="     ", subsequent_indent="     ")]
        lines += [f"       $ {problem.command}"] if problem.command else []
    lines.append("Then run `python -m gmm_utils.check` again.")
    return "\n".join(lines)


def shown_python(executable: str = sys.executable, cwd: str | None = None) -> str:
    """``executable`` as a learner would type it: relative when it is inside ``cwd``."""
    try:
        relative = os.path.relpath(executable, os.getcwd() if cwd is None else cwd)
    except ValueError:  # another drive on Windows
        return executable
    return executable if relative.startswith("..") else relative


def _check_devices(wanted: int, python: str) -> CheckResult:
    """Set the device count and XLA's reductions as a chapter's first cell does, then ask JAX."""
    try:
        set_host_device_count(wanted)
        use_xla_reductions()
    except RuntimeError:
        pass  # JAX already started: the count shows it, and the fix says what to do
    try:
        import jax

        return check_device_count(jax.local_device_count(), jax.default_backend(), wanted)
    except Exception as error:  # a broken JAX: report it, do not crash the report
        return _failed("devices", f"JAX failed to start: {type(error).__name__}: {error}",
                       "Reinstall the pinned environment:", _reinstall(python))


def run_checks(requirements: str | os.PathLike[str] = REQUIREMENTS_FILE, *, time_limit: float = FIT_TIME_LIMIT,
               fit: bool = True, notebook: bool = True) -> list[CheckResult]:
    """Run every check on this machine, in order (``fit=False`` skips the fit, ``notebook=False``
    JupyterLab and its kernel). The device count is set first, before anything starts JAX."""
    python = shown_python()
    devices = _check_devices(WANTED_DEVICES, python)
    results = [check_python(), check_requirements_file(requirements)]
    if results[-1].ok:
        results += check_packages(load_pins(requirements), requirements=str(requirements), python=python)
    if notebook:
        jupyter = jupyter_next_to(sys.executable)
        results.append(check_jupyterlab(run_command([jupyter, "lab", "--version"]), python=python))
        results.append(check_kernel(start_kernel(KERNEL_NAME), python=python,
                                    jupyter=str(Path(python).with_name(jupyter.name))))
    results.append(devices)
    if fit:
        try:
            outcome: FitOutcome | Exception = tiny_fit()
        except Exception as error:  # reported, not raised
            outcome = error
        results.append(check_fit(outcome, time_limit, python=python))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m gmm_utils.check [--skip-fit] [--time-limit S] [--requirements PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m gmm_utils.check", description="Check this machine before "
                                     "the workshop 'Gaussian Mixture Models with NumPyro'.")
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS_FILE, help="the pinned requirements file")
    parser.add_argument("--time-limit", type=float, default=FIT_TIME_LIMIT, help="seconds for the tiny NUTS fit")
    parser.add_argument("--skip-fit", action="store_true", help="skip the tiny NUTS fit")
    args = parser.parse_args(argv)
    print("Checking this machine for the workshop 'Gaussian Mixture Models with NumPyro'...", flush=True)
    results = run_checks(args.requirements, time_limit=args.time_limit, fit=not args.skip_fit)
    print(format_report(results))
    return exit_code(results)


if __name__ == "__main__":
    raise SystemExit(main())
