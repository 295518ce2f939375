"""The benchmarks run end to end (on tiny shapes), record the machine, alternate, and chart.

Timings are never asserted: only that every op is timed on every backend and on PyTorch,
in alternation on fresh inputs, that the ratios are worked out against the right rows,
that the JSON describes the machine, and that a forced OpenBLAS core type is warned about.
"""
import json
import pathlib
import struct
import sys

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
LIBRARY_FIELDS = {"internal_api", "version", "architecture", "threading_layer", "num_threads",
                  "filepath"}
KERNEL_OPS = {"conv2d fwd", "conv2d fwd+bwd", "max_pool2d 3x3 s2 fwd+bwd", "batch_norm fwd+bwd",
              "relu fwd+bwd", "max_pool2d kernels fwd+bwd", "batch_norm kernels fwd+bwd",
              "relu kernels fwd+bwd"}


@pytest.fixture
def benchmarks(monkeypatch, threads):
    """The benchmarks folder on sys.path, with no pause between timed calls.

    The scripts set the thread counts of tinyres (restored by the ``threads`` fixture) and
    of PyTorch (restored here).
    """
    import torch
    torch_threads = torch.get_num_threads()
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import alternation
    monkeypatch.setattr(alternation, "PAUSE_SECONDS", 0.0)
    yield alternation
    torch.set_num_threads(torch_threads)
    for name in ("bench_kernels", "bench_models", "bench_training"):
        sys.modules.pop(name, None)


@pytest.fixture
def alternations(benchmarks, monkeypatch):
    """Every time_alternated call the benchmarks make: (names, calls, warmup, order, first inputs)."""
    calls = []
    real = benchmarks.time_alternated

    def spy(contenders, repeats, warmup=1, **options):
        first_inputs = {}
        for contender in contenders:
            with contender.context():
                first_inputs[contender.name] = contender.prepare()
        order = []
        times = real(contenders, repeats, warmup=warmup, order=order, **options)
        calls.append(dict(names=[c.name for c in contenders], calls=repeats, warmup=warmup,
                          order=order, inputs=first_inputs, times=times))
        return times

    monkeypatch.setattr(benchmarks, "time_alternated", spy)
    return calls


@pytest.fixture
def bench_kernels(benchmarks, monkeypatch):
    import bench_kernels
    monkeypatch.setattr(bench_kernels, "RESNET20_CONVS", [("tiny 4x6x6 4->8 3x3", 2, 4, 6, 6, 8, 3, 1, 1)])
    monkeypatch.setattr(bench_kernels, "RESNET50_CONVS", [("tiny 3x9x9 7x7 s2", 1, 3, 9, 9, 4, 7, 2, 3)])
    monkeypatch.setattr(bench_kernels, "ACTIVATION_SHAPES", [("tiny 2x3x5x5", (2, 3, 5, 5))])
    monkeypatch.setattr(bench_kernels, "TRAINING_BATCH", 2)
    monkeypatch.setattr(bench_kernels, "TRAINING_IMAGE", (3, 8, 8))
    monkeypatch.setattr(bench_kernels, "time_cold_start", lambda: {})
    return bench_kernels


def _host(array):
    """A NumPy copy of a tinyres tensor, a PyTorch tensor or a backend array."""
    import torch
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    if hasattr(array, "numpy"):          # a tinyres Tensor
        return array.numpy()
    return array.get() if hasattr(array, "get") else np.asarray(array)


def _png_size(path):
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def _assert_describes_the_machine(machine):
    assert machine["cpu"]["model"] and machine["cpu"]["cores_available"] >= 1
    for flag in ("avx2", "avx512f"):
        assert machine["cpu"][flag] in (True, False, "unknown")
    assert LIBRARY_FIELDS <= set(machine["numpy_blas"])
    assert machine["numpy_blas"]["internal_api"] in ("openblas", "mkl", "blis", "accelerate")
    for library in machine["other_libraries"]:
        assert LIBRARY_FIELDS <= set(library)
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                     "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "TINYRES_NUM_THREADS"):
        assert variable in machine["environment"]
    assert {"python", "numpy", "numba", "torch", "tinyres"} <= set(machine["versions"])


# --------------------------------------------------------------------------- machine.py
def test_machine_description_names_cpu_blas_variables_and_versions(benchmarks, monkeypatch):
    import machine
    import torch  # noqa: F401  -- its OpenMP library is then loaded, as in every benchmark
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    description = machine.describe_machine()
    _assert_describes_the_machine(description)
    assert description["environment"]["OPENBLAS_L2_SIZE"] == "1048576"
    assert any(library["user_api"] == "openmp" for library in description["other_libraries"])
    assert description["torch_cpu"]["num_threads"] >= 1
    json.dumps(description)                                   # JSON-able as it is


