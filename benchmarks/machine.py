"""What a benchmark ran on: the CPU, the BLAS and OpenMP libraries loaded, the variables, the versions.

A timing means little without the machine behind it.  The same OpenBLAS runs its sgemm at
half speed when ``OPENBLAS_CORETYPE`` forces older kernels than the CPU has (some machines
set ``OPENBLAS_CORETYPE=Haswell`` and ``OPENBLAS_L2_SIZE`` for old OpenBLAS builds), while
PyTorch's oneDNN picks its kernels itself and is unaffected.  So every benchmark prints
:func:`print_header` first and stores :func:`describe_machine` in its JSON under
``"machine"``.  On its own it prints the header and the description as JSON:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/machine.py
"""
import importlib.metadata
import json
import os
import pathlib
import platform
import subprocess
import sys

from threadpoolctl import threadpool_info

from tinyres.backend.cpu_threads import THREAD_VARIABLES

# Variables that change which kernels OpenBLAS runs and how it blocks its matrices.
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Variables that decide how long idle OpenMP and OpenBLAS threads spin before they sleep.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")
PACKAGES = ("numpy", "numba", "torch", "threadpoolctl", "tinyres")
# What threadpoolctl reports of each library, under the names it uses.
LIBRARY_FIELDS = ("internal_api", "version", "architecture", "threading_layer", "num_threads",
                  "filepath")
CPU_FLAGS = ("avx2", "avx512f")
RERUN = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"

# A fresh interpreter that imports NumPy alone loads NumPy's BLAS and nothing else.
_NUMPY_BLAS_FILES = ("import json, numpy, threadpoolctl; print(json.dumps("
                     "[info['filepath'] for info in threadpoolctl.threadpool_info()"
                     " if info['user_api'] == 'blas']))")


