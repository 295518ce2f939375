"""tr.profile: events that nest, times that add up, a Chrome trace, results unchanged, no cost off.

Also the commands built on it: ``tinyres profile`` (with PyTorch's table beside, or the
sentence saying why not) and ``tinyres train --profile``.
"""
import importlib.util
import json
import threading

import numpy as np
import pytest

import tinyres as tr
import tinyres.functional as F
from tinyres import autograd, cli_profile, profiler
from tinyres.cli import main
from tinyres.experiments import build_model
from tinyres.nn import module as nn_module
from tinyres.optim import SGD
from tinyres.optim import optimizer as optimizer_module
from tinyres.train import seed_everything

TINY_NET = ["--width", "2", "--input-shape", "1,8,8", "--backend", "numpy"]


@pytest.fixture(autouse=True)
def restore_backend():
    with tr.use_backend(tr.get_backend()):  # the commands select a backend; undo it after
        yield


def tiny_training(seed=0, batch=4):
    """A ResNet-8 of width 4 on 1x8x8 images, its SGD, a batch, and a function doing one step."""
    seed_everything(seed)
    model = build_model("resnet8", num_classes=3, in_channels=1, width=4)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    generator = np.random.default_rng(seed)
    images = tr.tensor(generator.standard_normal((batch, 1, 8, 8)).astype(np.float32))
    labels = generator.integers(0, 3, batch)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    return model, step


def profiled_step(steps=1):
    """The profile of ``steps`` training steps of the tiny network, after one warm-up step."""
    return profiled_training(steps)[1]


def profiled_training(steps):
    model, step = tiny_training()
    step()
    with tr.profile() as prof:
        for _ in range(steps):
            step()
    return model, prof


# --------------------------------------------------------------------------- recording
def test_events_nest_inside_their_parents_per_thread():
    _, step = tiny_training()
    step()
    x = tr.tensor(np.random.default_rng(1).standard_normal((64, 64)), requires_grad=True)

    def other_thread():   # its ops nest on their own stack, not inside the main thread's
        F.relu(x @ x).sum().backward()

    with tr.profile() as prof:
        worker = threading.Thread(target=other_thread)
        worker.start()
        step()
        worker.join()
    events = [event for event in prof.events if event.end_ns is not None]
    assert len(events) == len(prof.events) > 50
    assert len({event.thread for event in events}) == 2
    for event in events:
        assert event.start_ns <= event.end_ns
        if event.parent is not None:
            assert event.parent.thread == event.thread
            assert event.parent.start_ns <= event.start_ns <= event.end_ns <= event.parent.end_ns
    children = {}
    for event in events:
        children.setdefault((event.thread, id(event.parent)), []).append(event)
    for siblings in children.values():   # on one thread, one after another, never overlapping
        siblings.sort(key=lambda event: event.start_ns)
        for before, after in zip(siblings, siblings[1:]):
            assert before.end_ns <= after.start_ns
    by_name = {}
    for event in events:
        by_name.setdefault((event.name, event.category, event.phase), []).append(event)
    conv_forwards = by_name[("Conv2d", profiler.OP, profiler.FORWARD)]
    assert all(event.parent.trace_name == "nn.Conv2d" for event in conv_forwards)
    backwards = [event for event in events if event.phase == profiler.BACKWARD]
    assert backwards and all(event.parent.category == profiler.GRAPH_WALK for event in backwards)
    assert len(by_name[("SGD", profiler.OPTIMIZER, None)]) == 1


def test_self_times_add_up_to_the_wall_time():
    model, prof = profiled_training(steps=2)
    split = prof.time_split()
    parts = split.op_ns + split.bookkeeping_ns + split.optimizer_ns
    assert abs(parts - split.wall_ns) <= 0.1 * split.wall_ns, split
    assert parts + split.outside_ns == split.wall_ns and split.outside_ns >= 0
    assert split.steps == 2 and min(split.op_ns, split.graph_walk_ns, split.module_ns,
                                    split.optimizer_ns) > 0
    rows = prof.key_averages()
    assert sum(row.total_ns for row in rows) == split.op_ns
    conv = next(row for row in rows if row.name == "Conv2d")
    convolutions = sum(isinstance(layer, tr.nn.Conv2d) for layer in model.modules())
    assert conv.calls == conv.backward_calls == 2 * convolutions
    assert conv.backends == (tr.get_backend(),)


def test_table_lists_the_ops_and_where_the_wall_time_went():
    prof = profiled_step()
    table = prof.table(sort_by="total", row_limit=3)
    lines = table.splitlines()
    assert "Forward ms" in lines[1] and "GFLOP/s" in lines[1] and "% wall" in lines[1]
    names = [line.split()[0] for line in lines[3:6]]
    assert names == [row.name for row in prof.key_averages()[:3]]
    assert "more ops" in lines[6]
    assert "wall" in lines[-2] and "1 optimizer step" in lines[-2] and "bookkeeping" in lines[-2]
    by_name = prof.table(sort_by="name").splitlines()[3:]
    listed = [line.split()[0] for line in by_name if not line.startswith("-")][:-2]
    assert listed == sorted(listed)
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by="cpu_time_total")
    with pytest.raises(ValueError, match="row_limit must be None or an int >= 1, got 0"):
        prof.table(row_limit=0)