def test_cpu_flags_come_from_cpuinfo_and_are_unknown_without_it(benchmarks, tmp_path):
    import machine
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 avx2\n\n"
                       "processor\t: 1\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 avx2\n")
    described = machine.cpu_description(cpuinfo)
    assert described["model"] == "Example CPU 9000"
    assert described["avx2"] is True and described["avx512f"] is False
    missing = machine.cpu_description(tmp_path / "no such file")
    assert missing["avx2"] == missing["avx512f"] == "unknown"


def test_a_forced_core_type_is_warned_about_and_an_unforced_one_is_not(benchmarks, monkeypatch, capsys):
    import machine
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    machine.print_header(machine.describe_machine())
    output = capsys.readouterr()
    warning = output.err.strip()
    assert "OPENBLAS_CORETYPE=Haswell" in warning and "OPENBLAS_L2_SIZE=1048576" in warning
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in warning
    assert len(warning.splitlines()) == 1 and warning.count(". ") == 0     # one sentence
    assert "machine:" in output.out and "NumPy's BLAS" in output.out

    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.delenv("OPENBLAS_L2_SIZE")
    machine.print_header(machine.describe_machine())
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- alternation.py
def test_alternation_interleaves_calls_on_inputs_prepared_ahead_and_used_once(benchmarks):
    events = []

    def contender(name):
        made = iter(range(100))

        def prepare():
            inputs = (name, next(made))
            events.append(("prepare", inputs))
            return inputs

        def run(inputs):
            events.append(("run", inputs))
        return benchmarks.Contender(name, prepare, run)

    order = []
    times = benchmarks.time_alternated([contender("a"), contender("b"), contender("c")], calls=4,
                                       warmup=1, pause=0.0, ahead=2, order=order)
    assert {name: len(calls) for name, calls in times.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(ms >= 0 for calls in times.values() for ms in calls)
    assert [name for name, _ in order] == ["a", "b", "c"] * 5           # one call of each in turn
    runs = [inputs for kind, inputs in events if kind == "run"]
    assert [name for name, _ in runs] == ["a", "b", "c"] * 5
    assert len(set(runs)) == len(runs)                                  # fresh inputs every call
    # two rounds are made before they run, in the order they will run, then the next two
    kinds = [kind for kind, _ in events]
    assert kinds == ["prepare"] * 6 + ["run"] * 6 + ["prepare"] * 6 + ["run"] * 6 + \
        ["prepare"] * 3 + ["run"] * 3
    assert [inputs for kind, inputs in events[:6]] == runs[:6]


# --------------------------------------------------------------------------- bench_kernels.py
def test_bench_kernels_times_every_op_on_every_backend(bench_kernels, alternations, tmp_path):
    import tinyres as tr
    bench_kernels.main(["--repeats", "1", "--sweeps", "2", "--threads", "1", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "kernels.json").read_text())
    _assert_describes_the_machine(summary["machine"])
    rows = summary["kernels"]
    assert {row["op"] for row in rows} == KERNEL_OPS
    implementations = set(tr.available_backends()) | {"torch"}
    for op in KERNEL_OPS:
        timed = {row["implementation"] for row in rows if row["op"] == op}
        assert implementations <= timed, op
    for row in rows:
        assert row["ms"] > 0 and len(row["ms_sweeps"]) == 2
        assert min(row["ms_sweeps"]) <= row["ms"] <= max(row["ms_sweeps"])
        if row["op"].startswith("conv2d"):
            assert row["gflops"] > 0
    assert implementations <= set(summary["training_step_ms"])
    width, height = _png_size(tmp_path / "kernels.png")
    assert 700 <= width <= 1000 and height > width / 2

    # every case of every sweep, and the training step, alternated call by call
    kernel_cases = len({(row["op"], row["shape"]) for row in rows})
    assert len(alternations) == 2 * kernel_cases + 2
    for call in alternations:
        assert implementations <= set(call["names"])
        rounds = call["warmup"] + call["calls"]
        assert call["order"] == [(name, r) for r in range(rounds) for name in call["names"]]


def test_bench_kernels_feeds_a_random_upstream_gradient(bench_kernels, alternations, tmp_path):
    bench_kernels.main(["--repeats", "1", "--sweeps", "1", "--threads", "1", "--out", str(tmp_path)])
    # the kernel cases (the training step's inputs are (images, labels) pairs)
    backward_cases = [call for call in alternations
                      if all(isinstance(inputs, dict) for inputs in call["inputs"].values())]
    with_gradient = [call for call in backward_cases
                     if all("grad_output" in inputs for inputs in call["inputs"].values())]
    # every op but the forward-only conv2d takes grad_output
    assert len(with_gradient) == len(backward_cases) - 2
    for call in with_gradient:
        for name, inputs in call["inputs"].items():
            gradient = _host(inputs["grad_output"])
            assert gradient.std() > 0.3 and (gradient < 0).any(), name    # not ones


def test_ratios_are_taken_against_pytorch_on_the_same_device(bench_kernels):
    rows = [dict(op="conv", shape="s", implementation=name, ms=ms) for name, ms in
            [("numpy", 8.0), ("numba", 4.0), ("torch", 2.0), ("cupy", 0.5), ("torch-cuda", 0.25)]]
    rows.append(dict(op="relu", shape="s", implementation="numba", ms=3.0))   # no PyTorch row
    by_name = {(row["op"], row["implementation"]): row for row in bench_kernels.add_ratios(rows)}
    for name, reference in [("numpy", "torch"), ("numba", "torch"), ("cupy", "torch-cuda")]:
        row = by_name["conv", name]
        assert row["ratio_to_torch"] == pytest.approx(row["ms"] / by_name["conv", reference]["ms"])
        assert row["speedup_vs_numpy"] == pytest.approx(by_name["conv", "numpy"]["ms"] / row["ms"])
    assert by_name["relu", "numba"]["ratio_to_torch"] is None
    panels = dict(bench_kernels.chart_panels(rows, {"numba": 6.0, "torch": 3.0}))
    assert dict(panels["conv"])["s"] == {name: by_name["conv", name]["ratio_to_torch"]
                                         for name in ("numpy", "numba", "cupy")}
    (training,) = [rows for title, rows in panels.items() if "training step" in title]
    assert training[0][1] == {"numba": pytest.approx(6.0 / 3.0)}


def test_chart_axis_is_symmetric_about_one_in_powers_of_two(benchmarks, tmp_path):
    import ratio_chart
    for ratios in ([1.5, 0.7], [3.3], [0.2], [40.0, 0.9]):
        limit = ratio_chart.symmetric_limit(ratios)
        assert limit in (4.0, 8.0)
        assert all(1 / limit <= r <= limit for r in ratios if 1 / 8 <= r <= 8)
    path = tmp_path / "chart.png"
    ratio_chart.plot_ratios([("op", [("shape a", {"numba": 0.5, "numpy": 2.0}),
                                     ("shape b", {"numba": 30.0})])], path)
    assert _png_size(path)[0] >= 700


# --------------------------------------------------------------------------- the others
def test_bench_models_alternates_and_records_the_machine(benchmarks, alternations, tmp_path):
    import bench_models
    out = tmp_path / "models.json"
    results = bench_models.main(["--models", "resnet18", "--batch", "1", "--size", "32",
                                 "--backends", "numpy", "--repeats", "1", "--sweeps", "2",
                                 "--threads", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    _assert_describes_the_machine(results["machine"])
    (run,) = results["runs"]
    entry = run["tinyres-numpy"]
    assert entry["ratio_to_torch"] == pytest.approx(entry["median_s"] / run["torch"]["median_s"])
    assert entry["max_abs_diff_vs_torch"] < 1e-3 and len(entry["sweeps_s"]) == 2
    assert len(alternations) == 2
    for call in alternations:
        assert call["order"] == [(name, r) for r in range(2) for name in ["torch", "tinyres-numpy"]]


def test_bench_training_alternates_epochs_and_records_the_machine(benchmarks, alternations, tmp_path):
    import bench_training
    import tinyres as tr
    out = tmp_path / "training.json"
    with tr.use_backend(tr.get_backend()):       # the script selects its backend for good
        # one thread: on a busy machine PyTorch's two OpenMP threads wait seconds for a core
        bench_training.main(["--images", "32", "--batch-size", "16", "--epochs", "2",
                             "--warmup-batches", "1", "--threads", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    _assert_describes_the_machine(result["machine"])
    (call,) = alternations
    assert call["order"] == [("tinyres", 0), ("torch", 0), ("tinyres", 1), ("torch", 1)]
    for side in ("tinyres", "torch"):
        assert len(result["all_epoch_seconds"][side]) == 2
    assert result["ratio_tinyres_over_torch"] == pytest.approx(
        result["epoch_seconds"]["tinyres"] / result["epoch_seconds"]["torch"])


# --------------------------------------------------------------------------- idle_threads.py
def _top_level_imports(path):
    import ast
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("script", ["bench_kernels.py", "bench_models.py", "bench_training.py"])
def test_alternating_benchmarks_shorten_openblas_spin_before_numpy_loads(script):
    imports = _top_level_imports(BENCHMARKS / script)
    first_blas_user = min(imports.index(name) for name in ("numpy", "torch", "tinyres")
                          if name in imports)
    assert "idle_threads" in imports[:first_blas_user]


@pytest.mark.parametrize("preset, expected", [(None, "4"), ("12", "12")])
def test_idle_threads_sets_openblas_thread_timeout_unless_already_set(preset, expected):
    import os
    import subprocess
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    if preset is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    shown = subprocess.run(
        [sys.executable, "-c", "import os, idle_threads; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"],
        cwd=BENCHMARKS, env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == expected


def test_machine_description_records_the_openblas_thread_timeout(benchmarks, monkeypatch):
    import machine
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")
    assert machine.describe_machine()["environment"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
