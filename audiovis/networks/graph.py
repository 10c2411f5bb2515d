"""A graph convolution over the skeleton, reading and writing a feature map at the keypoints.

Points are (x, y) in [0, 1] across the image: 0 is the left (top) edge of the first pixel and
1 the right (bottom) edge of the last, the dataset's convention, which is ``grid_sample``'s
with ``align_corners=False``. :func:`sample_at` reads bilinearly there; :func:`splat_at` is its
exact transpose (adjoint), writing each value onto the same four pixels with the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiovis.skeleton import NUM_KEYPOINTS, openpose_edges


def sample_at(features: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of a feature map at points; zero outside the image.

    Args:
        features: maps (B, C, H, W).
        points: (x, y) in [0, 1], (B, K, 2); extra trailing channels (confidence) are ignored.

    Shape:
        features (B, C, H, W), points (B, K, 2) → (B, K, C)
    """
    grid = points[..., None, :2].to(features.dtype) * 2.0 - 1.0  # (B, K, 1, 2), [-1, 1]
    out = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[..., 0].transpose(1, 2)  # (B, C, K, 1) → (B, K, C)


def _corners(points: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Flat pixel indices and bilinear weights of each point's four neighbours.

    Follows ``grid_sample`` (align_corners=False, zero padding) step for step, so the weights
    match its own to rounding: neighbours outside the image get weight 0 (and index 0).

    Shape:
        points (B, K, 2) → index (B, K, 4) int64, weight (B, K, 4)
    """
    height, width = size
    grid = points[..., :2] * 2.0 - 1.0  # same rounding as sample_at
    ix = ((grid[..., 0] + 1.0) * width - 1.0) / 2.0  # (B, K) pixel coordinate, centres at ints
    iy = ((grid[..., 1] + 1.0) * height - 1.0) / 2.0
    x0, y0 = ix.floor(), iy.floor()
    fx, fy = ix - x0, iy - y0  # (B, K)
    xs = torch.stack([x0, x0 + 1, x0, x0 + 1], -1)  # (B, K, 4): NW, NE, SW, SE
    ys = torch.stack([y0, y0, y0 + 1, y0 + 1], -1)
    weight = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    index = torch.where(inside, ys * width + xs, torch.zeros_like(xs)).long()
    return index, weight * inside


def splat_at(values: Tensor, points: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear splat of one vector per point into a map: the adjoint of :func:`sample_at`.

    ``⟨sample_at(F, p), v⟩ = ⟨F, splat_at(v, p, (H, W))⟩`` for every map F and values v, and
    points landing on the same pixels add up. Differentiable in ``values`` (and ``points``).

    Args:
        values: (B, K, C) vectors to write.
        points: (x, y) in [0, 1], (B, K, 2); extra trailing channels are ignored.
        size: (H, W) of the map to write.

    Shape:
        values (B, K, C), points (B, K, 2) → (B, C, H, W)
    """
    b, k, c = values.shape
    height, width = size
    index, weight = _corners(points, size)  # (B, K, 4)
    # one flat pixel axis for the whole batch, so a single index_add writes every point
    flat = index + torch.arange(b, device=index.device)[:, None, None] * (height * width)
    contrib = weight[..., None].to(values.dtype) * values[:, :, None, :]  # (B, K, 4, C)
    out = values.new_zeros(b * height * width, c)
    out = out.index_add(0, flat.reshape(-1), contrib.reshape(-1, c))  # (B·H·W, C)
    return out.view(b, height, width, c).permute(0, 3, 1, 2)  # (B, C, H, W)


class KeypointGCN(nn.Module):
    """Graph convolution over skeletons of features read at the keypoints, written back.

    Each keypoint reads a feature vector at its location (:func:`sample_at`), GCNConv layers
    (torch_geometric; self loops and symmetric normalisation included) mix it along the
    skeleton's edges, and each node's output is splatted back (:func:`splat_at`) and added to
    the input map as a residual. The B skeletons of a batch form one disjoint graph, so a
    single pass serves the whole batch.

    Confidence c ∈ [0, 1] scales both what a node reads and what it writes: an undetected
    point (c = 0, whose coordinates are meaningless) sends nothing to its neighbours and leaves
    the map untouched where it lies.

    Args:
        channels: C of the feature map.
        hidden: width of the hidden graph layers.
        layers: GCNConv layers (C → hidden → … → hidden → C); at least 1.
        edges: undirected skeleton edges (i, j); None: OpenPose's edges among the first
            ``num_keypoints`` points (:func:`audiovis.skeleton.openpose_edges`).
        num_keypoints: K, nodes per skeleton.
        zero_init: zero the last layer so the module starts as the identity: splats of
            overlapping points (a hand's 21 points share a bottleneck cell) add up, and a random
            start would shake the map that much.

    Shape:
        features (B, C, h, w), keypoints (B, K, 2 or 3), confidence (B, K) or None
        → (B, C, h, w)
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        layers: int = 2,
        edges: Sequence[tuple[int, int]] | None = None,
        num_keypoints: int = NUM_KEYPOINTS,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv  # slow import, paid only when a GCN is built

        if layers < 1:
            raise ValueError(f"KeypointGCN: layers must be at least 1, got {layers}")
        if edges is None:
            edges = [(i, j) for i, j in openpose_edges() if max(i, j) < num_keypoints]
        pairs = torch.tensor(list(edges), dtype=torch.long).reshape(-1, 2)  # (E, 2)
        if len(pairs) and (pairs.min() < 0 or pairs.max() >= num_keypoints):
            raise ValueError(f"KeypointGCN: edges must join points 0..{num_keypoints - 1}")
        self.num_keypoints = num_keypoints
        # both directions: GCNConv treats edge_index as directed messages
        self.register_buffer("edge_index", torch.cat([pairs, pairs.flip(1)]).T, persistent=False)
        self.edge_index: Tensor  # (2, 2E)
        dims = [channels] + [hidden] * (layers - 1) + [channels]
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in pairwise(dims))
        self.act = nn.LeakyReLU(0.2)
        if zero_init:
            for param in self.convs[-1].parameters():
                nn.init.zeros_(param)

    def _batch_edges(self, batch: int) -> Tensor:
        """The skeleton's edges repeated for ``batch`` disjoint copies. Shape: → (2, B·2E)."""
        offsets = torch.arange(batch, device=self.edge_index.device) * self.num_keypoints
        return (self.edge_index[:, None, :] + offsets[None, :, None]).reshape(2, -1)

    def forward(
        self, features: Tensor, keypoints: Tensor, confidence: Tensor | None = None
    ) -> Tensor:
        b, c, h, w = features.shape
        k = keypoints.shape[1]
        if k != self.num_keypoints:
            raise ValueError(f"KeypointGCN: expected {self.num_keypoints} keypoints, got {k}")
        if confidence is None:
            has_conf = keypoints.shape[-1] > 2
            confidence = keypoints[..., 2] if has_conf else keypoints.new_ones(b, k)
        conf = confidence.to(features.dtype)[..., None]  # (B, K, 1)
        points = keypoints[..., :2]  # (B, K, 2)
        x = (sample_at(features, points) * conf).reshape(b * k, c)  # (B·K, C)
        edge_index = self._batch_edges(b)
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)  # (B·K, hidden or C)
            if i < len(self.convs) - 1:
                x = self.act(x)
        delta = splat_at(x.view(b, k, c) * conf, points, (h, w))  # (B, C, h, w)
        return features + delta
