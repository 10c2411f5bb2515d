"""Audeo's networks (Su et al., NeurIPS 2020): Video2Roll, a ResNet-18 over 5 stacked greyscale
frames with feature transform / refine blocks and attention fusion, and Roll2Midi, a U-Net
generator with a PatchGAN discriminator over (keys × frames) windows of a roll."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """ResNet's two 3×3 convolutions with a (projected) identity shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


def _stage(c_in: int, c_out: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        BasicBlock(c_in, c_out, stride), *[BasicBlock(c_out, c_out) for _ in range(blocks - 1)]
    )


class FeatureTransform(nn.Module):
    """Feature transform block (FTB): a 1×1 projection, a residual 3×3 pair, then pooling onto
    the top layer's grid.

    The original pools by fixed windows (2×2 stride 2, or 3×3 stride 1 after a padded 1×1
    convolution), which lands on layer 4's grid only for its 100 × 900 input; pooling
    adaptively to that grid gives the same result there and works for any input size.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.conv1 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        x = self.project(x)
        out = self.conv2(F.relu(self.bn(self.conv1(x)), inplace=True)) + x
        return F.adaptive_avg_pool2d(out, size)


class FeatureRefine(nn.Module):
    """Feature refine block (FRB): channel attention on the lower feature ``low`` computed
    from the global average of ``low`` and the higher feature ``high`` together."""

    def __init__(self, c_low: int, c_high: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c_low + c_high, c_low)
        self.fc2 = nn.Linear(c_low, c_low)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        z = torch.cat([low, high], dim=1).mean(dim=(2, 3))  # (B, C_low + C_high)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(z), inplace=True)))  # (B, C_low)
        return low * gate[:, :, None, None]


class Video2RollNet(nn.Module):
    """Key logits of the middle frame from a stack of greyscale frames.

    ResNet-18 (four stages of two basic blocks) with an 11×11 stride-2 stem over the stacked
    frames. Layers 2, 3 and 4 pass through feature transform blocks onto layer 4's grid; a
    reduced layer 4 and refine blocks propagate top-down (p4 → p3 → p2); attention fusion
    multiplies p2 and p3, normalises it with a spatial softmax, weights p4 with it, and adds a
    1×1 convolution of that to p4 before global pooling and the key classifier.

    The global pooling keeps no position, so which key is down must be told apart by the
    channels alone; with ``head_grid`` the fused features are instead pooled onto a fixed
    (rows, columns) grid and the classifier reads them all, so a key's place on the keyboard
    is kept (ours, not the original's: on small crops it learns the keys many times faster).
    With ``detector`` (ours too), a 1×1 convolution shared by every place reads the stem's
    convolution before pooling, the finest grid (a pressed key looks the same all along the
    keyboard), and its map, pooled
    onto a fixed (rows, columns) grid, feeds the classifier beside the fused features: the
    classifier then only has to learn where each key lies.

    Args:
        num_keys: output keys (51 as the original, 88 for the full keyboard).
        in_frames: stacked frames (input channels), 5 as the original (t−2 … t+2).
        width: channels of the first stage (64 as ResNet-18); later stages double it.
        blocks: basic blocks per stage.
        head_grid: (rows, columns) the fused features are pooled onto before the classifier;
            ``None`` for the original's global average.
        detector: (channels, rows, columns) of the shared detector's map as the classifier
            reads it; ``None``: no detector (the original).

    Shape:
        (B, in_frames, H, W) in [0, 1] → (B, num_keys) logits.
    """

    def __init__(
        self,
        num_keys: int = 51,
        in_frames: int = 5,
        width: int = 64,
        blocks: tuple[int, int, int, int] = (2, 2, 2, 2),
        head_grid: tuple[int, int] | None = None,
        detector: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        w = width
        fused = 2 * w  # 128 in the original
        self.stem = nn.Sequential(
            nn.Conv2d(in_frames, w, 11, 2, 4, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        self.layer1 = _stage(w, w, blocks[0], 1)
        self.layer2 = _stage(w, 2 * w, blocks[1], 2)
        self.layer3 = _stage(2 * w, 4 * w, blocks[2], 2)
        self.layer4 = _stage(4 * w, 8 * w, blocks[3], 2)
        self.ftb2_1 = FeatureTransform(2 * w, fused)
        self.ftb2_2 = FeatureTransform(fused, fused)
        self.ftb3 = FeatureTransform(4 * w, fused)
        self.ftb4 = FeatureTransform(8 * w, fused)
        self.top = nn.Sequential(nn.Conv2d(8 * w, w, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.frb4 = FeatureRefine(fused, w)
        self.frb3 = FeatureRefine(fused, fused)
        self.frb2 = FeatureRefine(fused, fused)
        self.fuse = nn.Conv2d(fused, fused, 1)
        self.head_grid = None if head_grid is None else (int(head_grid[0]), int(head_grid[1]))
        cells = 1 if self.head_grid is None else self.head_grid[0] * self.head_grid[1]
        self.fc = nn.Linear(fused * cells, num_keys)
        self.detector_grid: tuple[int, int] | None = None
        self.detector: nn.Module | None = None
        if detector is not None:
            d, rows, cols = (int(v) for v in detector)
            self.detector_grid = (rows, cols)
            self.detector = nn.Sequential(nn.Conv2d(w, d, 1), nn.BatchNorm2d(d), nn.ReLU())
            self.detector_fc = nn.Linear(d * rows * cols, num_keys)
        self.num_keys, self.in_frames = num_keys, in_frames
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        s = self.stem[:3](x)  # (B, w, H/2, W/2): the stem's convolution, before pooling
        h = self.layer1(self.stem[3](s))
        x2 = self.layer2(h)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)  # (B, 8w, h4, w4)
        grid = (x4.shape[2], x4.shape[3])
        x5 = self.top(x4)  # (B, w, h4, w4)
        x2_ = self.ftb2_2(self.ftb2_1(x2, (2 * grid[0], 2 * grid[1])), grid)
        x3_ = self.ftb3(x3, grid)
        x4_ = self.ftb4(x4, grid)
        p4 = self.frb4(x4_, x5)
        p3 = self.frb3(x3_, p4)
        p2 = self.frb2(x2_, p3)
        joint = p2 * p3  # (B, C, h4, w4)
        attention = F.softmax(joint.flatten(2), dim=2).view_as(joint)
        out = self.fuse(attention * p4) + p4  # (B, C, h4, w4)
        if self.head_grid is None:
            logits = self.fc(out.mean(dim=(2, 3)))  # (B, num_keys)
        else:
            logits = self.fc(F.adaptive_avg_pool2d(out, self.head_grid).flatten(1))
        if self.detector is not None and self.detector_grid is not None:
            seen = F.adaptive_avg_pool2d(self.detector(s), self.detector_grid)  # (B, d, r, c)
            logits = logits + self.detector_fc(seen.flatten(1))
        return logits


class UNetDown(nn.Module):
    """Stride-1 3×3 convolution, batch norm (optional), LeakyReLU 0.2, dropout (optional)."""

    def __init__(self, c_in: int, c_out: int, normalize: bool = True, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=not normalize)]
        if normalize:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class UNetUp(nn.Module):
    """Stride-1 3×3 (transposed) convolution, batch norm, ReLU, dropout, then the skip
    connection concatenated."""

    def __init__(self, c_in: int, c_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(c_in, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return torch.cat([self.block(x), skip], dim=1)


class Roll2MidiGenerator(nn.Module):
    """U-Net of stride-1 convolutions that turns a window of key probabilities into a
    MIDI-ready roll; every layer keeps the (keys × frames) grid.

    Args:
        base: channels of the first layer (64 as the original: 64 → 1024 → 16 → 1).
        dropout: dropout of the deep layers (0.5 as the original).
        residual: add the output to the input's logit, the last convolution starting at
            zero, so that the untrained generator passes its input through and learns only
            corrections (ours; the original maps to the roll from scratch, which takes more
            steps than a CPU budget gives before it beats plain thresholding).

    Shape:
        (B, 1, K, T) in [0, 1] → (B, 1, K, T) probabilities.
    """

    def __init__(self, base: int = 64, dropout: float = 0.5, residual: bool = False) -> None:
        super().__init__()
        b = base
        self.down1 = UNetDown(1, b, normalize=False)
        self.down2 = UNetDown(b, 2 * b)
        self.down3 = UNetDown(2 * b, 4 * b, dropout=dropout)
        self.down4 = UNetDown(4 * b, 8 * b, dropout=dropout)
        self.down5 = UNetDown(8 * b, 16 * b, dropout=dropout)
        self.down6 = UNetDown(16 * b, 16 * b, dropout=dropout)
        self.up1 = UNetUp(16 * b, 8 * b, dropout=dropout)
        self.up2 = UNetUp(24 * b, 4 * b, dropout=dropout)
        self.up3 = UNetUp(12 * b, 2 * b, dropout=dropout)
        self.up4 = UNetUp(6 * b, b)
        self.up5 = UNetUp(3 * b, max(1, b // 4))
        self.out = nn.Conv2d(b + max(1, b // 4), 1, 1)
        self.apply(_init_normal)
        self.residual = residual
        if residual:
            nn.init.zeros_(self.out.weight)

    def forward(self, x: Tensor) -> Tensor:
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        d4 = self.down4(d3)
        d5 = self.down5(d4)
        u = self.up1(self.down6(d5), d5)
        u = self.up2(u, d4)
        u = self.up3(u, d3)
        u = self.up4(u, d2)
        u = self.up5(u, d1)
        if self.residual:
            return torch.sigmoid(self.out(u) + torch.logit(x, eps=1e-4))
        return torch.sigmoid(self.out(u))


class PatchDiscriminator(nn.Module):
    """PatchGAN over a (keys × frames) roll: three stride-2 and one stride-1 3×3 blocks
    (instance norm after the first), then a 3×3 convolution to one score per patch.

    Args:
        base: channels of the first block (64 as the original; then ×2, ×4, ×8).

    Shape:
        (B, 1, K, T) → (B, 1, ⌈K/8⌉, ⌈T/8⌉) scores.
    """

    def __init__(self, base: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for mult, stride, norm in ((1, 2, False), (2, 2, True), (4, 2, True), (8, 1, True)):
            c_out = base * mult
            layers.append(nn.Conv2d(c_in, c_out, 3, stride, 1))
            if norm:
                layers.append(nn.InstanceNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 3, 1, 1))
        self.model = nn.Sequential(*layers)
        self.apply(_init_normal)

    def forward(self, roll: Tensor) -> Tensor:
        return self.model(roll)


def _init_normal(m: nn.Module) -> None:
    """pix2pix initialisation, as the original: N(0, 0.02) convolutions, N(1, 0.02) norms."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
