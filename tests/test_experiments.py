"""Tests for tinyres/experiments.py: recipes, networks by name, and what a run records."""
import numpy as np
import pytest

import tinyres as tr
from tinyres import data, models
from tinyres.experiments import (MODEL_NAMES, Recipe, build_loaders, build_model, model_family,
                                 natural_input, recipe_of, run_config)


@pytest.mark.parametrize("changes,message", [
    (dict(train_subset=0), "train_subset must be >= 1, got 0"),
    (dict(epochs=0), "epochs must be >= 1, got 0"),
    (dict(lr=float("nan")), "lr must be >= 0, got nan"),
    (dict(warmup_steps=-1), "warmup_steps must be >= 0, got -1"),
    (dict(schedule="linear"), "schedule must be one of"),
])
def test_recipe_refuses_values_it_cannot_train_with(changes, message):
    with pytest.raises(ValueError, match=message):
        Recipe(**changes)


def test_every_listed_name_builds_and_families_have_their_natural_input():
    for name in MODEL_NAMES:
        family = model_family(name)
        shape, classes, _ = natural_input(name)
        assert (family, shape, classes) in (("cifar", (3, 32, 32), 10),
                                            ("imagenet", (3, 224, 224), 1000)), name
    tr.nn.init.manual_seed(0)
    named = models.resnet20(num_classes=10, in_channels=1)
    tr.nn.init.manual_seed(0)
    built = build_model("ResNet-20", num_classes=10, in_channels=1)
    for (name, array), other in zip(named.state_dict().items(), built.state_dict().values()):
        np.testing.assert_array_equal(array, other, err_msg=name)
    assert sum(p.size for p in build_model("resnet8", 4, 1).parameters()) > 0  # any 6n + 2


@pytest.mark.parametrize("name,width,message", [
    ("resnet7x", None, "unknown model 'resnet7x'; known models: resnet20, "),
    ("resnet22", None, "'resnet22': a CIFAR network has 6n \\+ 2 layers"),
    ("resnet50", 8, "width applies to the CIFAR networks .* 'resnet50' is an ImageNet network"),
    ("resnet20", 0, "width must be a positive number of channels, got 0"),
])
def test_bad_names_and_widths_are_explained(name, width, message):
    with pytest.raises(ValueError, match=message) as caught:
        build_model(name, num_classes=10, in_channels=3, width=width)
    assert "build_model" not in str(caught.value)


def test_run_config_records_the_network_the_data_and_the_normalization():
    recipe = Recipe(dataset="synthetic", epochs=2, batch_size=32, train_subset=100)
    train_loader, test_loader = build_loaders(recipe)
    config = run_config("resnet8", 2, recipe, train_loader, test_loader)
    mean, std = data.channel_mean_std(train_loader.dataset)
    assert config["normalization"] == {"mean": mean.tolist(), "std": std.tolist()}
    assert (config["model"], config["width"], config["in_channels"], config["num_classes"]) == \
        ("resnet8", 2, 1, 4)
    assert config["input_shape"] == [1, 8, 8] and config["classes"][0] == "class_0"
    assert config["train_images"] == 100 and recipe_of(config) == recipe
    # a recorded normalization is used as it is, not recomputed
    _, again = build_loaders(recipe, {"mean": [0.5], "std": [2.0]})
    assert again.transform.mean.tolist() == [0.5] and again.transform.std.tolist() == [2.0]
