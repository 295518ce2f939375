"""tinyres.distributed, DistributedDataParallel and SyncBatchNorm: a world of one changes nothing;
two ranks under ``mpiexec -n 2`` end where one process with the whole batch ends, to 1e-10."""
import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tinyres as tr
import tinyres.distributed as dist
import tinyres.functional as F
from tinyres.backend.cpu_threads import environment_with_threads
from tinyres.models import cifar_resnet
from tinyres.nn import BatchNorm2d, SyncBatchNorm
from tinyres.nn.parallel import DistributedDataParallel, plan_buckets

HERE = pathlib.Path(__file__).resolve().parent
MPIEXEC = pathlib.Path(sys.executable).parent / "mpiexec"
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or not MPIEXEC.exists(),
    reason=f"needs mpi4py and {MPIEXEC} (pip install 'tinyres[mpi]')")


def _mpiexec(ranks, *arguments, timeout=300, cwd=None):
    completed = subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable, *arguments],
                               capture_output=True, text=True, timeout=timeout,
                               env=environment_with_threads(1), cwd=cwd)
    return completed


# --------------------------------------------------------------------------- a world of one
def test_a_plain_run_is_a_world_of_one():
    assert dist.init() == (0, 1)
    assert dist.rank() == 0 and dist.world_size() == 1
    dist.barrier()
    values = np.arange(6.0)
    for op in dist.OPS:
        assert dist.all_reduce(values, op=op) is values
    np.testing.assert_array_equal(dist.broadcast(values), np.arange(6.0))


def test_collectives_explain_bad_arguments():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(np.zeros(2), op="prod")
    with pytest.raises(TypeError, match="pass tensor.data"):
        dist.all_reduce(tr.tensor(np.zeros(2)))
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.broadcast(np.zeros((4, 4))[:, ::2])
    with pytest.raises(ValueError, match="root must be a rank"):
        dist.broadcast(np.zeros(2), root=3)


def test_buckets_hold_a_few_megabytes_in_backward_order():
    model = cifar_resnet(20)
    parameters = list(model.parameters())
    buckets = plan_buckets(parameters, bucket_mb=0.25)
    assert [p for bucket in buckets for p in bucket] == parameters[::-1]
    assert 1 < len(buckets) < len(parameters)
    for bucket in buckets:
        assert len(bucket) == 1 or sum(p.data.nbytes for p in bucket) <= 0.25 * 2 ** 20


def test_ddp_in_a_world_of_one_is_the_plain_model():
    np.random.seed(0)
    plain = cifar_resnet(8, num_classes=3, in_channels=1, width=4).double()
    wrapped = DistributedDataParallel(cifar_resnet(8, num_classes=3, in_channels=1, width=4).double())
    wrapped.module.load_state_dict(plain.state_dict())
    images = tr.tensor(np.random.default_rng(1).standard_normal((4, 1, 8, 8)))
    labels = np.array([0, 1, 2, 0])
    for model in (plain, wrapped):
        F.cross_entropy(model(images), labels).backward()
    for (name, mine), theirs in zip(plain.named_parameters(), wrapped.module.parameters()):
        np.testing.assert_array_equal(mine.grad.numpy(), theirs.grad.numpy(), err_msg=name)
    assert all(key.startswith("module.") for key in wrapped.state_dict())


def test_convert_sync_batchnorm_keeps_the_state_dict():
    model = cifar_resnet(8, width=4)
    before = {key: value.copy() for key, value in model.state_dict().items()}
    converted = SyncBatchNorm.convert_sync_batchnorm(model)
    norms = [m for m in converted.modules() if isinstance(m, BatchNorm2d)]
    assert norms and all(type(m) is SyncBatchNorm for m in norms)
    after = converted.state_dict()
    assert list(after) == list(before)
    assert all(np.array_equal(after[key], before[key]) for key in before)