def test_chrome_trace_parses_and_nests(tmp_path):
    prof = profiled_step()
    path = prof.export_chrome_trace(tmp_path / "trace.json")
    document = json.loads(path.read_text())
    events = document["traceEvents"]
    assert len(events) == len(prof.events)
    for event in events:
        assert event["ph"] == "X" and isinstance(event["name"], str) and event["name"]
        assert isinstance(event["ts"], float) and isinstance(event["dur"], float)
        assert event["ts"] >= 0 and event["dur"] >= 0
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert isinstance(event["args"], dict) and event["cat"] in ("op", "module", "autograd",
                                                                      "optimizer")
    open_intervals = []   # one thread: each event starts inside the innermost open one, or after it
    for event in sorted(events, key=lambda event: (event["ts"], -event["dur"])):
        end = event["ts"] + event["dur"]
        while open_intervals and open_intervals[-1] <= event["ts"]:
            open_intervals.pop()
        if open_intervals:
            assert end <= open_intervals[-1] + 1e-3, event
        open_intervals.append(end)
    conv = next(event for event in events if event["name"] == "Conv2d")
    assert conv["args"]["input_shapes"][0] == [4, 1, 8, 8] and conv["args"]["phase"] == "forward"
    assert conv["args"]["backend"] == tr.get_backend()
    assert any(event["name"] == "Conv2dBackward" for event in events)
    assert document["otherData"]["wall_ns"] == prof.time_split().wall_ns


def test_flops_of_conv2d_linear_and_matmul_follow_their_formulas():
    """Forward 2*N*K*Ho*Wo*C*R*S; backward that once more per gradient of x and of W wanted."""
    generator = np.random.default_rng(0)
    x = tr.tensor(generator.standard_normal((2, 3, 9, 9)), requires_grad=True)
    frozen_x = tr.tensor(generator.standard_normal((2, 3, 9, 9)))
    weight = tr.tensor(generator.standard_normal((4, 3, 3, 3)), requires_grad=True)
    a = tr.tensor(generator.standard_normal((5, 6)), requires_grad=True)
    b = tr.tensor(generator.standard_normal((6, 7)), requires_grad=True)
    linear_weight = tr.tensor(generator.standard_normal((7, 6)), requires_grad=True)
    with tr.profile() as prof:
        F.conv2d(x, weight, stride=2, padding=1).sum().backward()
        F.conv2d(frozen_x, weight, stride=2, padding=1).sum().backward()
        (a @ b).sum().backward()
        F.linear(a, linear_weight).sum().backward()
    conv_flops = 2 * 2 * 4 * 5 * 5 * 3 * 3 * 3          # N K Ho Wo C R S, Ho = Wo = 5
    rows = {row.name: row for row in prof.key_averages()}
    assert rows["Conv2d"].flops == (1 + 2) * conv_flops + (1 + 1) * conv_flops
    assert rows["MatMul"].flops == 3 * 2 * 5 * 7 * 6
    assert rows["Linear"].flops == 3 * 2 * 5 * 7 * 6
    assert rows["Conv2d"].gflops_per_second > 0 and rows["Sum"].flops is None
    forward = [event for event in prof.events if event.name == "Conv2d"][0]
    assert forward.args["bytes"] == x.data.nbytes + weight.data.nbytes + 2 * 4 * 5 * 5 * 8


def test_linear_is_one_op_with_the_gradients_of_its_tensor_expression():
    generator = np.random.default_rng(0)
    values = [generator.standard_normal(shape) for shape in ((4, 5), (3, 5), (3,))]
    ours = [tr.tensor(value, requires_grad=True) for value in values]
    by_hand = [tr.tensor(value, requires_grad=True) for value in values]
    upstream = generator.standard_normal((4, 3))
    out = F.linear(*ours)
    expected = by_hand[0] @ by_hand[1].T + by_hand[2]
    assert out._ctx.function.__name__ == "Linear"
    out.backward(upstream)
    expected.backward(upstream)
    assert np.array_equal(out.numpy(), expected.numpy())
    for mine, theirs in zip(ours, by_hand):
        assert np.array_equal(mine.grad.numpy(), theirs.grad.numpy())


def test_profiling_changes_no_result_bit_for_bit():
    results = []
    for profiled in (False, True):
        model, step = tiny_training(seed=3)
        step()
        if profiled:
            with tr.profile():
                loss = step()
        else:
            loss = step()
        results.append((loss.item(), [p.grad.numpy().copy() for p in model.parameters()],
                        [p.numpy().copy() for p in model.parameters()]))
    (loss, grads, params), (loss_profiled, grads_profiled, params_profiled) = results
    assert loss == loss_profiled
    assert all(np.array_equal(g, h) for g, h in zip(grads, grads_profiled))
    assert all(np.array_equal(p, q) for p, q in zip(params, params_profiled))


