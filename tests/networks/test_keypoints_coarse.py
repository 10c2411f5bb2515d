"""APVG networks: the DLT against hand-computed tents, KHP and CVG shapes, chaining, learning."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from audiovis.networks.coarse import CoarseVideoGeneratorNet, ImageDecoder, VGGStem
from audiovis.networks.keypoints import KeypointPredictorNet, MotionEncoder, dlt_heatmaps


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # tiny tensors: OpenMP sync costs more than it saves, and stalls when the CPU is shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def from_pixels(x: float, y: float, size: int) -> tuple[float, float]:
    """Pixel units (integer = pixel centre) → [0, 1] image coordinates: (u + 0.5) / size."""
    return (x + 0.5) / size, (y + 0.5) / size


# ---------------------------------------------------------------- DLT


def test_dlt_hand_computed_tent() -> None:
    # pixel (x=2.5, y=1.0) on 4x4: row 1 only, columns 2 and 3 at |2.5 - 2| = |2.5 - 3| = 0.5
    kp = torch.tensor([[from_pixels(2.5, 1.0, 4)]], dtype=torch.float64)  # (1, 1, 2)
    heat = dlt_heatmaps(kp, 4)
    expected = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    expected[0, 0, 1, 2] = expected[0, 0, 1, 3] = 0.5
    torch.testing.assert_close(heat, expected)
    # radius 2 widens the tent: columns 1..3 get 1 - |c - 2.5| / 2, rows 0..2 get 1 - |r - 1| / 2
    wide = dlt_heatmaps(kp, 4, radius=2.0)[0, 0]
    assert float(wide[1, 2]) == pytest.approx(0.75)  # 1 · (1 - 0.5/2)
    assert float(wide[0, 1]) == pytest.approx(0.5 * 0.25)  # (1 - 1/2) · (1 - 1.5/2)
    assert float(wide[3, 2]) == 0.0 and float(wide[1, 0]) == 0.0  # 2 px away: on the edge


def test_dlt_rectangular_size_and_per_point() -> None:
    kp = torch.tensor([[[0.5, 0.5, 1.0], [0.1, 0.9, 0.5]]])  # (1, 2, 3)
    per = dlt_heatmaps(kp, (6, 10), per_point=True)
    assert per.shape == (1, 2, 6, 10)
    torch.testing.assert_close(per.sum(1, keepdim=True), dlt_heatmaps(kp, (6, 10)))
    # extra leading dims (B, T, K, 3) pass through
    assert dlt_heatmaps(kp[:, None].expand(1, 3, 2, 3), 8).shape == (1, 3, 1, 8, 8)


@pytest.mark.parametrize("alpha,radius", [(1.0, 1.0), (0.7, 1.0), (1.0, 2.0), (0.5, 3.0)])
def test_dlt_interior_point_sums_to_alpha(alpha: float, radius: float) -> None:
    g = torch.Generator().manual_seed(0)
    kp = 0.3 + 0.4 * torch.rand(4, 5, 2, generator=g, dtype=torch.float64)  # well inside
    heat = dlt_heatmaps(kp, 32, alpha=alpha, radius=radius, per_point=True)
    torch.testing.assert_close(heat.sum((-2, -1)), torch.full((4, 5), alpha * radius**2).double())


def test_dlt_gradients_match_finite_differences() -> None:
    # coordinates and confidences off the tents' kinks (pixel centres and radius edges)
    kp = torch.tensor(
        [[[0.31, 0.62, 0.9], [0.47, 0.23, 0.4]], [[0.71, 0.53, 1.0], [0.18, 0.86, 0.7]]],
        dtype=torch.float64,
        requires_grad=True,
    )
    for radius in (1.0, 2.5):
        summed = partial(dlt_heatmaps, size=(7, 9), radius=radius)
        per_point = partial(dlt_heatmaps, size=8, radius=radius, per_point=True)
        assert torch.autograd.gradcheck(summed, (kp,))
        assert torch.autograd.gradcheck(per_point, (kp,))


def test_dlt_gradient_descent_moves_a_point_onto_its_target() -> None:
    target = dlt_heatmaps(torch.tensor([[[0.5, 0.4]]]), 16, radius=3.0)
    kp = torch.tensor([[[0.42, 0.47]]], requires_grad=True)
    opt = torch.optim.SGD([kp], lr=1e-5)  # |grad| ~ 60 per unit of image width
    for _ in range(200):
        opt.zero_grad()
        F.l1_loss(dlt_heatmaps(kp, 16, radius=3.0), target, reduction="sum").backward()
        opt.step()
    torch.testing.assert_close(kp.detach(), torch.tensor([[[0.5, 0.4]]]), atol=2e-3, rtol=0)


def test_dlt_zero_confidence_removes_a_point() -> None:
    a, b = [0.3, 0.6], [0.7, 0.2]
    both = dlt_heatmaps(torch.tensor([[[*a, 1.0], [*b, 0.0]]]), 12)
    only_a = dlt_heatmaps(torch.tensor([[a]]), 12)
    torch.testing.assert_close(both, only_a)


def test_dlt_clamp_and_out_of_bounds() -> None:
    kp = torch.tensor([[from_pixels(3.0, 3.0, 8)] * 2])  # two points on one pixel centre
    assert float(dlt_heatmaps(kp, 8).max()) == pytest.approx(2.0)
    assert float(dlt_heatmaps(kp, 8, clamp=True).max()) == pytest.approx(1.0)
    outside = torch.tensor([[[1.5, 0.5], [-0.2, 0.5]]])
    assert float(dlt_heatmaps(outside, 8).abs().sum()) == 0.0
    with pytest.raises(ValueError, match="2 or 3"):
        dlt_heatmaps(torch.zeros(1, 3, 4), 8)


# ---------------------------------------------------------------- KHP

F_AUDIO, K = 12, 67


def test_motion_encoder_shape() -> None:
    assert MotionEncoder(F_AUDIO, motion_dim=16, channels=8)(
        torch.randn(2, F_AUDIO, 37), 9
    ).shape == (
        2,
        9,
        16,
    )


def test_khp_shapes_range_and_average_condition() -> None:
    torch.manual_seed(0)
    feats, avg = torch.randn(2, F_AUDIO, 40), torch.rand(K, 2)
    net = KeypointPredictorNet(F_AUDIO, hidden=32, motion_dim=16).eval()
    out = net(feats, 10, avg)
    assert out.shape == (2, 10, K, 2)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    torch.testing.assert_close(out, net(feats, 10, avg.expand(2, K, 2)))  # shared == per batch
    assert not torch.allclose(out, net(feats, 10, torch.rand(2, K, 3)))  # the condition matters
    with pytest.raises(ValueError, match="average"):
        net(feats, 10)

    ablation = KeypointPredictorNet(F_AUDIO, hidden=32, motion_dim=16, use_average=False).eval()
    out = ablation(feats, 10)
    assert out.shape == (2, 10, K, 2)
    torch.testing.assert_close(out, ablation(feats, 10, avg))  # the average is ignored
    static = KeypointPredictorNet(F_AUDIO, hidden=32, motion_dim=16, use_motion=False)
    assert static(feats, 4, avg).shape == (2, 4, K, 2)
    with pytest.raises(ValueError):
        KeypointPredictorNet(F_AUDIO, use_average=False, use_motion=False)


@pytest.mark.parametrize("use_average", [True, False])
def test_khp_learns_a_fixed_batch(use_average: bool) -> None:
    torch.manual_seed(0)
    t, k = 8, 5
    feats = torch.randn(4, F_AUDIO, 32)
    # targets move with the audio: each keypoint follows a feature's per-frame energy
    drive = F.adaptive_avg_pool1d(feats[:, :k], t).transpose(1, 2)  # (B, T, k)
    avg = torch.rand(k, 2) * 0.6 + 0.2
    target = (avg + 0.1 * torch.tanh(drive)[..., None]).clamp(0, 1)  # (B, T, k, 2)
    net = KeypointPredictorNet(F_AUDIO, num_keypoints=k, hidden=32, motion_dim=16,
                               use_average=use_average)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def coord_loss() -> Tensor:
        return F.mse_loss(net(feats, t, avg), target)

    first = float(coord_loss())
    for _ in range(60):
        opt.zero_grad()
        pred = net(feats, t, avg)
        heat = F.l1_loss(dlt_heatmaps(pred, 16, radius=2.0), dlt_heatmaps(target, 16, radius=2.0))
        (F.mse_loss(pred, target) + 0.1 * heat).backward()  # the paper's L2 + L1 heatmap
        opt.step()
    assert float(coord_loss()) < 0.2 * first


# ---------------------------------------------------------------- CVG


def small_cvg(
    size: int = 32,
    noise_dim: int = 4,
    residual: bool = False,
    anchor: str = "previous",
    scale: int = 1,
) -> CoarseVideoGeneratorNet:
    return CoarseVideoGeneratorNet(
        F_AUDIO,
        size,
        audio_dim=16,
        image_dim=16,
        noise_dim=noise_dim,
        channels=8,
        residual=residual,
        anchor=anchor,
        scale=scale,
    )


def frames(b: int, t: int, size: int) -> Tensor:
    return torch.rand(b, t, 3, size, size) * 2 - 1


@pytest.mark.parametrize("size", [32, 64])
def test_cvg_shapes_and_range(size: int) -> None:
    torch.manual_seed(0)
    net = small_cvg(size)
    out, state = net(torch.randn(2, F_AUDIO, 20), 5, frames(2, 1, size)[:, 0])
    assert out.shape == (2, 5, 3, size, size)
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    assert state.h.shape == state.c.shape == (1, 2, 16)
    assert state.previous.shape == (2, 3, size, size)
    torch.testing.assert_close(state.previous, out[:, -1])


@pytest.mark.parametrize("size", [128, 256])
def test_cvg_decoder_and_stem_scale(size: int) -> None:
    assert ImageDecoder(8, size, channels=4)(torch.randn(1, 8)).shape == (1, 3, size, size)
    assert VGGStem(16, channels=4)(torch.rand(1, 3, size, size)).shape == (1, 16)


def test_cvg_rejects_bad_sizes() -> None:
    for size in (16, 48):
        with pytest.raises(ValueError, match="power of two"):
            small_cvg(size)
    with pytest.raises(ValueError, match="32x32"):
        small_cvg(32)(torch.randn(1, F_AUDIO, 8), 2, torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="first_frame or state"):
        small_cvg(32)(torch.randn(1, F_AUDIO, 8), 2)


def test_cvg_depends_on_previous_frame_and_noise() -> None:
    torch.manual_seed(0)
    net = small_cvg().eval()
    feats, first = torch.randn(1, F_AUDIO, 16), frames(2, 1, 32)[:, 0]
    a, _ = net(feats, 4, first[:1], noise=False)
    b, _ = net(feats, 4, first[1:], noise=False)
    again, _ = net(feats, 4, first[:1], noise=False)
    torch.testing.assert_close(a, again)  # deterministic without noise
    for t in range(4):  # the first frame's influence carries through the autoregression
        assert (a[:, t] - b[:, t]).abs().max() > 1e-4
    noisy1, _ = net(feats, 4, first[:1])
    noisy2, _ = net(feats, 4, first[:1])
    assert (noisy1 - noisy2).abs().max() > 1e-4


def test_cvg_windows_chain_like_one_call() -> None:
    torch.manual_seed(0)
    net = small_cvg().eval()  # eval: the input BatchNorm uses running statistics
    t, r = 3, 4
    feats, first = torch.randn(2, F_AUDIO, 2 * t * r), frames(2, 1, 32)[:, 0]
    whole, whole_state = net(feats, 2 * t, first, noise=False)
    w1, state = net(feats[..., : t * r], t, first, noise=False)
    w2, state = net(feats[..., t * r :], t, state=state, noise=False)
    torch.testing.assert_close(torch.cat([w1, w2], 1), whole, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(state.h, whole_state.h, atol=1e-5, rtol=1e-4)
    # without the state the second window starts over and differs
    fresh, _ = net(feats[..., t * r :], t, w1[:, -1], noise=False)
    assert (fresh - w2).abs().max() > 1e-4


def test_cvg_teacher_forcing_matches_stepwise_generation() -> None:
    torch.manual_seed(0)
    net = small_cvg().eval()
    t, r = 4, 4
    feats, first, teacher = torch.randn(2, F_AUDIO, t * r), frames(2, 1, 32)[:, 0], frames(2, t, 32)
    forced, state = net(feats, t, first, noise=False, teacher_frames=teacher)
    assert forced.shape == (2, t, 3, 32, 32)
    torch.testing.assert_close(state.previous, teacher[:, -1])
    # the batched pass equals stepping one frame at a time from the real previous frame
    step_state = None
    for i in range(t):
        prev = first if i == 0 else teacher[:, i - 1]
        one, step_state = net(feats[..., i * r : (i + 1) * r], 1, prev, False, state=step_state)
        torch.testing.assert_close(one[:, 0], forced[:, i], atol=1e-5, rtol=1e-4)
    free, _ = net(feats, t, first, noise=False)
    torch.testing.assert_close(free[:, 0], forced[:, 0], atol=1e-5, rtol=1e-4)  # same at t=0
    # the last teacher frame is never an input; the first conditions frame 1 onwards
    changed = teacher.clone()
    changed[:, -1] = 0.0
    torch.testing.assert_close(net(feats, t, first, False, changed)[0], forced)
    changed[:, 0] = 0.0
    assert (net(feats, t, first, False, changed)[0][:, 1] - forced[:, 1]).abs().max() > 1e-4


def test_residual_cvg_starts_by_repeating_the_previous_frame() -> None:
    torch.manual_seed(0)
    net = small_cvg(residual=True)
    feats, first, teacher = torch.randn(2, F_AUDIO, 16), frames(2, 1, 32)[:, 0], frames(2, 4, 32)
    free, _ = net(feats, 4, first)
    for t in range(4):  # noise and audio change nothing yet: Δ's layer is zero
        torch.testing.assert_close(free[:, t], first, atol=2e-3, rtol=0)
    forced, _ = net(feats, 4, first, teacher_frames=teacher)
    shifted = torch.cat([first[:, None], teacher[:, :-1]], 1)
    torch.testing.assert_close(forced, shifted, atol=2e-3, rtol=0)
    # one optimizer step later it draws changes that depend on the audio
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    F.l1_loss(net(feats, 4, first)[0], teacher).backward()
    opt.step()
    other, _ = net(torch.randn(2, F_AUDIO, 16), 4, first, noise=False)
    assert (net(feats, 4, first, noise=False)[0] - other).abs().max() > 1e-4


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("teacher", [False, True])
def test_cvg_l1_training_lowers_the_loss(teacher: bool, residual: bool) -> None:
    torch.manual_seed(0)
    net = small_cvg(residual=residual)
    t = 3
    feats, video = torch.randn(2, F_AUDIO, 12), frames(2, t + 1, 32) * 0.5
    if residual:  # frames that change from one to the next: brighter by 0.15 a step
        video = video[:, :1] + 0.15 * torch.arange(t + 1.0).view(1, -1, 1, 1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)

    def loss() -> Tensor:
        out, _ = net(feats, t, video[:, 0], teacher_frames=video[:, 1:] if teacher else None)
        return F.l1_loss(out, video[:, 1:])

    first = float(loss())
    for _ in range(25):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert float(loss()) < 0.8 * first


def test_residual_cvg_anchored_to_the_first_frame_does_not_compound() -> None:
    torch.manual_seed(0)
    first = frames(2, 1, 32)[:, 0] * 0.9
    base = torch.atanh(first)
    feats = torch.randn(2, F_AUDIO, 24)
    outs = {}
    for anchor in ("previous", "first"):
        net = small_cvg(residual=True, anchor=anchor).eval()
        with torch.no_grad():  # every frame's change is the same +0.1 in logit space
            net.decoder.to_rgb.bias.fill_(0.1)
        w1, state = net(feats[..., :12], 3, first, noise=False)
        w2, _ = net(feats[..., 12:], 3, state=state, noise=False)
        outs[anchor] = torch.cat([w1, w2], 1).detach()
    for t in range(6):  # a change to the previous frame adds up: tanh(atanh(x0) + 0.1 (t + 1))
        expected = torch.tanh(base + 0.1 * (t + 1))
        torch.testing.assert_close(outs["previous"][:, t], expected, atol=1e-4, rtol=1e-4)
        # a change to the first frame, across windows too: tanh(atanh(x0) + 0.1) every frame
        torch.testing.assert_close(outs["first"][:, t], torch.tanh(base + 0.1), atol=1e-4,
                                   rtol=1e-4)  # fmt: skip
    with pytest.raises(ValueError, match="anchor"):
        small_cvg(anchor="reference")


def test_cvg_at_half_size_keeps_the_full_size_frame() -> None:
    torch.manual_seed(0)
    size = 64
    first = frames(2, 1, size)[:, 0] * 0.9  # pixel noise: detail a 32 px stage cannot draw
    feats = torch.randn(2, F_AUDIO, 16)
    net = small_cvg(size, residual=True, anchor="first", scale=2).eval()
    out, state = net(feats, 4, first, noise=False)
    assert out.shape == (2, 4, 3, size, size) and state.previous.shape == (2, 3, size, size)
    # the untrained change is zero: the full-size frame comes back pixel for pixel
    torch.testing.assert_close(out, first[:, None].expand_as(out), atol=2e-3, rtol=0)
    with torch.no_grad():  # a uniform change at 32 px is the same change on every 64 px pixel
        net.decoder.to_rgb.bias.fill_(0.1)
    out, _ = net(feats, 4, first, noise=False)
    expected = torch.tanh(torch.atanh(first) + 0.1)
    torch.testing.assert_close(out, expected[:, None].expand_as(out), atol=1e-4, rtol=1e-4)


def test_cvg_at_half_size_reads_the_previous_frame_at_half_size() -> None:
    torch.manual_seed(0)
    net = small_cvg(64, scale=2).eval()
    feats, first = torch.randn(1, F_AUDIO, 12), frames(1, 1, 64)[:, 0]
    # swapping the two columns of every 2x2 block keeps the blocks' means: the same input
    swapped = first.view(1, 3, 64, 32, 2).flip(-1).reshape(1, 3, 64, 64)
    a, _ = net(feats, 3, first, noise=False)
    b, _ = net(feats, 3, swapped, noise=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # a frame whose blocks' means differ gives other frames; the whole-frame decoder's output
    # is its 32 px image upsampled, so neighbouring pixels change smoothly
    c, _ = net(feats, 3, frames(1, 1, 64)[:, 0], noise=False)
    assert (a - c).abs().max() > 1e-4
    assert (a[..., 1:] - a[..., :-1]).abs().mean() < (first[..., 1:] - first[..., :-1]).abs().mean()
    for scale in (3, 4):  # not a power of two; 64 / 4 = 16 px, under the decoder's 32
        with pytest.raises(ValueError, match="scale"):
            small_cvg(64, scale=scale)