def test_sync_batch_norm_with_one_rank_is_batch_norm():
    x = tr.tensor(np.random.default_rng(2).standard_normal((4, 3, 5, 5)), requires_grad=True)
    layers = [BatchNorm2d(3).double(), SyncBatchNorm(3).double()]
    outputs = [layer(x) for layer in layers]
    np.testing.assert_array_equal(outputs[0].numpy(), outputs[1].numpy())
    np.testing.assert_array_equal(layers[0].running_var, layers[1].running_var)


def test_sync_batch_norm_op_gradcheck_in_a_world_of_one():
    from tinyres.functional.sync_batch_norm import sync_batch_norm

    rng = np.random.default_rng(3)
    inputs = [tr.tensor(rng.standard_normal(shape), requires_grad=True)
              for shape in ((3, 2, 4, 4), (2,), (2,))]
    tr.gradcheck(lambda x, w, b: sync_batch_norm(x, None, None, w, b), inputs)
    expected = F.batch_norm(inputs[0], None, None, inputs[1], inputs[2], training=True)
    np.testing.assert_allclose(sync_batch_norm(inputs[0], None, None, inputs[1], inputs[2]).numpy(),
                               expected.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- two ranks
@needs_mpi
def test_collectives_on_two_ranks(tmp_path):
    script = tmp_path / "collectives.py"
    script.write_text(
        "import numpy as np\n"
        "import tinyres.distributed as dist\n"
        "rank, size = dist.init()\n"
        "assert size == 2\n"
        "for op, expected in [('sum', 1.0), ('mean', 0.5), ('max', 1.0), ('min', 0.0)]:\n"
        "    values = np.full(3, float(rank))\n"
        "    dist.all_reduce(values, op=op)\n"
        "    assert np.all(values == expected), (op, values)\n"
        "values = np.full(2, 10.0 + rank)\n"
        "dist.broadcast(values, root=1)\n"
        "assert np.all(values == 11.0)\n"
        "open(f'rank{rank}.ok', 'w').close()\n")   # the ranks' prints interleave: files do not
    completed = _mpiexec(2, str(script), cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert sorted(path.name for path in tmp_path.glob("*.ok")) == ["rank0.ok", "rank1.ok"]


def _steps(tmp_path, ranks, *options):
    out = tmp_path / f"{ranks}-ranks{'-'.join(options)}.npz"
    if ranks == 1:
        completed = subprocess.run([sys.executable, str(HERE / "distributed_steps.py"), str(out),
                                    *options], capture_output=True, text=True, timeout=300)
    else:
        completed = _mpiexec(ranks, str(HERE / "distributed_steps.py"), str(out), *options)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with np.load(out) as state:
        return {key: state[key] for key in state.files}


def _relative_differences(reference, other):
    return {key: float(np.abs(reference[key] - other[key]).max() / max(np.abs(reference[key]).max(), 1e-300))
            for key in reference if reference[key].dtype.kind == "f"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return _steps(tmp_path_factory.mktemp("one"), 1)


@needs_mpi
def test_two_ranks_with_sync_batch_norm_end_as_one_process(one_process, tmp_path):
    two = _steps(tmp_path, 2)
    assert list(two) == list(one_process)
    differences = _relative_differences(one_process, two)
    worst = max(differences, key=differences.get)
    assert differences[worst] < 1e-10, (worst, differences[worst])
    np.testing.assert_array_equal(two["bn1.num_batches_tracked"], one_process["bn1.num_batches_tracked"])


@needs_mpi
def test_per_rank_batch_norm_differs_from_one_process(one_process, tmp_path):
    differences = _relative_differences(one_process, _steps(tmp_path, 2, "--no-sync-bn"))
    # each rank normalizes its 8 images by their own statistics: after ten steps the
    # weights are measurably elsewhere (docs/results/distributed.md gives the numbers)
    assert differences["conv1.weight"] > 1e-3
    assert differences["bn1.running_mean"] > 1e-2


# --------------------------------------------------------------------------- the scaling model
def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_distributed",
                                                  HERE.parent / "benchmarks" / "bench_distributed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ring_allreduce_model_sends_two_n_minus_one_over_n_of_the_bytes():
    bench = _benchmark()
    one_gigabyte = 2.5e8                                   # float32 numbers
    seconds = bench.ring_allreduce_seconds(one_gigabyte, 4, 8, latency=0.0)
    assert seconds == pytest.approx(2 * 3 / 4 * 1e9 / 1e9)  # 8 Gbit/s = 1 GB/s
    with_latency = bench.ring_allreduce_seconds(one_gigabyte, 4, 8, latency=1e-3, bucket_mb=1e9)
    assert with_latency - seconds == pytest.approx(2 * 3 * 1e-3)


def test_scaling_model_never_beats_ideal_and_communication_grows_with_ranks():
    model = _benchmark().scaling_model(seconds_per_image=1e-3)
    for rows in model.values():
        for bandwidth in {row["bandwidth_gbit"] for row in rows}:
            mine = [row for row in rows if row["bandwidth_gbit"] == bandwidth]
            assert all(row["speedup"] < row["workers"] for row in mine)
            shares = [row["communication_share"] for row in mine]
            assert shares == sorted(shares)


# --------------------------------------------------------------------------- tinyres train --workers
def _train(tmp_path, name, *options):
    from tinyres.cli import main

    out = tmp_path / name
    status = main(["train", "--model", "resnet8", "--width", "4", "--dataset", "synthetic",
                   "--epochs", "2", "--batch-size", "32", "--backend", "numpy", "--no-progress",
                   "--out", str(out), *options])
    assert status == 0
    import json
    return json.loads((out / "history.json").read_text()), out


@needs_mpi
def test_train_on_two_workers_matches_one_process(tmp_path, capsys):
    one, _ = _train(tmp_path, "one")
    two, out = _train(tmp_path, "two", "--workers", "2")
    printed = capsys.readouterr().out
    assert "starting 2 ranks" in printed
    assert sorted(path.name for path in out.iterdir()) == [
        "best.npz", "config.json", "curves.png", "history.csv", "history.json", "last.npz"]
    # SyncBatchNorm and the averaged gradients: the same run, up to float32 rounding
    np.testing.assert_allclose(two["test_loss"], one["test_loss"], rtol=1e-3)
    assert two["test_accuracy"] == pytest.approx(one["test_accuracy"], abs=0.02)
    from tinyres.checkpoint import load_checkpoint
    checkpoint = load_checkpoint(out / "last.npz")
    assert checkpoint.run["workers"] == 2 and checkpoint.run["sync_batch_norm"] is True
    assert not any(key.startswith("module.") for key in checkpoint.model_state)


def test_workers_flag_errors_name_the_flag(capsys, monkeypatch):
    from tinyres import workers
    from tinyres.cli import main

    assert main(["train", "--workers", "3", "--batch-size", "32"]) == 2
    assert "--batch-size 32 is the global batch and must be a multiple of --workers 3" in \
        capsys.readouterr().err
    monkeypatch.setattr(workers, "mpiexec_path", lambda: pathlib.Path("/nowhere/mpiexec"))
    assert main(["train", "--workers", "2"]) == 2
    assert "pip install 'tinyres[mpi]'" in capsys.readouterr().err
    assert workers.without_workers_flag(["--workers", "2", "--epochs", "1", "--workers=4"]) == [
        "--epochs", "1"]


@needs_mpi
def test_a_failing_rank_stops_the_others(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(
        "import numpy as np\n"
        "import tinyres.distributed as dist\n"
        "from tinyres.workers import stop_all_on_error\n"
        "rank, _ = dist.init()\n"
        "with stop_all_on_error():\n"
        "    if rank == 1:\n"
        "        raise ValueError('the data of rank 1 is missing')\n"
        "    dist.all_reduce(np.zeros(1))   # rank 0 would wait here for ever\n")
    completed = _mpiexec(2, str(script), timeout=120)
    assert completed.returncode != 0
    assert "rank 1: tinyres train failed: ValueError: the data of rank 1 is missing" in \
        completed.stdout + completed.stderr
