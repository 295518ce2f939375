"""The backend registry: selection, the environment variable, clear errors."""
import os
import subprocess
import sys

import pytest

import tinyres as tr
from tinyres.backend import BackendUnavailableError, why_unavailable, kernels_for


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
    reason = why_unavailable("cupy")
    if reason is None:
        pytest.skip("cupy and a CUDA device are present, so nothing is unavailable")
    with pytest.raises(BackendUnavailableError, match="cupy") as caught:
        tr.set_backend("cupy")
    message = str(caught.value)
    assert ("not installed" in message and "pip install" in message) or "no CUDA device" in message


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_environment_variable_picks_the_default(name):
    if why_unavailable(name) is not None:
        pytest.skip(f"backend {name!r} unavailable: {why_unavailable(name)}")
    code = "import tinyres as tr; print(tr.get_backend())"
    env = dict(os.environ, TINYRES_BACKEND=name)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == name


def test_default_is_numba_when_importable():
    code = "import tinyres as tr; print(tr.get_backend())"
    env = {k: v for k, v in os.environ.items() if k != "TINYRES_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = "numba" if why_unavailable("numba") is None else "numpy"
    assert result.stdout.strip() == expected


# --------------------------------------------------------------------------- the kernel contract
def _defined_names(module_name):
    """Top-level names a kernel module's source defines, read without importing it (cupy
    cannot be imported on a machine without a GPU)."""
    import ast
    import importlib.util
    path = importlib.util.find_spec(module_name).origin
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = [arg.arg for arg in node.args.args]
        elif isinstance(node, ast.Assign):
            names.update({target.id: None for target in node.targets if isinstance(target, ast.Name)})
    return names


@pytest.mark.parametrize("backend_name", ["numpy", "numba", "cupy"])
def test_every_kernel_module_defines_the_contract_with_the_textbook_signatures(backend_name):
    from tinyres.backend import KERNEL_NAMES
    reference = _defined_names("tinyres.backend.numpy_kernels")
    defined = _defined_names(f"tinyres.backend.{backend_name}_kernels")
    missing = [name for name in KERNEL_NAMES if name not in defined]
    assert not missing, f"{backend_name}_kernels lacks {missing}"
    for name in KERNEL_NAMES:
        assert defined[name] == reference[name], \
            f"{backend_name}_kernels.{name}{defined[name]} differs from numpy_kernels.{name}{reference[name]}"


def test_the_contract_names_every_public_function_of_the_textbook():
    from tinyres.backend import KERNEL_NAMES
    public = [name for name, args in _defined_names("tinyres.backend.numpy_kernels").items()
              if args is not None and not name.startswith("_")]
    assert sorted(public) == sorted(name for name in KERNEL_NAMES if name not in ("xp", "name"))


def test_the_textbook_knows_nothing_of_threads_caches_or_blas_blocks():
    import ast
    import importlib.util
    path = importlib.util.find_spec("tinyres.backend.numpy_kernels").origin
    imported = {node.module for node in ast.walk(ast.parse(open(path, encoding="utf-8").read()))
                if isinstance(node, ast.ImportFrom)}
    assert imported <= {"guard", "shapes"}, imported


def test_cpu_threads_chooses_the_numba_threading_layer_without_the_kernels():
    pytest.importorskip("numba", reason="numba is not installed")
    code = ("import sys; from tinyres.backend import cpu_threads; cpu_threads.set_num_threads(1); "
            "import numba; print(numba.config.THREADING_LAYER, "
            "'tinyres.backend.numba_kernels' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["workqueue", "False"]
