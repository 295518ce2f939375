"""The backend registry: selection, the environment variable, clear errors."""
import os
import subprocess
import sys

import pytest

import tinyres as tr
from tinyres.backend import BackendUnavailableError, _why_unavailable, kernels_for


def test_numpy_is_always_available():
    assert "numpy" in tr.available_backends()


def test_use_backend_restores_the_previous_choice():
    before = tr.get_backend()
    with tr.use_backend("numpy"):
        assert tr.get_backend() == "numpy"
        import numpy as np
        assert kernels_for(np.ones(1)).name == "numpy"
    assert tr.get_backend() == before


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        tr.set_backend("tensorflow")


def test_unavailable_backend_says_why_and_how_to_fix():
    reason = _why_unavailable("cupy")
    if reason is None:
        pytest.skip("cupy and a CUDA device are present, so nothing is unavailable")
    with pytest.raises(BackendUnavailableError, match="cupy") as caught:
        tr.set_backend("cupy")
    message = str(caught.value)
    assert ("not installed" in message and "pip install" in message) or "no CUDA device" in message


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_environment_variable_picks_the_default(name):
    if _why_unavailable(name) is not None:
        pytest.skip(f"backend {name!r} unavailable: {_why_unavailable(name)}")
    code = "import tinyres as tr; print(tr.get_backend())"
    env = dict(os.environ, TINYRES_BACKEND=name)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == name


def test_default_is_numba_when_importable():
    code = "import tinyres as tr; print(tr.get_backend())"
    env = {k: v for k, v in os.environ.items() if k != "TINYRES_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = "numba" if _why_unavailable("numba") is None else "numpy"
    assert result.stdout.strip() == expected
