"""Discriminators: an audio-conditioned frame critic and a PatchGAN.

Both return raw scores (no sigmoid), for any loss of :mod:`audiovis.losses`.
"""

from __future__ import annotations

import math
from itertools import pairwise

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    """``layer`` under spectral normalisation when ``use``, else as is."""
    return _spectral(layer) if use else layer


class AudioVideoDiscriminator(nn.Module):
    """Judges whether a frame goes with an audio segment: a projection discriminator.

    The frame goes through stride-2 convolutions down to 4 × 4 and is sum-pooled to a vector
    φ(x); the audio feature through an MLP to an embedding ψ(a) of the same size. The score is
    ``w · φ(x) + ⟨ψ(a), φ(x)⟩`` (Miyato & Koyama 2018): the first term judges the frame
    alone, the inner product its agreement with the audio. Projection rather than concatenation
    makes the audio enter as a direct comparison, which conditions the critic more strongly.

    Args:
        audio_dim: size of the audio feature.
        base: channels of the first convolution (doubling per layer, capped at 8 × base).
        image_size: frame side the stack is built for (a power of two, at least 8):
            log2(image_size) − 2 stride-2 layers reach 4 × 4.
        spectral_norm: spectrally normalise every layer (no other normalisation is used).

    Shape:
        frame (B, 3, H, W) in [-1, 1], audio_feat (B, audio_dim) → (B,)
    """

    def __init__(
        self, audio_dim: int, base: int = 64, image_size: int = 128, spectral_norm: bool = True
    ) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(
                f"AudioVideoDiscriminator: image_size must be a power of two >= 8, got {image_size}"
            )
        num_layers = int(math.log2(image_size)) - 2
        chans = [3] + [min(base * 2**i, base * 8) for i in range(num_layers)]
        convs: list[nn.Module] = []
        for c_in, c_out in pairwise(chans):
            convs += [_maybe_sn(nn.Conv2d(c_in, c_out, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)]
        self.image = nn.Sequential(*convs)
        width = chans[-1]
        self.audio = nn.Sequential(
            _maybe_sn(nn.Linear(audio_dim, width), spectral_norm),
            nn.LeakyReLU(0.2),
            _maybe_sn(nn.Linear(width, width), spectral_norm),
        )
        self.score = _maybe_sn(nn.Linear(width, 1), spectral_norm)

    def forward(self, frame: Tensor, audio_feat: Tensor) -> Tensor:
        phi = self.image(frame).sum((2, 3))  # (B, width): sum pooling, as in SN-GAN
        psi = self.audio(audio_feat.to(phi.dtype))  # (B, width)
        return self.score(phi)[:, 0] + (phi * psi).sum(1)  # (B,)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix): a map of scores, each judging one overlapping image patch.

    ``layers`` stride-2 4 × 4 convolutions, one stride-1, then a 1-channel stride-1 output;
    with ``layers = 3`` each score sees a 70 × 70 patch. InstanceNorm between layers, or
    spectral normalisation instead; either is per sample, so batches of fakes and reals mix
    freely and a gradient penalty stays valid.

    Args:
        in_channels: channels of the input (stack conditions onto the image to condition).
        base: channels of the first convolution (doubling per layer, capped at 8 × base).
        layers: number of stride-2 convolutions.
        spectral_norm: spectrally normalise the convolutions instead of InstanceNorm.

    Shape:
        (B, in_channels, H, W) → (B, 1, H / 2**layers − 2, W / 2**layers − 2)
    """

    def __init__(
        self, in_channels: int, base: int = 64, layers: int = 3, spectral_norm: bool = False
    ) -> None:
        super().__init__()
        chans = [in_channels] + [min(base * 2**i, base * 8) for i in range(layers + 1)]
        blocks: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(pairwise(chans)):
            stride = 2 if i < layers else 1
            normed = i > 0 and not spectral_norm  # pix2pix leaves the first layer unnormalised
            conv = nn.Conv2d(c_in, c_out, 4, stride, 1, bias=not normed)
            blocks.append(_maybe_sn(conv, spectral_norm))
            if normed:
                blocks.append(nn.InstanceNorm2d(c_out, affine=True))
            blocks.append(nn.LeakyReLU(0.2))
        blocks.append(_maybe_sn(nn.Conv2d(chans[-1], 1, 4, 1, 1), spectral_norm))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, 1, h, w)
