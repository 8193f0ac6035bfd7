"""gmm_utils.set_host_device_count and use_xla_reductions: work before JAX starts, refuse clearly after."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import gmm_utils


def run_python(code: str) -> subprocess.CompletedProcess:
    # A fresh interpreter: this test process may have started JAX already.
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_sets_the_device_count_before_jax_starts():
    result = run_python(
        """
        import gmm_utils
        gmm_utils.set_host_device_count(3)
        import jax
        print(jax.local_device_count())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_replaces_an_earlier_flag_instead_of_appending():
    result = run_python(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2 --xla_cpu_enable_fast_math=false"
        import gmm_utils
        gmm_utils.set_host_device_count(5)
        print(os.environ["XLA_FLAGS"])
        import jax
        print(jax.local_device_count())
        """
    )
    assert result.returncode == 0, result.stderr
    flags, count = result.stdout.strip().splitlines()
    assert flags.count("xla_force_host_platform_device_count") == 1
    assert "--xla_cpu_enable_fast_math=false" in flags
    assert count == "5"


def test_raises_after_jax_started_with_another_count():
    result = run_python(
        """
        import gmm_utils
        gmm_utils.set_host_device_count(2)
        import jax.numpy as jnp
        jnp.ones(3).sum()              # JAX's backend starts here
        gmm_utils.set_host_device_count(2)  # the same count: accepted
        try:
            gmm_utils.set_host_device_count(4)
        except RuntimeError as error:
            print("RuntimeError:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "RuntimeError: JAX has already started with 2 device(s)" in result.stdout
    assert "Restart the kernel" in result.stdout


@pytest.mark.parametrize("count", [0, -1, 2.0, "4", None])
def test_rejects_a_count_that_is_not_a_positive_integer(count):
    with pytest.raises(ValueError, match="`count`"):
        gmm_utils.set_host_device_count(count)


def test_usable_cores_counts_the_cores_this_process_may_use():
    import os

    from gmm_utils import usable_cores

    cores = usable_cores()
    assert isinstance(cores, int) and 1 <= cores <= (os.cpu_count() or cores)
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))


def test_xla_reductions_before_jax_starts():
    result = run_python(
        """
        import os
        import gmm_utils
        gmm_utils.set_host_device_count(2)
        print(gmm_utils.use_xla_reductions(), gmm_utils.use_xla_reductions())
        print(os.environ["XLA_FLAGS"])
        import jax.numpy as jnp
        print(float(jnp.arange(10.0).sum()))  # JAX starts with the flag
        try:
            os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
            gmm_utils.use_xla_reductions()
        except RuntimeError as error:
            print("RuntimeError:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    applied, flags, total, error = result.stdout.strip().splitlines()
    assert applied == "True True"
    assert flags.count("ynn_fusion_type") == 1 and "device_count=2" in flags
    assert total == "45.0"
    assert "RuntimeError: JAX has already started" in error and "Restart the kernel" in error


def test_xla_reductions_leave_an_unknown_jaxlib_alone(monkeypatch):
    from importlib import metadata

    from gmm_utils import devices

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    monkeypatch.setattr(metadata, "version", lambda name: "99.0.0")
    assert devices.use_xla_reductions() is False
    assert "ynn" not in devices.os.environ["XLA_FLAGS"]


def test_xla_reductions_follow_the_jaxlib_of_requirements_txt(monkeypatch, tmp_path):
    # No copy of the pin: the flag is set only on the jaxlib requirements.txt pins.
    from gmm_utils import check, devices

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    monkeypatch.setattr(check, "REQUIREMENTS_FILE", tmp_path / "requirements.txt")  # e.g. Colab: no repository
    assert devices.use_xla_reductions() is False
    (tmp_path / "requirements.txt").write_text("jaxlib==99.0.0\n")  # another jaxlib than the installed one
    assert devices.use_xla_reductions() is False
    assert "ynn" not in devices.os.environ["XLA_FLAGS"]


def test_enable_compilation_cache_sets_the_directory(tmp_path, monkeypatch):
    result = run_python(
        f"""
        import os
        os.environ["GMM_BOOK_JAX_CACHE"] = {str(tmp_path / "elsewhere")!r}
        import gmm_utils
        from gmm_utils.devices import default_cache_dir
        print(default_cache_dir())
        path = gmm_utils.enable_compilation_cache({str(tmp_path / "cache")!r})
        import jax
        print(path, jax.config.jax_compilation_cache_dir)
        """
    )
    assert result.returncode == 0, result.stderr
    default, configured = result.stdout.strip().splitlines()
    assert default == str(tmp_path / "elsewhere")
    cache = tmp_path / "cache"
    assert configured == f"{cache} {cache}" and cache.is_dir()