def test_skip_steps_and_steps_record_a_window_and_stop_by_themselves():
    _, step = tiny_training()
    ready = []
    with tr.profile(skip_steps=1, steps=2, on_trace_ready=ready.append) as prof:
        for number in range(5):
            step()
            assert profiler.active is (prof if number < 2 else None)
    assert ready == [prof] and prof.time_split().steps == 2 and prof.steps_seen == 3
    with pytest.raises(ValueError, match="steps must be None or an int >= 1, got 0"):
        tr.profile(steps=0)


def test_one_profile_at_a_time():
    with tr.profile():
        with pytest.raises(RuntimeError, match="already recording"):
            with tr.profile():
                pass
    assert profiler.active is None


# --------------------------------------------------------------------------- when not profiling
class CountingProfilerModule:
    """Stands in for the profiler module: counts each read of ``active``, always None."""

    def __init__(self):
        self.reads = 0

    @property
    def active(self):
        self.reads += 1
        return None


def test_not_profiling_records_nothing_and_costs_one_check_per_op(monkeypatch):
    """The hot paths' only work for the profiler: one read of ``profiler.active`` (None).

    Each op's forward, each op's backward, each graph walk, each module call and each
    optimizer step reads it exactly once and, finding None, calls nothing of the profiler.
    """
    _, step = tiny_training()
    step()
    with tr.profile() as prof:
        step()
    recorded = len(prof.events)
    assert profiler.active is None
    step()
    assert len(prof.events) == recorded      # a closed profile records nothing more

    counter = CountingProfilerModule()
    for module in (autograd, nn_module, optimizer_module):
        monkeypatch.setattr(module, "profiler", counter)
    step()
    walks = sum(1 for event in prof.events if event.category == profiler.GRAPH_WALK)
    assert walks == 1
    assert counter.reads == recorded, (counter.reads, recorded)


# --------------------------------------------------------------------------- the commands
def test_profile_command_prints_tinyres_and_pytorch_tables(capsys, tmp_path):
    if importlib.util.find_spec("torch") is None:   # torch is a test dependency
        pytest.fail("PyTorch is needed by the tests (pip install torch)")
    trace = tmp_path / "trace.json"
    status = main(["profile", "resnet20", "--batch-size", "4", "--steps", "1", "--backend",
                   "numpy", "--trace", str(trace)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "profile of 1 SGD training step of resnet20: batch 4 of random 1x28x28" in printed
    assert "Conv2d" in printed and "wall" in printed and "bookkeeping" in printed
    assert "by torch.profiler" in printed and "Self CPU time total" in printed
    side = printed[printed.index("Side by side"):]
    assert "aten::conv2d, ConvolutionBackward0" in side
    assert "aten::batch_norm, NativeBatchNormBackward0" in side
    assert "wall" in side and "ops" in side
    assert json.loads(trace.read_text())["traceEvents"]


def test_profile_command_says_why_the_pytorch_column_is_missing(capsys, monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "torch" else real_find_spec(name, *rest))
    assert main(["profile", "resnet8", "--batch-size", "2", "--steps", "1", *TINY_NET]) == 0
    printed = capsys.readouterr().out
    assert "No PyTorch column: torch is not installed here" in printed
    assert "Conv2d" in printed and "by torch.profiler" not in printed

    monkeypatch.undo()
    monkeypatch.setattr(cli_profile, "TORCH_SCRIPT", tmp_path / "benchmarks" / "profile_torch.py")
    assert main(["profile", "resnet8", "--batch-size", "2", "--steps", "1", *TINY_NET]) == 0
    printed = capsys.readouterr().out
    assert "No PyTorch column:" in printed and "source checkout" in printed


def test_profile_command_refuses_bad_options(capsys):
    assert main(["profile", "resnet8", "--steps", "0", *TINY_NET]) == 2
    assert "--steps must be at least 1, got 0" in capsys.readouterr().err
    assert main(["profile", "resnet9", *TINY_NET]) == 2
    assert "MODEL:" in capsys.readouterr().err


def test_train_profile_writes_a_trace_beside_the_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--model", "resnet8", "--width", "2", "--backend", "numpy",
                   "--dataset", "synthetic", "--epochs", "1", "--batch-size", "64",
                   "--out", str(out), "--no-progress", "--profile", "2"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    trace = out / cli_profile.TRACE_NAME
    assert "profiled training steps 2-3" in printed and str(trace) in printed
    document = json.loads(trace.read_text())
    assert {"Conv2d", "Conv2dBackward", "SGD.step"} <= {e["name"] for e in document["traceEvents"]}
    assert document["otherData"]["steps"] == 2
    assert "Conv2d" in (out / cli_profile.TABLE_NAME).read_text()
    assert (out / "last.npz").exists()
