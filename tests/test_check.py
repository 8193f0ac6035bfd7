"""gmm_utils.check: each check on good and fake bad input, the report, and the command itself."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from gmm_utils import check
from gmm_utils.check import CheckResult, FitOutcome

FAST_FIT = FitOutcome(seconds=3.0, max_rhat=1.002, chain_method="parallel")


# --- requirements -------------------------------------------------------------------


def test_parse_requirements_keeps_exact_pins_only():
    text = """
    # a comment line
    numpyro==0.22.0  # trailing comment
    JAX[cpu] == 0.10.2
    Sphinx_Exercise==1.2.1
    -e .
    -r other.txt
    scipy>=1.10
    pandas
    jaxlib==0.10.2 ; sys_platform != "win32"
    """
    assert check.parse_requirements(text) == {
        "numpyro": "0.22.0",
        "jax": "0.10.2",
        "sphinx-exercise": "1.2.1",
        "jaxlib": "0.10.2",
    }


def test_parse_requirements_rejects_a_non_string():
    with pytest.raises(TypeError, match="`text`"):
        check.parse_requirements(["numpyro==0.22.0"])


def test_the_pins_are_read_from_the_repository_requirements():
    assert check.REQUIREMENTS_FILE == ROOT / "requirements.txt"
    pins = check.load_pins()
    assert pins == check.parse_requirements((ROOT / "requirements.txt").read_text())
    assert {"jax", "jaxlib", "numpyro", "jupyterlab"} <= set(pins)


def test_load_pins_reads_the_file_it_is_given(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpyro==9.9.9\n")
    assert check.load_pins(requirements) == {"numpyro": "9.9.9"}
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        check.load_pins(tmp_path / "missing.txt")


def test_a_missing_requirements_file_is_a_failure_that_says_so(tmp_path):
    assert check.check_requirements_file(ROOT / "requirements.txt").ok
    result = check.check_requirements_file(tmp_path / "requirements.txt")
    assert not result.ok
    assert "not found" in result.found and "no package version was checked" in result.found
    assert "clone" in result.fix and "--requirements" in result.fix
    assert result.command.startswith("git clone ")


# --- the checks ---------------------------------------------------------------------


@pytest.mark.parametrize(("version", "ok"), [("3.11.0", True), ("3.13.2", True), ("3.10.14", False), ("2.7.18", False)])
def test_check_python(version, ok):
    result = check.check_python(version)
    assert result.ok is ok
    assert version in result.found
    if not ok:
        assert "3.11" in result.fix and "venv" in result.command


def test_check_python_defaults_to_the_running_python():
    assert check.check_python().ok is (sys.version_info[:2] >= (3, 11))


def test_check_python_rejects_a_version_without_numbers():
    with pytest.raises(ValueError, match="`version`"):
        check.check_python("three")


def test_check_package_matches_versions_not_strings():
    assert check.check_package("jupyter-book", "1.0.4.post1", "1.0.4.post1").ok
    assert check.check_package("numpyro", "0.22.0", "0.22").ok  # the same version, per PEP 440


def test_check_package_fails_on_a_wrong_or_missing_version():
    wrong = check.check_package("numpyro", "0.22.0", "0.21.0", requirements="/repo/requirements.txt")
    assert not wrong.ok
    assert "0.21.0" in wrong.found and "0.22.0" in wrong.found
    assert wrong.command == "python -m pip install -r /repo/requirements.txt"
    for installed in (None, "not installed"):
        missing = check.check_package("funsor", "0.4.8", installed)
        assert not missing.ok
        assert "not installed" in missing.found
        assert "pip install" in missing.command


def test_check_packages_flags_exactly_the_mismatched_one():
    pins = {"jax": "0.10.2", "numpyro": "0.22.0", "arviz": "0.23.4"}
    installed = {"jax": "0.10.2", "numpyro": "0.19.0", "arviz": "0.23.4"}
    results = check.check_packages(pins, installed)
    assert [r.name for r in results] == ["jax", "numpyro", "arviz"]
    assert [r.name for r in results if not r.ok] == ["numpyro"]


def test_check_packages_looks_up_this_environment_by_default():
    results = check.check_packages({"pytest": "0.0.1", "no-such-package-gmm": "1.0"})
    assert not any(r.ok for r in results)
    assert "not installed" in results[1].found


@pytest.mark.parametrize(
    ("count", "backend", "ok", "command"),
    [(4, "cpu", True, ""), (1, "cpu", False, ""), (8, "cpu", False, ""), (4, "gpu", False, "export JAX_PLATFORMS=cpu")],
)
def test_check_device_count(count, backend, ok, command):
    result = check.check_device_count(count, backend, wanted=4)
    assert result.ok is ok
    assert f"{count} x {backend}" in result.found
    assert result.command == command
    if not ok:
        assert result.fix


def test_check_fit_passes_a_fast_converged_fit():
    result = check.check_fit(FAST_FIT, limit=15.0)
    assert result.ok
    assert "3.0 s" in result.found and "1.002" in result.found


def test_check_fit_fails_a_slow_fit():
    slow = FitOutcome(seconds=22.5, max_rhat=1.001, chain_method="vectorized")
    result = check.check_fit(slow, limit=15.0)
    assert not result.ok
    assert "22.5 s" in result.found and "limit 15 s" in result.found
    assert "Binder" in result.fix
    assert check.check_fit(slow, limit=30.0).ok  # the limit is a parameter


@pytest.mark.parametrize("max_rhat", [1.3, math.nan])
def test_check_fit_fails_a_fit_that_did_not_converge(max_rhat):
    result = check.check_fit(FitOutcome(seconds=2.0, max_rhat=max_rhat, chain_method="parallel"))
    assert not result.ok
    assert "did not converge" in result.fix
    assert "--force-reinstall" in result.command


def test_a_fit_that_raised_is_reported():
    result = check.check_fit(RuntimeError("XLA exploded"))
    assert not result.ok
    assert "RuntimeError: XLA exploded" in result.found
    assert result.command


def test_fixes_name_the_interpreter_that_ran_the_check():
    # A learner runs `.venv/bin/python -m gmm_utils.check`; a bare `python -m pip` would
    # install into whatever `python` comes first on the PATH.
    assert check.check_package("numpyro", "0.22.0", None, python=".venv/bin/python").command.startswith(
        ".venv/bin/python -m pip install"
    )
    slow = check.check_fit(FitOutcome(seconds=2.0, max_rhat=1.5, chain_method="parallel"), python=".venv/bin/python")
    assert slow.command.startswith(".venv/bin/python -m pip install --force-reinstall")
    assert check.shown_python("/book/.venv/bin/python", cwd="/book") == ".venv/bin/python"
    assert check.shown_python("/usr/bin/python3", cwd="/book") == "/usr/bin/python3"


# --- the notebook interface: JupyterLab and its kernel ------------------------------


def test_jupyter_is_looked_up_next_to_the_interpreter_unresolved():
    assert check.jupyter_next_to("/book/.venv/bin/python") == Path("/book/.venv/bin/jupyter")
    assert check.jupyter_next_to(sys.executable).parent == Path(sys.executable).parent


def test_check_jupyterlab_passes_a_version():
    outcome = check.CommandOutcome((".venv/bin/jupyter", "lab", "--version"), 0, "4.6.6")
    result = check.check_jupyterlab(outcome)
    assert result.ok
    assert "4.6.6" in result.found


def test_check_jupyterlab_fails_when_jupyter_is_missing(tmp_path):
    outcome = check.run_command([tmp_path / "bin" / "jupyter", "lab", "--version"])
    assert outcome.returncode is None
    result = check.check_jupyterlab(outcome, python=".venv/bin/python")
    assert not result.ok
    assert "did not run" in result.found and "No such file" in result.found
    assert "JupyterLab" in result.fix
    assert result.command == ".venv/bin/python -m pip install -r requirements.txt"


def test_check_jupyterlab_fails_when_jupyter_has_no_lab(tmp_path):
    # What a fresh environment without JupyterLab printed (issue 12): `jupyter` exists,
    # `jupyter-lab` does not.
    fake = tmp_path / "jupyter"
    fake.write_text("#!/bin/sh\necho 'Jupyter command `jupyter-lab` not found.' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = check.check_jupyterlab(check.run_command([fake, "lab", "--version"]))
    assert not result.ok
    assert "exited with 1" in result.found and "`jupyter-lab` not found" in result.found
    assert "pip install -r requirements.txt" in result.command


def test_check_jupyterlab_fails_on_output_that_is_not_a_version(tmp_path):
    fake = tmp_path / "jupyter"
    fake.write_text("#!/bin/sh\necho 'usage: jupyter [-h]'\nexit 0\n")
    fake.chmod(0o755)
    assert not check.check_jupyterlab(check.run_command([fake, "lab", "--version"])).ok


def test_check_kernel_passes_this_environment_and_fails_another():
    assert check.check_kernel(check.KernelOutcome("python3", sys.prefix)).ok
    other = check.check_kernel(check.KernelOutcome("python3", "/usr"), prefix="/book/.venv", jupyter=".venv/bin/jupyter")
    assert not other.ok
    assert "/usr" in other.found and "/book/.venv" in other.found
    assert other.command == ".venv/bin/jupyter kernelspec remove -f python3"


def test_a_missing_kernel_is_reported_with_the_install_command(tmp_path):
    outcome = check.start_kernel("no-such-kernel-gmm", timeout=30, kernel_dirs=[tmp_path])
    assert outcome.prefix is None and "NoSuchKernel" in outcome.error
    result = check.check_kernel(outcome, python=".venv/bin/python")
    assert not result.ok
    assert result.command == ".venv/bin/python -m ipykernel install --sys-prefix --name no-such-kernel-gmm"


def test_a_kernel_that_dies_is_reported_not_raised(tmp_path):
    spec = tmp_path / "gmm-dies"
    spec.mkdir()
    argv = [sys.executable, "-c", "import sys; sys.exit(3)", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "dies", "language": "python"}))
    outcome = check.start_kernel("gmm-dies", timeout=60, kernel_dirs=[tmp_path])
    assert outcome.prefix is None
    assert "died" in outcome.error, outcome.error
    result = check.check_kernel(outcome)
    assert not result.ok
    assert "did not run `import gmm_utils`" in result.found
    assert "--force-reinstall" in result.command


# --- the report ---------------------------------------------------------------------


def test_report_says_all_good_and_exits_0_when_every_check_passes():
    results = [check.check_python("3.11.7"), check.check_device_count(4, "cpu"), check.check_fit(FAST_FIT)]
    report = check.format_report(results)
    assert "All good" in report
    assert "FAIL" not in report and "Fix" not in report
    assert check.exit_code(results) == 0


def test_report_lists_every_problem_with_its_fix_and_exits_1():
    results = [
        check.check_python("3.11.7"),
        check.check_package("numpyro", "0.22.0", "0.21.0"),
        check.check_device_count(1, "cpu"),
        check.check_fit(FitOutcome(seconds=40.0, max_rhat=1.0, chain_method="vectorized")),
    ]
    report = check.format_report(results)
    assert check.exit_code(results) == 1
    assert "3 problems to fix" in report
    assert "All good" not in report
    numbered = re.findall(r"^  (\d)\. ([^:]+):", report, flags=re.M)
    assert numbered == [("1", "numpyro"), ("2", "devices"), ("3", "nuts fit")]
    assert "$ python -m pip install -r requirements.txt" in report
    assert max(len(line) for line in report.splitlines() if not line.lstrip().startswith("$")) <= 90


def test_exit_code_of_no_results_is_0():
    assert check.exit_code([]) == 0
    assert check.exit_code([CheckResult("x", False, "broken", "mend it")]) == 1


# --- the command --------------------------------------------------------------------


def test_the_command_checks_this_machine():
    """Run ``python -m gmm_utils.check`` once, in a fresh interpreter (JAX not started).

    This environment is the pinned one, so Python, packages, JupyterLab, the notebooks'
    kernel and devices must pass. The fit must run and converge; on a loaded machine it may exceed its time limit, and
    then the command must say so and exit 1.
    """
    result = subprocess.run(
        [sys.executable, "-m", "gmm_utils.check"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    out = result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = {m.group(2): m.group(1) for m in re.finditer(r"^  (ok|FAIL)\s+(\S+(?: fit| lab)?)\s", out, flags=re.M)}
    expected = ["python", "requirements", *check.load_pins(), "jupyter lab", "kernel", "devices", "nuts fit"]
    assert sorted(lines) == sorted(expected), out
    assert all(lines[name] == "ok" for name in expected[:-1]), out
    assert re.search(r"^  (ok|FAIL)\s+devices\s+4 x cpu", out, flags=re.M), out
    fit_line = re.search(r"nuts fit\s+([\d.]+) s \(limit 15 s\), max R-hat ([\d.]+)", out)
    assert fit_line, out
    seconds, rhat = map(float, fit_line.groups())
    assert rhat < check.FIT_MAX_RHAT, out
    if lines["nuts fit"] == "ok":
        assert seconds <= check.FIT_TIME_LIMIT
        assert result.returncode == 0 and "All good" in out, out
    else:  # only slowness may fail here, and then the report must say so
        assert seconds >= check.FIT_TIME_LIMIT, out  # printed to 0.1 s
        assert result.returncode == 1, out
        assert "1 problem to fix" in out and "1. nuts fit" in out, out


def test_the_command_says_when_the_requirements_file_is_missing(tmp_path):
    missing = tmp_path / "requirements.txt"
    result = subprocess.run(
        [sys.executable, "-m", "gmm_utils.check", "--skip-fit", "--requirements", str(missing)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout
    assert re.search(rf"^  FAIL\s+requirements\s+{re.escape(str(missing))} not found", result.stdout, flags=re.M)
    assert not re.search(r"^  (ok|FAIL)\s+numpyro\s", result.stdout, flags=re.M)  # no pins, no package lines
    assert "1 problem to fix" in result.stdout, result.stdout
