"""Tests for tinyres/serialization.py: checkpoints as .npz, read without pickle, written
atomically; damaged files are refused with their name."""
import zipfile

import numpy as np
import pytest

import tinyres as tr
from tinyres import models, nn
from tinyres.serialization import CheckpointError, write_atomically


def test_round_trip_is_exact(tmp_path, rng):
    state = {"weight": rng.standard_normal((3, 4)).astype(np.float32),
             "double": rng.standard_normal(5),
             "count": np.array(7, dtype=np.int64),
             "transposed": np.arange(6.0).reshape(2, 3).T,  # not C-contiguous
             "file": np.zeros(1)}  # a name np.savez would choke on
    path = tmp_path / "checkpoint.npz"
    tr.save(state, path)
    loaded = tr.load(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key], value)


def test_model_checkpoint_round_trip_gives_the_same_network(tmp_path, rng):
    model = models.cifar_resnet(8, width=4)
    model(tr.tensor(rng.standard_normal((4, 3, 8, 8)).astype(np.float32)))  # move the running stats
    path = tmp_path / "resnet8.npz"
    tr.save(model.state_dict(), path)
    loaded = tr.load(path)
    assert loaded["bn1.num_batches_tracked"].dtype == np.int64 and loaded["bn1.num_batches_tracked"].shape == ()
    assert int(loaded["bn1.num_batches_tracked"]) == 1

    copy = models.cifar_resnet(8, width=4)
    copy.load_state_dict(loaded)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[key], value, err_msg=key)
    x = tr.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    model.eval(), copy.eval()
    np.testing.assert_array_equal(copy(x).numpy(), model(x).numpy())


def test_nested_dicts_and_tensors(tmp_path):
    checkpoint = {"model": {"fc.weight": tr.tensor(np.ones((2, 2), dtype=np.float32))},
                  "epoch": 3, "lr": 0.1}
    tr.save(checkpoint, tmp_path / "c.npz")
    loaded = tr.load(tmp_path / "c.npz")
    assert list(loaded) == ["model", "epoch", "lr"] and int(loaded["epoch"]) == 3
    np.testing.assert_array_equal(loaded["model"]["fc.weight"], np.ones((2, 2), dtype=np.float32))


def test_checkpoint_with_missing_extra_and_misshaped_entries_is_refused(tmp_path):
    model = models.cifar_resnet(8, width=4)
    state = model.state_dict()
    del state["layer1.0.conv1.weight"]
    state["classifier.weight"] = np.zeros((10, 16), dtype=np.float32)
    state["fc.weight"] = np.zeros((100, 16), dtype=np.float32)
    tr.save(state, tmp_path / "bad.npz")
    with pytest.raises(nn.StateDictError) as caught:
        model.load_state_dict(tr.load(tmp_path / "bad.npz"))
    message = str(caught.value)
    assert "missing keys (in the model, not in the state dict): layer1.0.conv1.weight" in message
    assert "unexpected keys (in the state dict, not in the model): classifier.weight" in message
    assert "fc.weight got (100, 16), the model has (10, 16)" in message


def test_float64_checkpoint_loads_into_a_float32_model(tmp_path):
    source = models.cifar_resnet(8, width=4).double()
    tr.save(source.state_dict(), tmp_path / "double.npz")
    target = models.cifar_resnet(8, width=4)
    target.load_state_dict(tr.load(tmp_path / "double.npz"))
    assert all(p.dtype == np.float32 for p in target.parameters())
    np.testing.assert_array_equal(target.conv1.weight.numpy(), source.conv1.weight.numpy().astype(np.float32))


def test_save_errors_are_explained(tmp_path):
    with pytest.raises(TypeError, match=r"save\(model.state_dict\(\), path\)"):
        tr.save(models.cifar_resnet(8, width=2), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="keys must be non-empty strings"):
        tr.save({1: np.zeros(1)}, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="holds Python objects"):
        tr.save({"x": np.array([object()])}, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="entry 'x' is a str"):
        tr.save({"x": "text"}, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="contains '/'"):
        tr.save({"a/b": np.zeros(1)}, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_load_never_unpickles(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, evil=np.array([{"code": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="cannot be read without unpickling") as caught:
        tr.load(path)
    assert "allow_pickle" not in str(caught.value)  # never the advice to unpickle
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="holds a single array"):
        tr.load(tmp_path / "single.npy")


def saved_checkpoint(folder):
    """The bytes of a small valid checkpoint."""
    path = folder / "good.npz"
    tr.save(models.cifar_resnet(8, width=2).state_dict(), path)
    return path.read_bytes()


def damaged_files(folder):
    """(name, bytes) of files that tr.load must refuse."""
    good = saved_checkpoint(folder)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF   # one byte inside an array: the zip's CRC catches it
    return [("truncated", good[: len(good) // 2]),
            ("cut-at-the-end", good[:-10]),
            ("flipped-byte", bytes(flipped)),
            ("random", np.random.default_rng(0).bytes(4096)),
            ("text", b"epoch,loss\n1,0.5\n"),
            ("empty", b"")]


@pytest.mark.parametrize("kind", ["truncated", "cut-at-the-end", "flipped-byte", "random", "text",
                                  "empty"])
def test_a_damaged_or_foreign_file_is_named_and_refused(tmp_path, kind):
    content = dict(damaged_files(tmp_path))[kind]
    path = tmp_path / f"{kind}.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        tr.load(path)
    message = str(caught.value)
    assert str(path) in message and "is not a readable tinyres checkpoint" in message
    assert "allow_pickle" not in message and "pickled data" not in message
    assert caught.value.path == str(path)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        tr.load(tmp_path / "missing.npz")


def test_an_interrupted_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "c.npz"
    tr.save({"x": np.arange(3)}, path)

    def fail_halfway(file):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, fail_halfway)
    np.testing.assert_array_equal(tr.load(path)["x"], np.arange(3))
    assert sorted(item.name for item in tmp_path.iterdir()) == ["c.npz"]  # no partial file


def test_the_file_is_a_plain_zip_of_npy_members(tmp_path):
    tr.save({"layer1.0.conv1.weight": np.zeros((2, 2), dtype=np.float32)}, tmp_path / "c.npz")
    with zipfile.ZipFile(tmp_path / "c.npz") as archive:
        assert archive.namelist() == ["layer1.0.conv1.weight.npy"]
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:  # readable by NumPy alone
        assert archive["layer1.0.conv1.weight"].shape == (2, 2)
