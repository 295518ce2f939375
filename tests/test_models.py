"""Tests for tinyres/models: blocks, the ImageNet and CIFAR networks.

The reference networks below are written with plain ``torch.nn`` following
torchvision's resnet.py layout, so the state-dict keys, shapes and outputs of
tinyres's networks can be compared with PyTorch's without torchvision.
"""
import json
import pathlib

import numpy as np
import pytest
import torch

import tinyres as tr
import tinyres.functional as F
from tinyres import models, nn
from conftest import tolerance


# --------------------------------------------------------------------------- the torch reference
class TorchBasicBlock(torch.nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride, downsample, dilation, shortcut_a, preact=False):
        super().__init__()
        conv3 = lambda i, o, s, d: torch.nn.Conv2d(i, o, 3, s, padding=d, dilation=d, bias=False)  # noqa: E731
        self.preact = preact
        if preact:
            self.bn1 = torch.nn.BatchNorm2d(in_planes)
            self.relu = torch.nn.ReLU()
            self.conv1 = conv3(in_planes, planes, stride, dilation)
            self.bn2 = torch.nn.BatchNorm2d(planes)
            self.conv2 = conv3(planes, planes, 1, dilation)
        else:
            self.conv1 = conv3(in_planes, planes, stride, dilation)
            self.bn1 = torch.nn.BatchNorm2d(planes)
            self.relu = torch.nn.ReLU()
            self.conv2 = conv3(planes, planes, 1, dilation)
            self.bn2 = torch.nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.shortcut_a = shortcut_a  # (out_planes, stride) for option A, else None

    def shortcut(self, x):
        if self.downsample is not None:
            return self.downsample(x)
        if self.shortcut_a is not None:
            out_planes, stride = self.shortcut_a
            x = x[:, :, ::stride, ::stride]
            extra = out_planes - x.shape[1]
            return torch.nn.functional.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        return x

    def forward(self, x):
        if self.preact:
            activated = self.relu(self.bn1(x))
            out = self.conv2(self.relu(self.bn2(self.conv1(activated))))
            changes = self.downsample is not None or self.shortcut_a is not None
            return out + self.shortcut(activated if changes else x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


class TorchBottleneck(torch.nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride, downsample, dilation, shortcut_a, stride_in_1x1=False):
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = torch.nn.Conv2d(in_planes, planes, 1, stride_1x1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(planes)
        self.conv2 = torch.nn.Conv2d(planes, planes, 3, stride_3x3, padding=dilation, dilation=dilation,
                                     bias=False)
        self.bn2 = torch.nn.BatchNorm2d(planes)
        self.conv3 = torch.nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = torch.nn.BatchNorm2d(planes * 4)
        self.relu = torch.nn.ReLU()
        self.downsample = downsample
        assert shortcut_a is None

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class TorchResNet(torch.nn.Module):
    """torchvision's ResNet layout (ImageNet stem) or the CIFAR one (3x3 stem, three stages)."""

    def __init__(self, block, layers, num_classes, width, cifar=False, shortcut="B",
                 dilate=(False, False, False), **block_options):
        super().__init__()
        self.in_planes, self.dilation = width, 1
        self.block_options, self.shortcut = block_options, shortcut
        preact = block_options.get("preact", False)
        if cifar:
            self.conv1 = torch.nn.Conv2d(3, width, 3, 1, 1, bias=False)
        else:
            self.conv1 = torch.nn.Conv2d(3, width, 7, 2, 3, bias=False)
        if not (cifar and preact):
            self.bn1 = torch.nn.BatchNorm2d(width)
        self.relu = torch.nn.ReLU()
        self.maxpool = torch.nn.Identity() if cifar else torch.nn.MaxPool2d(3, 2, 1)
        multipliers = (1, 2, 4) if cifar else (1, 2, 4, 8)
        for index, count in enumerate(layers):
            stride = 1 if index == 0 else 2
            dilated = index > 0 and dilate[index - 1]
            setattr(self, f"layer{index + 1}",
                    self._make_layer(block, width * multipliers[index], count, stride, dilated))
        self.stages = len(layers)
        if preact:
            self.final_bn = torch.nn.BatchNorm2d(self.in_planes)
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(self.in_planes, num_classes)

    def _make_layer(self, block, planes, blocks, stride, dilate):
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        stage = []
        for position in range(blocks):
            out_planes = planes * block.expansion
            changes = stride != 1 or self.in_planes != out_planes
            downsample, shortcut_a = None, None
            if self.shortcut == "C" or (self.shortcut == "B" and changes):
                downsample = torch.nn.Sequential(
                    torch.nn.Conv2d(self.in_planes, out_planes, 1, stride, bias=False),
                    torch.nn.BatchNorm2d(out_planes))
            elif self.shortcut == "A" and changes:
                shortcut_a = (out_planes, stride)
            dilation = previous_dilation if position == 0 else self.dilation
            stage.append(block(self.in_planes, planes, stride, downsample, dilation, shortcut_a,
                               **self.block_options))
            self.in_planes, stride = out_planes, 1
        return torch.nn.Sequential(*stage)

    def forward(self, x):
        x = self.conv1(x)
        if hasattr(self, "bn1"):
            x = self.relu(self.bn1(x))
        x = self.maxpool(x)
        for index in range(self.stages):
            x = getattr(self, f"layer{index + 1}")(x)
        if hasattr(self, "final_bn"):
            x = self.relu(self.final_bn(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


TORCHVISION_LAYOUTS = {
    "resnet18": (TorchBasicBlock, [2, 2, 2, 2]), "resnet34": (TorchBasicBlock, [3, 4, 6, 3]),
    "resnet50": (TorchBottleneck, [3, 4, 6, 3]), "resnet101": (TorchBottleneck, [3, 4, 23, 3]),
    "resnet152": (TorchBottleneck, [3, 8, 36, 3]),
}


def randomize(model, seed=0):
    """Random weights and running statistics (so eval mode is not the identity), via load_state_dict."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, value.shape)
        elif key.endswith("num_batches_tracked"):
            state[key] = value
        elif key.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")):
            state[key] = rng.uniform(0.5, 1.5, value.shape)
        else:
            state[key] = rng.normal(0, 0.3 if value.ndim == 1 else np.sqrt(2 / value[0].size), value.shape)
    model.load_state_dict(state)
    return model


def to_torch(model_state):
    return {key: torch.from_numpy(np.array(value)) for key, value in model_state.items()}


def count(model):
    return sum(p.size for p in model.parameters())


# --------------------------------------------------------------------------- parameter counts
PARAMETER_COUNTS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018,
    "resnet110": 1_727_962, "resnet1202": 19_421_274,
    "plain20": 269_722, "plain32": 464_154, "plain44": 658_586, "plain56": 853_018, "plain110": 1_727_962,
}


@pytest.mark.parametrize("name", list(PARAMETER_COUNTS))
def test_parameter_counts(name):
    model = getattr(models, name)()
    assert count(model) == PARAMETER_COUNTS[name]
    assert all(p.dtype == np.float32 and p.device == "cpu" for p in model.parameters())


@pytest.mark.parametrize("name", list(TORCHVISION_LAYOUTS))
def test_state_dict_keys_and_shapes_are_torchvisions(name):
    ours = getattr(models, name)().state_dict()
    block, layers = TORCHVISION_LAYOUTS[name]
    theirs = TorchResNet(block, layers, 1000, 64).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == tuple(v.shape) and ours[k].dtype == v.numpy().dtype for k, v in theirs.items())


def test_named_entries_spot_check():
    keys = models.resnet18().state_dict()
    assert "layer2.0.downsample.0.weight" in keys and "layer2.0.downsample.1.running_var" in keys
    assert "layer1.0.downsample.0.weight" not in keys and "layer2.1.downsample.0.weight" not in keys
    assert "layer1.0.downsample.0.weight" in models.resnet50().state_dict()  # 64 -> 256 channels
    cifar = models.resnet20().state_dict()
    assert not any("downsample" in key for key in cifar)  # option A has no parameters
    assert list(cifar)[:2] == ["conv1.weight", "bn1.weight"] and list(cifar)[-2:] == ["fc.weight", "fc.bias"]


def test_shortcut_options_change_only_the_projections():
    projection = lambda i, o: i * o + 2 * o  # noqa: E731  (1x1 conv + BN weight and bias)
    a = count(models.resnet20(shortcut="A"))
    assert count(models.resnet20(shortcut="B")) == a + projection(16, 32) + projection(32, 64)
    # option C projects in all 9 blocks: 3 of 16->16 (layer1), 1 of 16->32, 2 of 32->32, ...
    c_extra = 3 * projection(16, 16) + projection(16, 32) + 2 * projection(32, 32) \
        + projection(32, 64) + 2 * projection(64, 64)
    assert count(models.resnet20(shortcut="C")) == a + c_extra
    assert count(models.resnet34(shortcut="A")) == 21_797_672 - sum(
        projection(i, o) for i, o in ((64, 128), (128, 256), (256, 512)))


# --------------------------------------------------------------------------- pinned layouts
# Facts about the architectures, recorded once: every state_dict key in order with its shape,
# and the parameter count.  Checkpoints and torchvision weights depend on them.
LAYOUTS = json.loads((pathlib.Path(__file__).parent / "model_layouts.json").read_text())
LAYOUT_NETWORKS = {"resnet20": models.resnet20, "plain20": models.plain20,
                   "preact_resnet20": lambda: models.cifar_resnet(20, block="preact_basic"),
                   "resnet18": models.resnet18, "resnet50": models.resnet50}


@pytest.mark.parametrize("name", list(LAYOUT_NETWORKS))
def test_state_dict_keys_shapes_and_parameter_count_are_pinned(name):
    model = LAYOUT_NETWORKS[name]()
    state = model.state_dict()
    assert list(state) == list(LAYOUTS[name]["state_dict"])
    assert {key: list(np.shape(value)) for key, value in state.items()} == LAYOUTS[name]["state_dict"]
    assert count(model) == LAYOUTS[name]["parameters"]


# The outputs of freshly initialized networks (manual_seed(0), float64, training mode) on one
# fixed input, as (sum of logit * (1, 2, 3, ...), sum of |logit|): the initialization's
# order of random draws and every layer's arithmetic are pinned to 1e-6 relative.
OUTPUT_CHECKSUMS = {
    "resnet20": (-102.6357714084648, 17.762376592572174),
    "plain20": (-33.77395025499409, 4.909443388317324),
    "preact_basic_B": (-29.64972729440339, 7.871954448229134),
    "preact_bottleneck_C": (11.108736125970928, 3.4268660132666535),
    "resnet18": (-33.2261670117986, 11.295776861971937),
    "resnet50": (-44.914222771883566, 11.558648561477844),
    "bottleneck_C_1x1_os16": (-31.787544787996016, 6.509062716083315),
}
CHECKSUM_NETWORKS = {
    "resnet20": models.resnet20, "plain20": models.plain20,
    "preact_basic_B": lambda: models.cifar_resnet(14, width=4, shortcut="B", block="preact_basic"),
    "preact_bottleneck_C": lambda: models.cifar_resnet(11, width=4, shortcut="C",
                                                       block="preact_bottleneck"),
    "resnet18": lambda: models.resnet18(num_classes=10),
    "resnet50": lambda: models.resnet50(num_classes=10),
    "bottleneck_C_1x1_os16": lambda: models.ResNet(models.Bottleneck, [1, 2, 1, 1], num_classes=10,
                                                   width=8, shortcut="C", stride_in_1x1=True,
                                                   output_stride=16),
}


@pytest.mark.parametrize("name", list(CHECKSUM_NETWORKS))
def test_seeded_network_output_is_pinned(name):
    with tr.use_backend("numpy"):
        tr.nn.init.manual_seed(0)
        model = CHECKSUM_NETWORKS[name]().double()
        x = np.random.default_rng(1).standard_normal((2, 3, 32, 32))
        logits = model(tr.tensor(x)).numpy()
    checksum, magnitude = OUTPUT_CHECKSUMS[name]
    weights = np.arange(1, logits.size + 1).reshape(logits.shape)
    assert np.abs(logits).sum() == pytest.approx(magnitude, rel=1e-6)
    assert (logits * weights).sum() == pytest.approx(checksum, rel=1e-6, abs=1e-6 * magnitude)


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_imagenet_output_and_feature_shapes(name):
    """Shapes at 224x224 through an empty batch (cheap), and output strides 16 and 8."""
    strides = ((None, 7), (16, 14), (8, 28)) if name in ("resnet18", "resnet50") else ((None, 7),)
    with tr.no_grad():
        for output_stride, size in strides:
            model = getattr(models, name)(num_classes=5, in_channels=1, output_stride=output_stride).eval()
            features = model.forward_features(tr.zeros((0, 1, 224, 224)))
            channels = 512 * (1 if name in ("resnet18", "resnet34") else 4)
            assert features.shape == (0, channels, size, size)
        assert model(tr.zeros((0, 1, 224, 224))).shape == (0, 5)


def test_real_forward_shapes(rng):
    x = tr.tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    with tr.no_grad():
        assert models.resnet18(num_classes=7).eval()(x).shape == (2, 7)
        assert models.resnet20()(x).shape == (2, 10)
        assert models.plain20(num_classes=100)(x).shape == (2, 100)
        assert models.cifar_resnet(8, width=4, in_channels=1)(x[:, :1]).shape == (2, 10)
        assert models.resnet1202().eval()(tr.zeros((0, 3, 32, 32))).shape == (0, 10)


def test_stride_in_1x1_moves_the_stride_and_keeps_the_parameters():
    paper, torchvision = models.resnet50(stride_in_1x1=True), models.resnet50()
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    assert torchvision.layer2[0].conv1.stride == (1, 1) and torchvision.layer2[0].conv2.stride == (2, 2)
    assert count(paper) == count(torchvision)


def test_dilation_replaces_stride_like_torchvision():
    model = models.resnet50(output_stride=8)
    assert model.layer3[0].conv2.stride == (1, 1) and model.layer3[0].conv2.dilation == (1, 1)
    assert model.layer3[1].conv2.dilation == (2, 2) and model.layer4[0].conv2.dilation == (2, 2)
    assert model.layer4[1].conv2.dilation == (4, 4) and model.layer4[0].downsample[0].stride == (1, 1)


def test_zero_init_residual_makes_blocks_start_as_identity():
    model = models.resnet50(zero_init_residual=True)
    assert all(np.all(block.bn3.weight.numpy() == 0) for block in model.layer1)
    assert all(np.all(block.bn2.weight.numpy() == 0) for block in models.resnet18(zero_init_residual=True).layer4)


def test_torchvision_initialization():
    model = models.resnet50()
    weight = model.layer3[0].conv2.weight.numpy()  # (256, 256, 3, 3), fan_out = 256 * 9
    assert weight.std() == pytest.approx(np.sqrt(2 / (256 * 9)), rel=0.02)
    assert np.all(model.bn1.weight.numpy() == 1) and np.all(model.bn1.bias.numpy() == 0)


def test_manual_seed_makes_models_reproducible():
    tr.nn.init.manual_seed(7)
    first = models.resnet20().state_dict()
    tr.nn.init.manual_seed(7)
    second = models.resnet20().state_dict()
    assert all(np.array_equal(first[key], second[key]) for key in first)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2 with BasicBlock.*8, 14, 20, 26"):
        models.cifar_resnet(21)
    with pytest.raises(ValueError, match=r"depth must be 9n \+ 2 with Bottleneck"):
        models.cifar_resnet(21, block="bottleneck")
    with pytest.raises(ValueError, match="block must be one of"):
        models.cifar_resnet(20, block="dense")
    with pytest.raises(ValueError, match="shortcut must be one of"):
        models.resnet20(shortcut="D")
    with pytest.raises(ValueError, match="output_stride must be None, 32, 16 or 8"):
        models.resnet50(output_stride=4)
    with pytest.raises(ValueError, match="stride_in_1x1 only applies to bottleneck"):
        models.resnet18(stride_in_1x1=True)


# --------------------------------------------------------------------------- blocks
def test_plain_block_has_no_shortcut_and_a_residual_block_adds_one(rng):
    x = tr.tensor(rng.standard_normal((2, 4, 6, 6)))
    residual = models.BasicBlock(4, 4, shortcut=models.make_shortcut("A", 4, 4, 1)).double().eval()
    plain = models.BasicBlock(4, 4, shortcut=None).double().eval()
    plain.load_state_dict(residual.state_dict())
    assert isinstance(residual.shortcut, nn.Identity) and plain.shortcut is None
    with tr.no_grad():
        branch = residual.bn2(residual.conv2(F.relu(residual.bn1(residual.conv1(x)))))
        np.testing.assert_allclose(residual(x).numpy(), F.relu(branch + x).numpy())
        np.testing.assert_allclose(plain(x).numpy(), F.relu(branch).numpy())


@pytest.mark.parametrize("option, in_planes, stride, expected", [
    ("A", 16, 2, models.ZeroPadShortcut), ("A", 32, 1, nn.Identity),
    ("B", 16, 2, nn.Sequential), ("B", 32, 1, nn.Identity),
    ("C", 16, 2, nn.Sequential), ("C", 32, 1, nn.Sequential),
    (None, 16, 2, type(None)),
])
def test_make_shortcut_follows_the_papers_options(option, in_planes, stride, expected):
    """A pads and B projects only where the shape changes, C projects everywhere, plain: none."""
    shortcut = models.make_shortcut(option, in_planes, 32, stride)
    assert type(shortcut) is expected
    if expected is nn.Sequential:
        conv, norm = shortcut
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == \
            (in_planes, 32, (1, 1), (stride, stride)) and norm.num_features == 32


def test_the_network_hands_each_block_its_shortcut():
    kinds = lambda stage: [type(block.shortcut).__name__ for block in stage]  # noqa: E731
    model = models.resnet20()
    assert kinds(model.layer1) == ["Identity"] * 3
    assert kinds(model.layer2) == ["ZeroPadShortcut", "Identity", "Identity"]
    assert (model.layer3[0].shortcut.out_channels, model.layer3[0].shortcut.stride) == (64, 2)
    plain = models.plain20()
    assert all(block.shortcut is None for stage in (plain.layer1, plain.layer2, plain.layer3)
               for block in stage)
    imagenet = models.resnet18()
    assert kinds(imagenet.layer2) == ["Sequential", "Identity"]
    assert not model.preactivation and models.cifar_resnet(8, block="preact_basic").preactivation


def test_a_block_refuses_a_shortcut_option_in_place_of_a_module():
    with pytest.raises(TypeError, match=r"BasicBlock: shortcut must be an nn.Module or None .*got 'A'"):
        models.BasicBlock(4, 8, stride=2, shortcut="A")


def test_option_a_shortcut_is_zero_padding(rng):
    block = models.BasicBlock(4, 8, stride=2, shortcut=models.make_shortcut("A", 4, 8, 2)).double().eval()
    for parameter in block.parameters():
        parameter.data[...] = 0  # the residual branch now outputs bn2.bias = 0
    x = rng.standard_normal((1, 4, 6, 6))
    with tr.no_grad():
        y = block(tr.tensor(x)).numpy()
    expected = np.zeros((1, 8, 3, 3))
    expected[:, 2:6] = np.maximum(x[:, :, ::2, ::2], 0)
    np.testing.assert_array_equal(y, expected)


# --------------------------------------------------------------------------- gradients
GRADCHECK_NETWORKS = {
    "basic_A": dict(depth=8, block="basic", shortcut="A"),
    "bottleneck_B": dict(depth=11, block="bottleneck", shortcut="B"),
    "preact_basic_B": dict(depth=8, block="preact_basic", shortcut="B"),
}


def check_network_gradients(network, training):
    options = dict(GRADCHECK_NETWORKS[network])
    model = randomize(models.cifar_resnet(options.pop("depth"), width=4, **options)).double()
    model.train(training)
    x = tr.tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8)), requires_grad=True)
    report = tr.gradcheck(lambda x, *parameters: model(x), [x] + list(model.parameters()), mode="random")
    assert report.passed and len(report.inputs) == 1 + len(list(model.parameters()))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_whole_network_gradcheck(backend, training):
    """Finite differences agree with backward for every parameter of ResNet-8, in float64,
    with batch statistics (train) and with running statistics (eval)."""
    check_network_gradients("basic_A", training)


@pytest.mark.parametrize("network", ["bottleneck_B", "preact_basic_B"])
def test_block_variant_gradcheck(network):
    """The other block types and shortcuts, in training mode (the kernels are covered above)."""
    with tr.use_backend("numpy"):
        check_network_gradients(network, training=True)


# --------------------------------------------------------------------------- parity with torch
PARITY_NETWORKS = {
    "cifar_basic_A": (lambda: models.cifar_resnet(8, width=4, shortcut="A"),
                      lambda: TorchResNet(TorchBasicBlock, [1, 1, 1], 10, 4, cifar=True, shortcut="A"), 16),
    "cifar_preact_C": (lambda: models.cifar_resnet(14, width=4, shortcut="C", block="preact_basic"),
                       lambda: TorchResNet(TorchBasicBlock, [2, 2, 2], 10, 4, cifar=True, shortcut="C",
                                           preact=True), 16),
    "imagenet_basic_os8": (lambda: models.ResNet(models.BasicBlock, [1, 2, 1, 1], 6, width=4, output_stride=8),
                           lambda: TorchResNet(TorchBasicBlock, [1, 2, 1, 1], 6, 4, dilate=(False, True, True)),
                           48),
    "imagenet_bottleneck": (lambda: models.ResNet(models.Bottleneck, [2, 1, 2, 1], 6, width=4),
                            lambda: TorchResNet(TorchBottleneck, [2, 1, 2, 1], 6, 4), 64),
    "imagenet_bottleneck_1x1_os16": (
        lambda: models.ResNet(models.Bottleneck, [1, 1, 2, 1], 6, width=4, stride_in_1x1=True, output_stride=16),
        lambda: TorchResNet(TorchBottleneck, [1, 1, 2, 1], 6, 4, dilate=(False, False, True), stride_in_1x1=True),
        64),
}


def _parity_pair(network, seed=0):
    make_ours, make_theirs, size = PARITY_NETWORKS[network]
    ours, theirs = randomize(make_ours(), seed), make_theirs()
    theirs.load_state_dict(to_torch(ours.state_dict()))  # strict: the keys must be identical
    x = np.random.default_rng(seed + 1).standard_normal((2, 3, size, size)).astype(np.float32)
    return ours, theirs, x


@pytest.mark.parametrize("network", list(PARITY_NETWORKS))
def test_eval_forward_matches_torch(backend, network):
    ours, theirs, x = _parity_pair(network)
    ours.eval(), theirs.eval()
    with tr.no_grad(), torch.no_grad():
        got, expected = ours(tr.tensor(x)).numpy(), theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("network", ["cifar_basic_A", "imagenet_bottleneck"])
def test_train_step_matches_torch(backend, network):
    """Training mode: same output, same gradients of every parameter, same running statistics."""
    ours, theirs, x = _parity_pair(network, seed=3)
    ours.train(), theirs.train()
    labels = np.array([1, 4])
    loss = F.cross_entropy(ours(tr.tensor(x)), labels)
    loss.backward()
    expected_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(labels))
    expected_loss.backward()
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-4)
    their_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        expected = their_parameters[name].grad.numpy()
        np.testing.assert_allclose(parameter.grad.numpy(), expected, rtol=2e-3,
                                   atol=2e-4 * np.abs(expected).max() + 1e-7, err_msg=name)
    their_state = theirs.state_dict()
    rtol, atol = tolerance(np.float32)
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value, their_state[key].numpy(), rtol=rtol, atol=atol, err_msg=key)


def test_batchnorm_makes_train_and_eval_differ(rng):
    """Train mode normalizes with the batch (a sample's output depends on its batch mates),
    eval mode with the running statistics (it does not)."""
    model = randomize(models.cifar_resnet(8, width=4))
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    with tr.no_grad():
        train_alone, train_batch = model(tr.tensor(x[:2])).numpy(), model(tr.tensor(x)).numpy()[:2]
        model.eval()
        eval_alone, eval_batch = model(tr.tensor(x[:2])).numpy(), model(tr.tensor(x)).numpy()[:2]
    assert not np.allclose(train_alone, train_batch, atol=1e-4)
    np.testing.assert_allclose(eval_alone, eval_batch, rtol=1e-5, atol=1e-6)
    assert not np.allclose(train_batch, eval_batch, atol=1e-4)
    assert int(model.bn1.num_batches_tracked) == 2


def test_models_are_nn_modules_with_readable_repr():
    model = models.resnet20()
    assert isinstance(model, nn.Module)
    text = repr(model)
    assert text.startswith("CifarResNet(\n  (conv1): Conv2d(3, 16, kernel_size=(3, 3)")
    assert "(downsample): ZeroPadShortcut(out_channels=32, stride=2)" in text
