"""A frozen VGG-19 convolutional trunk for perceptual losses, and the loss itself.

Nothing is downloaded: the trunk is built here (layer for layer torchvision's
``vgg19().features``, so its state dicts load) and takes weights from a local file, or keeps
its random initialisation, which still gives a (weaker) feature-matching loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# torchvision's configuration "E": conv widths, "M" for 2 × 2 max pooling
VGG19_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
DEFAULT_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Names of the trunk's modules in order: ``conv{block}_{i}``, ``relu{block}_{i}``,
    ``pool{block}``; position n is ``features[n]`` of torchvision's VGG-19."""
    names, block, conv = [], 1, 0
    for width in VGG19_CONFIG:
        if width == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def _trunk(num_modules: int) -> nn.Sequential:
    """The first ``num_modules`` modules of the VGG-19 trunk, initialised as torchvision does."""
    modules: list[nn.Module] = []
    channels = 3
    for width in VGG19_CONFIG:
        if width == "M":
            modules.append(nn.MaxPool2d(2, 2))
        else:
            conv = nn.Conv2d(channels, int(width), 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.get_parameter("bias"))
            # not in place: a tapped conv output must survive the ReLU after it
            modules += [conv, nn.ReLU()]
            channels = int(width)
    return nn.Sequential(*modules[:num_modules])


def _read_state(path: Path, trunk: nn.Sequential) -> dict[str, Tensor]:
    """The tensors of a torchvision VGG-19 (or ``.features``) state dict the trunk needs.

    Raises:
        ValueError: naming ``path``, when it is no state dict or its keys or shapes differ.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # pickle, zip and format errors alike
        raise ValueError(f"VGG19Features: cannot read a state dict from {path}: {err}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"VGG19Features: {path} holds a {type(state).__name__}, not a state dict")
    if any(k.startswith("features.") for k in state):  # a whole torchvision vgg19
        state = {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
    names = vgg19_layer_names()
    known = {
        f"{i}.{p}" for i, n in enumerate(names) if n.startswith("conv") for p in ("weight", "bias")
    }
    expected = trunk.state_dict()
    missing = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - known)
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unknown or shapes:
        raise ValueError(
            f"VGG19Features: {path} is not a VGG-19 state dict (torchvision vgg19 or its "
            f".features): missing {missing[:4]}, unexpected {unknown[:4]}, wrong shape {shapes[:4]}"
        )
    return {k: state[k] for k in expected}


class VGG19Features(nn.Module):
    """Frozen VGG-19 trunk returning the activations of chosen layers.

    Inputs are images in [-1, 1]; they are mapped to [0, 1] and normalised with ImageNet's
    statistics inside, as the trained weights expect. The trunk stops at the deepest chosen
    layer. Parameters never require gradients and the module stays in eval mode whatever
    ``train()`` is asked, but gradients flow to the input.

    Args:
        weights: path of a ``torch.save``d state dict, of torchvision's ``vgg19()`` or of its
            ``.features``; None keeps the random initialisation.
        layers: names from :func:`vgg19_layer_names`, e.g. ``relu3_4``.

    Attributes:
        source: ``"file:<path>"`` or ``"random"``, for logs.

    Shape:
        (B, 3, H, W) → {layer: (B, C_layer, H / 2**pools, W / 2**pools)} in ``layers`` order
    """

    def __init__(
        self, weights: str | Path | None = None, layers: Sequence[str] = DEFAULT_LAYERS
    ) -> None:
        super().__init__()
        names = vgg19_layer_names()
        bad = [name for name in layers if name not in names]
        if bad or not layers:
            raise ValueError(f"VGG19Features: unknown layers {bad}; choose from {names}")
        self.layers = tuple(layers)
        self._taps = {names.index(name): name for name in self.layers}
        self.features = _trunk(max(self._taps) + 1)  # "features." prefix as in torchvision
        if weights is None:
            self.source = "random"
        else:
            self.features.load_state_dict(_read_state(Path(weights), self.features))
            self.source = f"file:{weights}"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.mean: Tensor
        self.std: Tensor
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        """Stays in eval mode: a loss network must not change with the model's mode."""
        return super().train(False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = ((x + 1.0) / 2.0 - self.mean) / self.std  # (B, 3, H, W), ImageNet-normalised
        found: dict[str, Tensor] = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self._taps:
                found[self._taps[i]] = x
        return {name: found[name] for name in self.layers}


def perceptual_loss(features_module: VGG19Features, fake: Tensor, real: Tensor) -> Tensor:
    """Mean over the chosen layers of the L1 distance between VGG features of two images.

    The real images are targets: their features are computed without gradient.

    Shape:
        fake (B, 3, H, W), real (B, 3, H, W) in [-1, 1] → scalar
    """
    fake_features = features_module(fake)
    with torch.no_grad():
        real_features = features_module(real)
    distances = [F.l1_loss(fake_features[k], real_features[k]) for k in fake_features]
    return torch.stack(distances).mean()
