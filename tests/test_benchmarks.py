"""The kernel benchmark runs end to end (on tiny shapes) and writes its JSON and chart.

Timings are never asserted: only that every op is timed on every backend and on PyTorch,
and that the ratios are worked out against the right rows.
"""
import json
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_kernels(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_kernels
    monkeypatch.setattr(bench_kernels, "RESNET20_CONVS", [("tiny 4x6x6 4->8 3x3", 2, 4, 6, 6, 8, 3, 1, 1)])
    monkeypatch.setattr(bench_kernels, "RESNET50_CONVS", [("tiny 3x9x9 7x7 s2", 1, 3, 9, 9, 4, 7, 2, 3)])
    monkeypatch.setattr(bench_kernels, "ACTIVATION_SHAPES", [("tiny 2x3x5x5", (2, 3, 5, 5))])
    monkeypatch.setattr(bench_kernels, "time_training_step", lambda repeats: {})
    monkeypatch.setattr(bench_kernels, "time_cold_start", lambda: {})
    yield bench_kernels
    sys.modules.pop("bench_kernels", None)


def test_bench_kernels_times_every_op_on_every_backend(bench_kernels, tmp_path):
    import tinyres as tr
    bench_kernels.main(["--repeats", "1", "--sweeps", "2", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "kernels.json").read_text())
    assert (tmp_path / "kernels.png").stat().st_size > 0
    rows = summary["kernels"]
    ops = {"conv2d fwd", "conv2d fwd+bwd", "max_pool2d 3x3 s2 fwd+bwd", "batch_norm fwd+bwd",
           "relu fwd+bwd", "max_pool2d kernels fwd+bwd", "batch_norm kernels fwd+bwd",
           "relu kernels fwd+bwd"}
    assert {row["op"] for row in rows} == ops
    implementations = set(tr.available_backends()) | {"torch"}
    for op in ops:
        timed = {row["implementation"] for row in rows if row["op"] == op}
        assert implementations <= timed, op
    for row in rows:
        assert row["ms"] > 0 and len(row["ms_sweeps"]) == 2
        assert min(row["ms_sweeps"]) <= row["ms"] <= max(row["ms_sweeps"])
        on_gpu = row["implementation"] in ("cupy", "torch-cuda")
        torch_row = next(r for r in rows if (r["op"], r["shape"]) == (row["op"], row["shape"])
                         and r["implementation"] == ("torch-cuda" if on_gpu else "torch"))
        assert row["ratio_to_torch"] == pytest.approx(row["ms"] / torch_row["ms"])
        if row["op"].startswith("conv2d"):
            assert row["gflops"] > 0
