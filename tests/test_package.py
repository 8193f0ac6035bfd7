"""The package as a whole: a cheap import, every public name resolves and is documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

import gmm_utils


def test_import_does_not_import_jax_or_start_its_backend():
    code = textwrap.dedent(
        """
        import sys
        import gmm_utils
        data = gmm_utils.simulate_gmm(n=10)      # the eager part needs NumPy only
        print("jax" in sys.modules, "numpyro" in sys.modules, "matplotlib" in sys.modules)
        import jax
        from jax._src import xla_bridge
        print(xla_bridge.backends_are_initialized())
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    imported, started = result.stdout.strip().splitlines()
    assert imported == "False False False"
    assert started == "False"


@pytest.mark.parametrize("name", gmm_utils.__all__)
def test_every_public_name_resolves_and_has_a_docstring(name):
    value = getattr(gmm_utils, name)
    if inspect.isfunction(value) or inspect.isclass(value):
        assert inspect.getdoc(value), f"gmm_utils.{name} has no docstring"


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_helper'"):
        gmm_utils.no_such_helper  # noqa: B018


def test_dir_lists_the_lazy_names():
    assert {"run_nuts", "marginal_model", "simulate_gmm"} <= set(dir(gmm_utils))