def cpu_description(cpuinfo_path="/proc/cpuinfo"):
    """The CPU's model name, the cores this process may use, and whether it has AVX2 / AVX-512F.

    The flags come from ``/proc/cpuinfo``; where that file is missing (macOS, Windows) they
    are ``"unknown"``.  Returns ``{"model", "cores_available", "cpu_count", "avx2", "avx512f"}``.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:    # no sched_getaffinity outside Linux
        cores = os.cpu_count()
    description = {"model": platform.processor() or platform.machine() or "unknown",
                   "cores_available": cores, "cpu_count": os.cpu_count()}
    description.update({flag: "unknown" for flag in CPU_FLAGS})
    try:
        lines = pathlib.Path(cpuinfo_path).read_text().splitlines()
    except OSError:
        return description
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())   # the first processor's lines
    description["model"] = fields.get("model name", description["model"])
    flags = set(fields.get("flags", "").split())
    if flags:
        description.update({flag: flag in flags for flag in CPU_FLAGS})
    return description


def _numpy_blas_files():
    """Real paths of the BLAS libraries NumPy loads by itself (asked of a fresh interpreter).

    In this process PyTorch (or SciPy) may have loaded BLAS libraries of their own, and
    threadpoolctl cannot say which one NumPy calls; an interpreter that imports NumPy
    alone can.  Returns an empty set when that interpreter fails.
    """
    try:
        completed = subprocess.run([sys.executable, "-c", _NUMPY_BLAS_FILES], capture_output=True,
                                   text=True, timeout=120, check=True)
        return {os.path.realpath(path) for path in json.loads(completed.stdout.strip().splitlines()[-1])}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return set()


def library_descriptions():
    """NumPy's BLAS and every other BLAS / OpenMP library loaded in this process.

    Each library is threadpoolctl's report: internal_api (openblas, mkl, openmp...),
    version, architecture (the core type its kernels are built for), threading_layer,
    num_threads and filepath; a field the library does not report is None.
    Returns ``(numpy_blas or None, [other libraries])``.
    """
    import numpy  # noqa: F401  -- loads NumPy's BLAS, so that threadpoolctl sees it
    numpy_files = _numpy_blas_files()
    numpy_blas, others = None, []
    for info in threadpool_info():
        library = {field: info.get(field) for field in LIBRARY_FIELDS}
        library["user_api"] = info.get("user_api")
        if numpy_blas is None and os.path.realpath(info["filepath"]) in numpy_files:
            numpy_blas = library
        else:
            others.append(library)
    return numpy_blas, others


def package_versions():
    """Versions of python and of the packages in :data:`PACKAGES` ("not installed" if absent)."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _torch_description():
    """PyTorch's own view of its CPU kernels, if this process has imported torch (else None)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available(), "num_threads": torch.get_num_threads()}


def describe_machine():
    """A JSON-able description of the machine and software a benchmark runs on.

    Returns ``{"cpu": cpu_description(), "numpy_blas": {...}, "other_libraries": [...],
    "torch_cpu": {...} or None, "environment": {variable: value or None}, "versions": {...},
    "platform": str}``.
    """
    numpy_blas, others = library_descriptions()
    return {"cpu": cpu_description(), "numpy_blas": numpy_blas, "other_libraries": others,
            "torch_cpu": _torch_description(),
            "environment": {name: os.environ.get(name)
                            for name in OPENBLAS_VARIABLES + THREAD_VARIABLES + WAIT_VARIABLES},
            "versions": package_versions(), "platform": platform.platform()}


def forced_core_type_warning(machine):
    """The one-sentence warning for a forced OpenBLAS core type, or None when none is forced."""
    environment = machine["environment"]
    if not environment.get("OPENBLAS_CORETYPE"):
        return None
    core_type, l2_size = environment["OPENBLAS_CORETYPE"], environment.get("OPENBLAS_L2_SIZE")
    also = f" (and OPENBLAS_L2_SIZE={l2_size} its block sizes)" if l2_size else ""
    return (f"warning: OPENBLAS_CORETYPE={core_type} forces NumPy's OpenBLAS to run its {core_type} "
            f"kernels{also}, so these timings do not show what a user's machine does; "
            f"rerun with {RERUN}.")


def _library_line(library):
    name = pathlib.Path(library["filepath"]).name
    architecture = f", {library['architecture']} kernels" if library.get("architecture") else ""
    layer = f", {library['threading_layer']}" if library.get("threading_layer") else ""
    version = f" {library['version']}" if library.get("version") else ""
    return f"{library['internal_api']}{version}{architecture}{layer}, {library['num_threads']} threads ({name})"


def print_header(machine, file=None):
    """Print ``machine`` (from :func:`describe_machine`) as a few lines, and warn on stderr.

    The warning (one sentence, on stderr) appears when ``OPENBLAS_CORETYPE`` forces a core
    type: NumPy's GEMM then runs kernels older than the CPU's.
    """
    file = file or sys.stdout
    cpu = machine["cpu"]
    flags = ", ".join(f"{flag} {'yes' if cpu[flag] is True else 'no' if cpu[flag] is False else 'unknown'}"
                      for flag in CPU_FLAGS)
    print(f"machine: {cpu['model']}, {cpu['cores_available']} cores available, {flags}", file=file)
    blas = machine["numpy_blas"]
    print(f"  NumPy's BLAS: {_library_line(blas) if blas else 'not found by threadpoolctl'}", file=file)
    for library in machine["other_libraries"]:
        print(f"  also loaded: {_library_line(library)}", file=file)
    if machine.get("torch_cpu"):
        torch_cpu = machine["torch_cpu"]
        print(f"  PyTorch: {torch_cpu['cpu_capability']} kernels, oneDNN "
              f"{'on' if torch_cpu['mkldnn'] else 'off'}, {torch_cpu['num_threads']} threads", file=file)
    variables = ", ".join(f"{name}={value}" for name, value in machine["environment"].items()
                          if value is not None) or "none set"
    print(f"  variables: {variables}", file=file)
    print("  versions: " + ", ".join(f"{name} {version}" for name, version in machine["versions"].items()),
          file=file, flush=True)
    warning = forced_core_type_warning(machine)
    if warning:
        print(warning, file=sys.stderr, flush=True)


def record_machine():
    """Describe the machine, print it as the header, and return the description (for the JSON)."""
    machine = describe_machine()
    print_header(machine)
    return machine


if __name__ == "__main__":
    print(json.dumps(record_machine(), indent=1))
