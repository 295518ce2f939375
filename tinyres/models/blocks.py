"""Residual blocks: y = relu(F(x) + shortcut(x)) (He et al., 2016) and the pre-activation
form y = F(x) + shortcut(x) (He et al., 2016b, "Identity Mappings in Deep Residual Networks").

The network decides, the block receives: a network's ``_make_layer`` builds each block's
shortcut with :func:`make_shortcut` and hands it to the block, which only applies it.
A plain block (the paper's networks without shortcuts) is handed ``None``.

Names follow torchvision (``conv1``, ``bn1``, ..., ``downsample.0``, ``downsample.1``), so
the state dict of a network built from these blocks has torchvision's keys.  This module
also holds the networks' shared initialization, :func:`initialize_resnet`.
"""
from .. import functional as F
from .. import nn

SHORTCUT_OPTIONS = ("A", "B", "C")


def conv3x3(in_planes, out_planes, stride=1, dilation=1):
    """3x3 convolution without bias (batch norm follows); padding = dilation keeps the size at stride 1."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     dilation=dilation, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution without bias: mixes channels, or subsamples when stride > 1."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


# --------------------------------------------------------------------------- shortcuts
class ZeroPadShortcut(nn.Module):
    """Option A's shortcut: keep every ``stride``-th pixel, then append zero channels.

    x: (N, C, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)); the
    C channels of x sit in the middle, (out_channels - C) // 2 zero channels before them.
    No parameters, so a ResNet with option A has exactly the weights of its plain twin.
    """

    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        return F.zero_pad_shortcut(x, self.out_channels, self.stride)

    def extra_repr(self):
        return f"out_channels={self.out_channels}, stride={self.stride}"


def projection_shortcut(in_planes, out_planes, stride):
    """Options B and C's shortcut: a 1x1 convolution (stride ``stride``) and batch norm.

    x: (N, in_planes, H, W) -> (N, out_planes, ceil(H / stride), ceil(W / stride)).
    torchvision's ``downsample``: ``downsample.0`` is the convolution, ``downsample.1`` the norm.
    """
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


def check_shortcut_option(option, owner):
    """Raise a ValueError naming ``owner`` unless ``option`` is "A", "B" or "C"."""
    if option not in SHORTCUT_OPTIONS:
        raise ValueError(f"{owner}: shortcut must be one of {SHORTCUT_OPTIONS} (zero padding, "
                         f"projection where needed, projection everywhere), got {option!r}")


def make_shortcut(option, in_planes, out_planes, stride):
    """The shortcut of a block from ``in_planes`` to ``out_planes`` at ``stride``, by the paper's option.

    x: (N, in_planes, H, W) -> (N, out_planes, ceil(H / stride), ceil(W / stride)).
    The shape changes in the first block of a stage (stride > 1 or more channels):

    * ``"A"`` -- zero padding (:class:`ZeroPadShortcut`) where the shape changes, the
      identity elsewhere; no parameters (the paper's CIFAR networks);
    * ``"B"`` -- a projection (:func:`projection_shortcut`: 1x1 convolution + batch norm)
      where the shape changes, the identity elsewhere (torchvision's choice);
    * ``"C"`` -- a projection in every block, even where the identity would fit.

    ``None`` (a plain network) gives no shortcut at all: the block is then handed None.
    """
    if option is None:
        return None
    check_shortcut_option(option, "make_shortcut")
    shape_changes = stride != 1 or in_planes != out_planes
    if option == "C" or (option == "B" and shape_changes):
        return projection_shortcut(in_planes, out_planes, stride)
    if option == "A" and shape_changes:
        return ZeroPadShortcut(out_planes, stride)
    return nn.Identity()


# --------------------------------------------------------------------------- blocks
class ResidualBlock(nn.Module):
    """What every block shares: keeping the shortcut it is handed, and y = relu(F(x) + shortcut(x)).

    A subclass builds the layers of its residual branch F, defines ``residual(x)`` and
    calls ``_keep_shortcut`` last.  ``shortcut`` is None for a plain block: y = relu(F(x)).
    """

    expansion = 1
    preactivation = False

    def _keep_shortcut(self, shortcut):
        if shortcut is not None and not isinstance(shortcut, nn.Module):
            raise TypeError(f"{type(self).__name__}: shortcut must be an nn.Module or None (a plain "
                            f"block), got {shortcut!r}; the network builds it, e.g. "
                            f"make_shortcut('A', in_planes, out_planes, stride)")
        # kept under torchvision's name, and after the branch's layers, so that a projection's
        # weights have torchvision's keys in torchvision's order (layer2.0.downsample.0.weight)
        self.downsample = shortcut

    @property
    def shortcut(self):
        """The module on the shortcut path (registered as ``downsample``); None for a plain block."""
        return self.downsample

    def forward(self, x):
        out = self.residual(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions: y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    x: (N, in_planes, H, W) -> (N, planes, Ho, Wo), Ho = ceil(H / stride).  expansion = 1.
    shortcut: a module from :func:`make_shortcut` (``nn.Identity()`` where the shape is
    kept), or None for a plain block.
    """

    expansion = 1

    def __init__(self, in_planes, planes, stride=1, dilation=1, *, shortcut):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self._keep_shortcut(shortcut)

    def residual(self, x):
        """F(x) = bn2(conv2(relu(bn1(conv1(x))))): (N, in_planes, H, W) -> (N, planes, Ho, Wo)."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(ResidualBlock):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand to 4 * planes), then add the shortcut and ReLU.

    y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))

    x: (N, in_planes, H, W) -> (N, 4 * planes, Ho, Wo), Ho = ceil(H / stride).
    The stride sits on the 3x3 (torchvision, "ResNet v1.5"); ``stride_in_1x1=True``
    puts it on the first 1x1 as in the original paper, which skips 3/4 of the
    input pixels outright and makes the 3x3 run at the lower resolution.
    """

    expansion = 4

    def __init__(self, in_planes, planes, stride=1, dilation=1, *, shortcut, stride_in_1x1=False):
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_planes, planes, stride_1x1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride_3x3, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self._keep_shortcut(shortcut)

    def residual(self, x):
        """F(x) = bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))): -> (N, 4 * planes, Ho, Wo)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class PreActivationBlock(ResidualBlock):
    """What the pre-activation blocks share: y = F(relu(bn1(x))) + shortcut, nothing after the sum.

    Nothing follows the addition, so the identity path runs unchanged from block to
    block.  A projection or zero-padding shortcut reads the activated input relu(bn1(x))
    (as in He et al.'s code), the identity reads x itself.  A network of these blocks
    needs one last BN + ReLU before pooling.
    """

    preactivation = True

    def forward(self, x):
        activated = self.relu(self.bn1(x))
        out = self.residual(activated)
        if self.shortcut is None:
            return out
        reads_x = isinstance(self.shortcut, nn.Identity)
        return out + self.shortcut(x if reads_x else activated)


class PreActBasicBlock(PreActivationBlock):
    """Pre-activation basic block (He et al., 2016b): BN and ReLU come before each convolution.

    y = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut

    x: (N, in_planes, H, W) -> (N, planes, Ho, Wo).
    """

    expansion = 1

    def __init__(self, in_planes, planes, stride=1, dilation=1, *, shortcut):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.conv1 = conv3x3(in_planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self._keep_shortcut(shortcut)

    def residual(self, activated):
        """F = conv2(relu(bn2(conv1(activated)))), activated = relu(bn1(x))."""
        return self.conv2(self.relu(self.bn2(self.conv1(activated))))


class PreActBottleneck(PreActivationBlock):
    """Pre-activation bottleneck (He et al., 2016b): BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1, add.

    y = conv3(relu(bn3(conv2(relu(bn2(conv1(relu(bn1(x))))))))) + shortcut

    x: (N, in_planes, H, W) -> (N, 4 * planes, Ho, Wo); the stride sits on the 3x3
    (or on the first 1x1 with ``stride_in_1x1=True``).
    """

    expansion = 4

    def __init__(self, in_planes, planes, stride=1, dilation=1, *, shortcut, stride_in_1x1=False):
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.conv1 = conv1x1(in_planes, planes, stride_1x1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride_3x3, dilation)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self._keep_shortcut(shortcut)

    def residual(self, activated):
        """F = conv3(relu(bn3(conv2(relu(bn2(conv1(activated))))))), activated = relu(bn1(x))."""
        out = self.conv2(self.relu(self.bn2(self.conv1(activated))))
        return self.conv3(self.relu(self.bn3(out)))


# --------------------------------------------------------------------------- initialization
def initialize_resnet(model, zero_init_residual=False):
    """torchvision's initialization: He normal (fan_out, ReLU) convolutions, BN weight 1 and bias 0.

    W ~ N(0, 2 / (K * R * S)) for a (K, C, R, S) kernel.  ``zero_init_residual`` zeroes
    the last BN of each post-activation block, so every block starts as the identity
    (Goyal et al., 2017) -- helps large-batch training.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)
