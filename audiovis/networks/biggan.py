"""BigGAN (Brock et al., "Large Scale GAN Training for High Fidelity Natural Image Synthesis"):
a class-conditional generator and projection discriminator to train, and the BigGAN-deep
generator in the layout of ``pytorch-pretrained-biggan``, loadable from a local weights file.

Every generator here takes a noise vector ``z`` (B, z_dim), a class vector ``y`` (B, num_classes)
(one-hot, or a mixture of classes when walking between them) and a truncation, and returns
images (B, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import itertools
import json
import math
import os
import pickle
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiovis.errors import FileProblem

#: file names of a ``pytorch-pretrained-biggan`` model folder
WEIGHTS_NAME, CONFIG_NAME = "pytorch_model.bin", "config.json"


def sn(module: nn.Module, eps: float = 1e-4) -> nn.Module:
    """Spectral normalisation with the state-dict keys BigGAN checkpoints use
    (``weight_orig``, ``weight_u``, ``weight_v``)."""
    return nn.utils.spectral_norm(module, eps=eps)


@torch.no_grad()
def settle_spectral_norms(module: nn.Module, iterations: int = 10) -> None:
    """Run power iterations on every spectrally normalised layer of a freshly built network.

    In eval mode spectral norm divides by the singular value estimated from its stored
    vectors; right after initialisation those are random, the estimate can be near zero and
    an untrained network's output overflows. Trained or loaded weights bring their own.
    """
    for m in module.modules():
        weight, u, v = (getattr(m, name, None) for name in ("weight_orig", "weight_u", "weight_v"))
        if not (isinstance(weight, Tensor) and isinstance(u, Tensor) and isinstance(v, Tensor)):
            continue
        w = weight.reshape(weight.shape[0], -1)
        new_u, new_v = u, v
        for _ in range(iterations):
            new_v = F.normalize(w.t() @ new_u, dim=0, eps=1e-12)
            new_u = F.normalize(w @ new_v, dim=0, eps=1e-12)
        u.copy_(new_u)
        v.copy_(new_v)


def as_class_vector(y: Tensor, num_classes: int) -> Tensor:
    """Class ids (B,) → one-hot (B, num_classes); class vectors (B, num_classes) pass through."""
    if y.dim() == 1:
        return F.one_hot(y.long(), num_classes).float()
    if y.dim() != 2 or y.shape[1] != num_classes:
        raise ValueError(f"class vectors must be (B, {num_classes}), got {tuple(y.shape)}")
    return y.float()


def truncated_noise(
    n: int, z_dim: int, truncation: float = 1.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Noise (n, z_dim) from a standard normal truncated to [-2, 2], scaled by ``truncation``
    (BigGAN's truncation trick)."""
    rng = rng or np.random.default_rng()
    values = rng.standard_normal((n, z_dim))
    bad = np.abs(values) > 2
    while bad.any():  # resample the tails: a truncated normal, not a clipped one
        values[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(values) > 2
    return (truncation * values).astype(np.float32)


class SelfAttention(nn.Module):
    """SAGAN self-attention over the pixels, with keys/values pooled 2x2 (BigGAN's).

    Attribute names follow ``pytorch-pretrained-biggan`` so its weights load.

    Shape:
        (B, C, H, W) → (B, C, H, W), H and W even.
    """

    def __init__(self, channels: int, eps: float = 1e-4) -> None:
        super().__init__()
        c = channels
        self.snconv1x1_theta = sn(nn.Conv2d(c, c // 8, 1, bias=False), eps)
        self.snconv1x1_phi = sn(nn.Conv2d(c, c // 8, 1, bias=False), eps)
        self.snconv1x1_g = sn(nn.Conv2d(c, c // 2, 1, bias=False), eps)
        self.snconv1x1_o_conv = sn(nn.Conv2d(c // 2, c, 1, bias=False), eps)
        self.gamma = nn.Parameter(torch.zeros(1))  # starts as the identity

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        theta = self.snconv1x1_theta(x).flatten(2)  # (B, C/8, HW)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).flatten(2)  # (B, C/8, HW/4)
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (B, HW, HW/4)
        g = F.max_pool2d(self.snconv1x1_g(x), 2).flatten(2)  # (B, C/2, HW/4)
        out = (g @ attn.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.snconv1x1_o_conv(out)


# ------------------------------------------------------------------ a BigGAN to train ourselves


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are linear in a conditioning vector (BigGAN's CBN).

    Shape:
        x (B, C, H, W), cond (B, D) → (B, C, H, W).
    """

    def __init__(self, channels: int, cond_dim: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False, eps=eps)
        self.gain = sn(nn.Linear(cond_dim, channels, bias=False))
        self.bias = sn(nn.Linear(cond_dim, channels, bias=False))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gain = 1 + self.gain(cond)[:, :, None, None]  # centred on 1: starts as plain BN
        return self.bn(x) * gain + self.bias(cond)[:, :, None, None]


class GBlock(nn.Module):
    """Residual up-block: CBN → ReLU → 2x nearest up → conv3 → CBN → ReLU → conv3, plus a 1x1
    conv on the up-sampled input.

    Shape:
        x (B, C_in, H, W), cond (B, D) → (B, C_out, 2H, 2W).
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(c_in, cond_dim)
        self.conv1 = sn(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.bn2 = ConditionalBatchNorm2d(c_out, cond_dim)
        self.conv2 = sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DBlock(nn.Module):
    """Residual down-block: (ReLU) → conv3 → ReLU → conv3 → 2x2 average pool, plus a 1x1 conv
    on the pooled input. The first block of the discriminator skips the leading ReLU.

    Shape:
        (B, C_in, H, W) → (B, C_out, H/2, W/2), or (B, C_out, H, W) with ``down=False``.
    """

    def __init__(self, c_in: int, c_out: int, down: bool = True, preactivation: bool = True):
        super().__init__()
        self.conv1 = sn(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1)) if c_in != c_out or down else None
        self.down, self.preactivation = down, preactivation

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        skip = x
        if self.down:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        if self.skip is not None:
            skip = self.skip(skip)
        return h + skip


def channel_multipliers(image_size: int) -> list[int]:
    """Width multipliers from 4x4 up to ``image_size`` (BigGAN's 16,16,8,4,2,1 at 128 px)."""
    n = int(round(math.log2(image_size / 4)))
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"image_size must be 4 times a power of two (8..512), got {image_size}")
    return [min(16, 2 ** (n - i)) for i in range(n + 1)]


class ConditionalGenerator(nn.Module):
    """BigGAN generator: (z, class) → a linear layer to 4x4 → up-blocks with conditional batch
    norm → BN → ReLU → conv3 → tanh, with self-attention at ``attention`` px.

    The class enters through a linear embedding of the class vector (an embedding table for
    one-hot vectors, a mixture of embeddings for mixed ones) concatenated with z, as in
    BigGAN-deep; every CBN sees that vector.

    Args:
        num_classes: classes.
        image_size: output side (8..512, 4 times a power of two).
        channels: base width (BigGAN's ``ch``; 96 in the paper at 128 px).
        z_dim: noise size.
        embed_dim: class embedding size.
        attention: side at which self-attention sits (``None``: none).

    Shape:
        z (B, z_dim), y (B, num_classes) or (B,) ids → (B, 3, image_size, image_size).
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int = 64,
        channels: int = 32,
        z_dim: int = 128,
        embed_dim: int = 128,
        attention: int | None = 64,
    ) -> None:
        super().__init__()
        self.num_classes, self.image_size, self.z_dim = num_classes, image_size, z_dim
        mults = channel_multipliers(image_size)
        cond_dim = z_dim + embed_dim
        self.embed = nn.Linear(num_classes, embed_dim, bias=False)
        self.linear = sn(nn.Linear(cond_dim, 4 * 4 * channels * mults[0]))
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        side = 4
        for i, (m_in, m_out) in enumerate(itertools.pairwise(mults)):
            self.blocks.append(GBlock(channels * m_in, channels * m_out, cond_dim))
            side *= 2
            if side == attention:
                self.attention[str(i)] = SelfAttention(channels * m_out)
        self.out_bn = nn.BatchNorm2d(channels * mults[-1], eps=1e-4)
        self.to_rgb = sn(nn.Conv2d(channels * mults[-1], 3, 3, padding=1))
        self.channels0 = channels * mults[0]
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear) and module is not self.embed:
                nn.init.orthogonal_(getattr(module, "weight_orig", module.weight))
        settle_spectral_norms(self)

    def forward(self, z: Tensor, y: Tensor, truncation: float = 1.0) -> Tensor:
        # truncation acts through z's sampling here; BigGAN-deep also uses it in its norms
        cond = torch.cat([z, self.embed(as_class_vector(y, self.num_classes))], dim=1)
        h = self.linear(cond).view(len(z), self.channels0, 4, 4)  # (B, C0, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, cond)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return torch.tanh(self.to_rgb(F.relu(self.out_bn(h))))  # (B, 3, S, S)


class ProjectionDiscriminator(nn.Module):
    """BigGAN discriminator: residual down-blocks → ReLU → sum over pixels → linear score plus
    the projection of the features on the class embedding (Miyato & Koyama).

    Args:
        num_classes: classes.
        image_size: input side.
        channels: base width.
        attention: side at which self-attention sits (``None``: none).

    Shape:
        x (B, 3, S, S), y (B, num_classes) or (B,) → scores (B,).
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int = 64,
        channels: int = 32,
        attention: int | None = 64,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        mults = channel_multipliers(image_size)[::-1]  # 1, 2, 4, … at full size first
        self.blocks = nn.ModuleList()
        c_in, side = 3, image_size
        for i, m in enumerate(mults[1:]):
            if side == attention and i > 0:
                self.blocks.append(SelfAttention(c_in))
            self.blocks.append(DBlock(c_in, channels * m, down=True, preactivation=i > 0))
            c_in, side = channels * m, side // 2
        self.blocks.append(DBlock(c_in, c_in, down=False))  # the 4x4 block of BigGAN
        self.linear = sn(nn.Linear(c_in, 1))
        self.embed = sn(nn.Linear(num_classes, c_in, bias=False))
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.orthogonal_(getattr(module, "weight_orig", module.weight))
        settle_spectral_norms(self)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
        h = F.relu(h).sum(dim=(2, 3))  # (B, C)
        projection = (self.embed(as_class_vector(y, self.num_classes)) * h).sum(1)
        return self.linear(h).squeeze(1) + projection


# ------------------------------------------------------------ BigGAN-deep (pretrained layout)


@dataclass
class BigGANConfig:
    """The fields of a ``pytorch-pretrained-biggan`` ``config.json`` (BigGAN-deep 128 here).

    ``layers`` lists each residual block as (up-sample, in-width, out-width), widths in units of
    ``channel_width``; the attention block sits before block ``attention_layer_position``.
    Batch-norm statistics were precomputed for ``n_stats`` truncations evenly spaced in [0, 1].
    """

    output_dim: int = 128
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: list[tuple[bool, int, int]] = field(
        default_factory=lambda: [
            (False, 16, 16),
            (True, 16, 16),
            (False, 16, 16),
            (True, 16, 8),
            (False, 8, 8),
            (True, 8, 4),
            (False, 4, 4),
            (True, 4, 2),
            (False, 2, 2),
            (True, 2, 1),
        ]  # fmt: skip
    )
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BigGANConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        config = cls(**known)
        config.layers = [(bool(u), int(i), int(o)) for u, i, o in config.layers]
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TruncatedBatchNorm(nn.Module):
    """BigGAN-deep's batch norm at inference: mean and variance precomputed for ``n_stats``
    truncation values in [0, 1] and interpolated linearly between them; conditional gain and
    bias from the conditioning vector (or plain affine ones).

    Shape:
        x (B, C, H, W), cond (B, D) → (B, C, H, W).
    """

    def __init__(
        self, channels: int, cond_dim: int | None = None, n_stats: int = 51, eps: float = 1e-4
    ) -> None:
        super().__init__()
        self.eps, self.n_stats = eps, n_stats
        self.running_means: Tensor
        self.running_vars: Tensor
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.conditional = cond_dim is not None
        if cond_dim is not None:
            self.scale = sn(nn.Linear(cond_dim, channels, bias=False), eps)
            self.offset = sn(nn.Linear(cond_dim, channels, bias=False), eps)
        else:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def statistics(self, truncation: float) -> tuple[Tensor, Tensor]:
        position = truncation * (self.n_stats - 1)
        lo = min(int(math.floor(position)), self.n_stats - 2)
        w = position - lo
        mean = (1 - w) * self.running_means[lo] + w * self.running_means[lo + 1]
        var = (1 - w) * self.running_vars[lo] + w * self.running_vars[lo + 1]
        return mean, var

    def forward(self, x: Tensor, truncation: float, cond: Tensor | None = None) -> Tensor:
        mean, var = self.statistics(truncation)
        x = (x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps)
        if self.conditional:
            assert cond is not None
            gain = 1 + self.scale(cond)[:, :, None, None]
            return x * gain + self.offset(cond)[:, :, None, None]
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class DeepBlock(nn.Module):
    """BigGAN-deep's bottleneck residual block: four (BN → ReLU → conv) with 1x1, 3x3, 3x3, 1x1
    convolutions at a quarter of the width; the skip drops channels and up-samples.

    Shape:
        x (B, C_in, H, W) → (B, C_out, H', W'), H' = 2H when ``up``.
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int, up: bool, n_stats: int,
                 eps: float) -> None:  # fmt: skip
        super().__init__()
        mid = c_in // 4
        self.up, self.drop_channels = up, c_in != c_out
        self.bn_0 = TruncatedBatchNorm(c_in, cond_dim, n_stats, eps)
        self.conv_0 = sn(nn.Conv2d(c_in, mid, 1), eps)
        self.bn_1 = TruncatedBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_1 = sn(nn.Conv2d(mid, mid, 3, padding=1), eps)
        self.bn_2 = TruncatedBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_2 = sn(nn.Conv2d(mid, mid, 3, padding=1), eps)
        self.bn_3 = TruncatedBatchNorm(mid, cond_dim, n_stats, eps)
        self.conv_3 = sn(nn.Conv2d(mid, c_out, 1), eps)

    def forward(self, x: Tensor, cond: Tensor, truncation: float) -> Tensor:
        h = self.conv_0(F.relu(self.bn_0(x, truncation, cond)))
        h = F.relu(self.bn_1(h, truncation, cond))
        if self.up:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(F.relu(self.bn_2(h, truncation, cond)))
        h = self.conv_3(F.relu(self.bn_3(h, truncation, cond)))
        skip = x[:, : x.shape[1] // 2] if self.drop_channels else x
        if self.up:
            skip = F.interpolate(skip, scale_factor=2.0, mode="nearest")
        return h + skip


class DeepGenerator(nn.Module):
    """The body of BigGAN-deep: conditioning vector → images (see :class:`BigGANDeep`)."""

    def __init__(self, config: BigGANConfig) -> None:
        super().__init__()
        ch, cond_dim = config.channel_width, config.z_dim * 2
        self.width0 = 16 * ch
        self.gen_z = sn(nn.Linear(cond_dim, 4 * 4 * self.width0), config.eps)
        layers: list[nn.Module] = []
        for i, (up, c_in, c_out) in enumerate(config.layers):
            if i == config.attention_layer_position:
                layers.append(SelfAttention(ch * c_in, config.eps))
            layers.append(DeepBlock(ch * c_in, ch * c_out, cond_dim, up, config.n_stats,
                                    config.eps))  # fmt: skip
        self.layers = nn.ModuleList(layers)
        self.bn = TruncatedBatchNorm(ch, None, config.n_stats, config.eps)
        self.conv_to_rgb = sn(nn.Conv2d(ch, ch, 3, padding=1), config.eps)

    def forward(self, cond: Tensor, truncation: float) -> Tensor:
        # the linear layer's output is laid out (4, 4, C) as in the TensorFlow original
        h = self.gen_z(cond).view(-1, 4, 4, self.width0).permute(0, 3, 1, 2).contiguous()
        for layer in self.layers:
            h = layer(h, cond, truncation) if isinstance(layer, DeepBlock) else layer(h)
        h = self.conv_to_rgb(F.relu(self.bn(h, truncation)))
        return torch.tanh(h[:, :3])  # (B, 3, S, S)


class BigGANDeep(nn.Module):
    """BigGAN-deep's generator, with the module names (and so state-dict keys) of
    ``pytorch-pretrained-biggan``: ``embeddings.weight``, ``generator.gen_z.weight_orig``,
    ``generator.layers.<i>.bn_<k>.running_means`` …, so its ``pytorch_model.bin`` loads as is.

    The class vector (one-hot over the 1000 ImageNet classes, or a mixture) is embedded
    linearly and concatenated with z; the truncation (0, 1] selects precomputed batch-norm
    statistics and should match the one z was sampled with.

    Shape:
        z (B, z_dim), y (B, num_classes) or (B,) ids → (B, 3, output_dim, output_dim).
    """

    def __init__(self, config: BigGANConfig | None = None) -> None:
        super().__init__()
        self.config = config or BigGANConfig()
        self.z_dim, self.num_classes = self.config.z_dim, self.config.num_classes
        self.image_size = self.config.output_dim
        self.embeddings = nn.Linear(self.num_classes, self.z_dim, bias=False)
        self.generator = DeepGenerator(self.config)
        settle_spectral_norms(self)

    def forward(self, z: Tensor, y: Tensor, truncation: float = 0.4) -> Tensor:
        if not 0 < truncation <= 1:
            raise ValueError(f"truncation must be in (0, 1], got {truncation}")
        cond = torch.cat([z, self.embeddings(as_class_vector(y, self.num_classes))], dim=1)
        return self.generator(cond, truncation)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------- loading


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError,
            UnicodeDecodeError, ValueError) as err:  # fmt: skip
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileProblem(path, f"is not a PyTorch weights file ({first[:200]})") from None


_BLOCK_KEY = re.compile(r"^generator\.layers\.(\d+)\.")


def infer_config(state: dict[str, Tensor]) -> BigGANConfig:
    """A :class:`BigGANConfig` read off the shapes of a BigGAN-deep state dict.

    Up-sampling is not visible in the weights: every released BigGAN-deep (128, 256, 512)
    up-samples in its odd-numbered blocks, which is assumed here; a ``config.json`` beside the
    weights overrides all of this.
    """
    z_dim, num_classes = state["embeddings.weight"].shape
    width0 = state["generator.gen_z.weight_orig"].shape[0] // 16
    ch = width0 // 16
    indices = sorted({int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))})
    layers: list[tuple[bool, int, int]] = []
    attention, n_stats = -1, 51
    for index in indices:
        prefix = f"generator.layers.{index}."
        if prefix + "gamma" in state:
            attention = index
            continue
        means = state[prefix + "bn_0.running_means"]
        n_stats = means.shape[0]
        c_out = state[prefix + "conv_3.weight_orig"].shape[0]
        layers.append((len(layers) % 2 == 1, means.shape[1] // ch, c_out // ch))
    ups = sum(up for up, _, _ in layers)
    return BigGANConfig(output_dim=4 * 2**ups, z_dim=int(z_dim), class_embed_dim=int(z_dim),
                        channel_width=int(ch), num_classes=int(num_classes), layers=layers,
                        attention_layer_position=attention, n_stats=int(n_stats))  # fmt: skip


def _describe_keys(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}{', …' if len(keys) > limit else ''} ({len(keys)} in all)"


def load_biggan(path: str | os.PathLike[str]) -> BigGANDeep:
    """Load BigGAN-deep weights saved by ``pytorch-pretrained-biggan`` from a local path.

    Args:
        path: the model folder (``pytorch_model.bin`` + ``config.json``) or the weights file
            itself (its ``config.json`` is read when it lies beside it; otherwise the
            configuration is inferred from the weights' shapes).

    Returns:
        the generator in eval mode.

    Raises:
        FileProblem: a missing path, a file that is not a PyTorch state dict, or the weights
            of another model (naming the file and the keys that do not fit).
    """
    path = Path(path).expanduser()
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    if not weights.is_file():
        raise FileProblem(weights, "no such file (BigGAN weights: a pytorch_model.bin or a "
                                   "folder holding one)")  # fmt: skip
    return biggan_from_state_dict(_torch_load(weights), weights)


def biggan_from_state_dict(state: Any, weights: Path) -> BigGANDeep:
    """BigGAN-deep from a loaded state dict; ``weights`` names its file in errors (and its
    ``config.json`` is read from beside it when present)."""
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        kind = "a Lightning checkpoint" if isinstance(state, dict) and "state_dict" in state \
            else f"a {type(state).__name__}"  # fmt: skip
        raise FileProblem(weights, f"is {kind}, not a BigGAN-deep state dict "
                                   "(pytorch-pretrained-biggan layout)")  # fmt: skip
    required = ("embeddings.weight", "generator.gen_z.weight_orig")
    missing = [k for k in required if k not in state]
    if missing:
        raise FileProblem(weights, "is not a BigGAN-deep generator (pytorch-pretrained-biggan "
                                   f"layout): missing {_describe_keys(missing)}; it holds "
                                   f"{_describe_keys(sorted(state))}")  # fmt: skip
    config_file = weights.with_name(CONFIG_NAME)
    try:
        if config_file.is_file():
            config = BigGANConfig.from_dict(json.loads(config_file.read_text()))
        else:
            config = infer_config(state)
        model = BigGANDeep(config)
    except (KeyError, ValueError, TypeError, ZeroDivisionError) as err:
        raise FileProblem(weights, f"BigGAN-deep weights of an unreadable layout ({err})") \
            from None  # fmt: skip
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        detail = "; ".join(lines)[:400]
        origin = f"from {CONFIG_NAME}" if config_file.is_file() else "inferred"
        raise FileProblem(weights, f"does not fit BigGAN-deep {config.output_dim} px (config "
                                   f"{origin}): {detail}") from None  # fmt: skip
    return model.eval()


def save_biggan(model: BigGANDeep, folder: str | os.PathLike[str]) -> Path:
    """Write ``pytorch_model.bin`` and ``config.json`` in the layout :func:`load_biggan` reads."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / WEIGHTS_NAME)
    (folder / CONFIG_NAME).write_text(json.dumps(model.config.to_dict(), indent=2))
    return folder
