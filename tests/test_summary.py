"""Tests for tinyres/models/summary.py: shapes, parameters and multiply-accumulates per layer."""
import numpy as np
import pytest

import tinyres as tr
from tinyres import models, nn

# GMACs at 1x3x224x224: torchvision's published "GFLOPS" column (which counts MACs)
TORCHVISION_GMACS = {"resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80,
                     "resnet152": 11.51}
# exact conv + fc MACs this counting gives (stride on the 3x3, torchvision's layout)
EXACT_MACS = {"resnet18": 1_814_073_344, "resnet34": 3_663_761_408, "resnet50": 4_089_184_256,
              "resnet101": 7_801_405_440, "resnet152": 11_513_626_624}
# the paper's original bottleneck (stride on the first 1x1): Table 1 says 3.8, 7.6, 11.3 x 10^9
# FLOPs; 101 and 152 agree to the paper's one decimal, 50 comes out at 3.86
PAPER_MACS = {"resnet50": 3_857_973_248, "resnet101": 7_570_194_432, "resnet152": 11_282_415_616}


@pytest.mark.parametrize("name", list(TORCHVISION_GMACS))
def test_imagenet_macs_match_torchvision(name):
    model = getattr(models, name)()
    result = models.summary(model, (1, 3, 224, 224))
    assert result.total_macs == EXACT_MACS[name]
    assert round(result.total_macs / 1e9, 2) == TORCHVISION_GMACS[name]
    assert result.total_params == result.trainable_params == sum(p.size for p in model.parameters())


@pytest.mark.parametrize("name", list(PAPER_MACS))
def test_stride_in_1x1_macs_match_the_paper(name):
    result = models.summary(getattr(models, name)(stride_in_1x1=True), (3, 224, 224))
    assert result.total_macs == PAPER_MACS[name]
    paper = {"resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}[name]
    assert abs(result.total_macs / 1e9 - paper) < 0.07


def test_cifar_resnet20_is_about_41_mmacs():
    result = models.summary(models.resnet20(), (1, 3, 32, 32))
    assert result.total_macs == 40_551_040 and result.total_params == 269_722
    assert models.summary(models.plain20(), (1, 3, 32, 32)).total_macs == result.total_macs


def test_rows_hold_shapes_params_and_macs():
    result = models.summary(models.resnet18(), (2, 3, 224, 224))
    first = result.rows[0]
    assert (first.name, first.type, first.output_shape) == ("conv1", "Conv2d", (2, 64, 112, 112))
    assert first.params == 64 * 3 * 7 * 7 and first.macs == 64 * 3 * 7 * 7 * 112 * 112
    by_name = {row.name: row for row in result.rows}
    assert by_name["maxpool"].output_shape == (2, 64, 56, 56) and by_name["maxpool"].macs == 0
    assert by_name["layer4.1.bn2"].output_shape == (2, 512, 7, 7) and by_name["layer4.1.bn2"].macs == 0
    assert by_name["fc"].macs == 512 * 1000 and by_name["fc"].output_shape == (2, 1000)
    assert sum(row.params for row in result.rows) == result.total_params == 11_689_512
    # a layer called twice (the blocks' shared relu) has a row per call, its parameters once
    assert sum(row.name == "layer1.0.relu" for row in result.rows) == 2


def test_empty_batch_gives_the_same_table_as_a_real_forward():
    model = models.cifar_resnet(14, width=4, shortcut="B")
    quick = models.summary(model, (2, 3, 16, 16))
    real = models.summary(model, (2, 3, 16, 16), empty_batch=False)
    assert quick.rows == real.rows and quick.total_macs == real.total_macs


def test_summary_restores_modes_and_leaves_no_trace():
    model = models.cifar_resnet(8, width=4)
    model.layer2.eval()  # a mixed state must come back exactly
    before = model.state_dict()
    models.summary(model, (1, 3, 16, 16))
    assert model.training and model.layer1.training and not model.layer2.training
    assert not model.layer2[0].bn1.training
    after = model.state_dict()
    assert all(np.array_equal(before[key], after[key]) for key in before)  # no running-stat update
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


def test_summary_table_and_errors():
    text = str(models.summary(models.resnet20(), (1, 3, 32, 32)))
    assert "Layer (type)" in text and "layer3.2.conv2 (Conv2d)" in text
    assert "Total params:     269,722" in text and "0.04 G per sample" in text
    with pytest.raises(ValueError, match=r"input_shape must be \(N, C, H, W\) or \(C, H, W\)"):
        models.summary(models.resnet20(), (32, 32))
    with pytest.raises(TypeError, match="expected an nn.Module"):
        models.summary(lambda x: x, (1, 3, 8, 8))


def test_summary_of_a_single_layer_and_of_a_float64_model():
    result = models.summary(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 10, 10))
    assert [row.name for row in result.rows] == ["Conv2d"] and result.total_macs == 8 * 27 * 100
    model = models.cifar_resnet(8, width=2).double()
    assert models.summary(model, (1, 3, 8, 8)).rows[-1].output_shape == (1, 10)
    assert tr.get_backend() in tr.available_backends()
