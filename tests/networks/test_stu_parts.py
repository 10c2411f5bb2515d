"""APVG's final stage and its parts: ConvGRU gates by hand, sample/splat adjointness, the
skeleton GCN, UNet shapes and conditioning, the STU (ablations, state chaining, learning), the
discriminators, and the VGG-19 trunk's loading and perceptual loss."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from audiovis.networks.convgru import ConvGRUCell
from audiovis.networks.discriminators import AudioVideoDiscriminator, PatchDiscriminator
from audiovis.networks.graph import KeypointGCN, sample_at, splat_at
from audiovis.networks.stu import StructuredTemporalUNet
from audiovis.networks.unet import UNet
from audiovis.networks.vgg import VGG19Features, perceptual_loss, vgg19_layer_names
from audiovis.skeleton import NUM_KEYPOINTS


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def centre(x: int, y: int, size: tuple[int, int]) -> tuple[float, float]:
    """[0, 1] coordinates of pixel (x, y)'s centre on an (H, W) map."""
    return (x + 0.5) / size[1], (y + 0.5) / size[0]


# ---------------------------------------------------------------- ConvGRU


def gru_with_biases(reset: float, update: float, cand: float) -> ConvGRUCell:
    """A cell with every weight zero, so each gate is σ or tanh of its bias alone."""
    cell = ConvGRUCell(3, 4)
    for param in cell.parameters():
        nn.init.zeros_(param)
    with torch.no_grad():
        cell.gates.get_parameter("bias")[:4] = reset
        cell.gates.get_parameter("bias")[4:] = update
        cell.candidate.get_parameter("bias").fill_(cand)
    return cell


def test_convgru_gates_from_biases_alone() -> None:
    # z = σ(ln 3) = 0.75, n = tanh(ln 2) = 0.6: h' = 0.25 h + 0.75 · 0.6 = 0.25 h + 0.45
    cell = gru_with_biases(reset=0.0, update=math.log(3.0), cand=math.log(2.0))
    x = torch.randn(2, 3, 5, 6)
    h = torch.full((2, 4, 5, 6), 1.0)
    torch.testing.assert_close(cell(x, h), torch.full_like(h, 0.7))
    torch.testing.assert_close(cell(x, None), torch.full_like(h, 0.45))  # no state: zeros
    torch.testing.assert_close(cell(x, -h), torch.full_like(h, 0.2))


def test_convgru_reset_gate_hides_the_state_from_the_candidate() -> None:
    # candidate reads h through a centre tap (n = tanh(r h)); z = σ(+30) ≈ 1 lets n through
    def cell_with_reset(reset: float) -> ConvGRUCell:
        cell = gru_with_biases(reset=reset, update=30.0, cand=0.0)
        with torch.no_grad():
            for c in range(4):
                cell.candidate.weight[c, 3 + c, 1, 1] = 1.0  # input channels 3.. are h
        return cell

    x, h = torch.randn(1, 3, 4, 4), torch.rand(1, 4, 4, 4)
    torch.testing.assert_close(cell_with_reset(30.0)(x, h), torch.tanh(h))  # r = 1
    torch.testing.assert_close(cell_with_reset(-30.0)(x, h), torch.zeros_like(h))  # r = 0


def test_convgru_shapes_and_memory() -> None:
    torch.manual_seed(0)
    cell = ConvGRUCell(3, 5, kernel=5)
    x0, x0_other, x1 = torch.randn(3, 2, 3, 7, 9).unbind(0)
    h1 = cell(x0, None)
    assert h1.shape == (2, 5, 7, 9)
    # the same input at t gives a different state when the input at t−1 differed
    assert not torch.allclose(cell(x1, h1), cell(x1, cell(x0_other, None)), atol=1e-4)
    with pytest.raises(ValueError, match="odd"):
        ConvGRUCell(3, 5, kernel=4)


# ---------------------------------------------------------------- sampling and splatting


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_splat_is_the_adjoint_of_sample(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(3, 5, 7, 9, generator=gen, dtype=dtype)
    # some points off the image and on its edges, where the zero padding matters
    points = torch.rand(3, 20, 2, generator=gen, dtype=dtype) * 1.4 - 0.2
    points[0, :4] = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 1.0]], dtype=dtype)
    values = torch.randn(3, 20, 5, generator=gen, dtype=dtype)
    lhs = (sample_at(features, points) * values).sum()
    rhs = (features * splat_at(values, points, (7, 9))).sum()
    assert abs(float(lhs - rhs)) <= 1e-5 * max(1.0, abs(float(lhs)))


def test_sample_and_splat_by_hand() -> None:
    size = (4, 6)
    features = torch.arange(24.0).view(1, 1, 4, 6)
    at_pixel = torch.tensor([[centre(2, 1, size)]])  # (1, 1, 2): pixel x=2, y=1 → value 8
    assert float(sample_at(features, at_pixel)) == pytest.approx(8.0)
    between = torch.tensor([[[(2.5 + 0.5) / 6, (1 + 0.5) / 4]]])  # halfway to x=3: 8.5
    assert float(sample_at(features, between)) == pytest.approx(8.5)
    splat = splat_at(torch.tensor([[[2.0]]]), between, size)[0, 0]
    expected = torch.zeros(4, 6)
    expected[1, 2] = expected[1, 3] = 1.0
    torch.testing.assert_close(splat, expected)


# ---------------------------------------------------------------- GCN


def random_gcn(channels: int = 6) -> KeypointGCN:
    torch.manual_seed(2)
    return KeypointGCN(channels, 8, layers=2, zero_init=False)


def keypoints(batch: int, conf: float = 1.0) -> Tensor:
    gen = torch.Generator().manual_seed(3)
    xy = torch.rand(batch, NUM_KEYPOINTS, 2, generator=gen)
    return torch.cat([xy, torch.full((batch, NUM_KEYPOINTS, 1), conf)], -1)  # (B, K, 3)


def test_gcn_shape_and_zeroed_weights_give_identity() -> None:
    gcn = random_gcn()
    features = torch.randn(2, 6, 8, 8)
    out = gcn(features, keypoints(2))
    assert out.shape == features.shape
    assert not torch.allclose(out, features)
    for param in gcn.parameters():
        nn.init.zeros_(param)
    torch.testing.assert_close(gcn(features, keypoints(2)), features)
    # the default starts as the identity too
    torch.testing.assert_close(KeypointGCN(6, 8)(features, keypoints(2)[..., :2]), features)


def test_gcn_ignores_points_of_zero_confidence() -> None:
    gcn = random_gcn()
    features = torch.randn(2, 6, 8, 8)
    kp = keypoints(2)
    torch.testing.assert_close(gcn(features, keypoints(2, conf=0.0)), features)
    # hands undetected: wherever their points are, the output is the same
    hands = slice(25, NUM_KEYPOINTS)
    kp[:, hands, 2] = 0.0
    moved = kp.clone()
    moved[:, hands, :2] = torch.rand(2, NUM_KEYPOINTS - 25, 2)
    out = gcn(features, kp)
    torch.testing.assert_close(out, gcn(features, moved))
    assert not torch.allclose(out, features)
    # an explicit confidence overrides the third channel
    torch.testing.assert_close(gcn(features, kp, torch.zeros(2, NUM_KEYPOINTS)), features)


def test_gcn_batch_items_are_disjoint_graphs() -> None:
    gcn = random_gcn()
    features, kp = torch.randn(3, 6, 8, 8), keypoints(3)
    together = gcn(features, kp)
    alone = torch.cat([gcn(features[i : i + 1], kp[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)
    with pytest.raises(ValueError, match="67 keypoints"):
        gcn(features, kp[:, :25])


# ---------------------------------------------------------------- UNet


@pytest.mark.parametrize("size", [32, 64, 128])
def test_unet_shapes(size: int) -> None:
    unet = UNet(4, 3, base=8, depth=4)
    assert unet.channels == [8, 16, 32, 64, 64]
    x = torch.randn(2, 4, size, size)
    bottleneck, skips = unet.encode(x)
    assert bottleneck.shape == (2, 64, size // 16, size // 16)
    assert [s.shape[1:] for s in skips] == [
        (c, size >> i, size >> i) for i, c in enumerate(unet.channels[:-1])
    ]
    assert unet(x).shape == (2, 3, size, size)


def test_unet_condition_and_bottleneck_hook() -> None:
    torch.manual_seed(4)
    unet = UNet(3, 2, base=8, depth=3, cond_channels=5)
    x, cond = torch.randn(2, 3, 16, 16), torch.randn(2, 5)
    out = unet(x, cond)
    assert out.shape == (2, 2, 16, 16)
    assert not torch.allclose(out, unet(x, cond + 1.0))
    bottleneck, skips = unet.encode(x)
    torch.testing.assert_close(unet.decode(bottleneck, skips, cond), out)
    unet.bottleneck = nn.Dropout(1.0)  # zeroes the bottleneck in training mode
    assert not torch.allclose(unet(x, cond), out)
    with pytest.raises(ValueError, match="cond"):
        unet(x)
    with pytest.raises(ValueError, match="multiple"):
        unet(torch.randn(1, 3, 20, 20), cond[:1])


# ---------------------------------------------------------------- STU


def stu_inputs(b: int = 2, t: int = 3, size: int = 32, seed: int = 5) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    kp = torch.rand(b, t, NUM_KEYPOINTS, 3, generator=gen)
    return {
        "coarse": torch.rand(b, t, 3, size, size, generator=gen) * 2 - 1,
        "heatmap": torch.rand(b, t, 1, size, size, generator=gen),
        "keypoints": kp,
        "audio_feat": torch.randn(b, t, 12, generator=gen),
    }


def make_stu(use_gru: bool = True, use_gcn: bool = True) -> StructuredTemporalUNet:
    torch.manual_seed(6)
    stu = StructuredTemporalUNet(12, base=8, depth=3, use_gru=use_gru, use_gcn=use_gcn)
    if stu.gcn is not None:  # leave the identity start, so the GCN's effect shows
        nn.init.normal_(stu.gcn.convs[-1].get_parameter("lin.weight"), std=0.3)
    nn.init.normal_(stu.unet.head.weight, std=0.1)  # likewise the zero correction
    return stu.eval()


def test_stu_shapes_range_and_residual() -> None:
    stu = make_stu()
    inputs = stu_inputs()
    frames, state = stu(**inputs)
    assert frames.shape == (2, 3, 3, 32, 32)
    assert state is not None and state.shape == (2, 64, 4, 4)
    assert frames.abs().max() <= 1.0
    # the untrained STU's correction is zero: it returns the coarse frame (up to its clamp
    # at ±(1 − 1e-3)), so training starts from the coarse stage's frames
    fresh = StructuredTemporalUNet(12, base=8, depth=3)
    frames, _ = fresh(**inputs)
    torch.testing.assert_close(frames, inputs["coarse"].clamp(-0.999, 0.999))


def test_stu_ablations() -> None:
    full, no_gru, no_gcn = make_stu(), make_stu(use_gru=False), make_stu(use_gcn=False)
    assert num_params(full) > num_params(no_gru) > num_params(make_stu(False, False))
    assert num_params(full) > num_params(no_gcn)
    inputs = stu_inputs()
    moved = {**inputs, "keypoints": stu_inputs(seed=9)["keypoints"]}
    # keypoints reach the frames only through the GCN
    assert not torch.allclose(full(**inputs)[0], full(**moved)[0])
    torch.testing.assert_close(no_gcn(**inputs)[0], no_gcn(**moved)[0])
    # without the GRU there is no state and frames are independent: reversing time reverses
    frames, state = no_gru(**inputs)
    assert state is None
    flipped = {k: v.flip(1) for k, v in inputs.items()}
    torch.testing.assert_close(no_gru(**flipped)[0], frames.flip(1))
    assert not torch.allclose(full(**flipped)[0], full(**inputs)[0].flip(1))
    # the audio feature matters in every variant
    louder = {**inputs, "audio_feat": inputs["audio_feat"] + 1.0}
    assert not torch.allclose(no_gru(**louder)[0], frames)


def test_stu_state_chains_windows() -> None:
    stu = make_stu()
    inputs = stu_inputs(t=6)
    with torch.no_grad():
        whole, last = stu(**inputs)
        first, state = stu(**{k: v[:, :3] for k, v in inputs.items()})
        second, chained = stu(**{k: v[:, 3:] for k, v in inputs.items()}, state=state)
        fresh, _ = stu(**{k: v[:, 3:] for k, v in inputs.items()})
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chained, last, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fresh, second, atol=1e-4)  # the state carried something


def test_stu_learns_a_tiny_batch() -> None:
    torch.manual_seed(7)
    stu = StructuredTemporalUNet(12, base=8, depth=3).train()
    inputs = stu_inputs(b=2, t=3, size=32)
    # target: the coarse frames brightened on the right half, a correction to learn
    target = inputs["coarse"].clone()
    target[..., 16:] = (target[..., 16:] + 0.5).clamp(-1, 1)
    opt = torch.optim.Adam(stu.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = (stu(**inputs)[0] - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.6 * losses[0], losses


# ---------------------------------------------------------------- discriminators


def test_audio_video_discriminator() -> None:
    torch.manual_seed(8)
    disc = AudioVideoDiscriminator(12, base=8, image_size=32).eval()
    frame, audio = torch.randn(3, 3, 32, 32), torch.randn(3, 12)
    score = disc(frame, audio)
    assert score.shape == (3,)
    assert (disc(frame, audio + 1.0) - score).abs().min() > 0  # every score depends on audio
    assert not torch.allclose(disc(frame.flip(-1), audio), score)
    plain = AudioVideoDiscriminator(12, base=8, image_size=64, spectral_norm=False)
    assert plain(torch.randn(2, 3, 64, 64), torch.randn(2, 12)).shape == (2,)
    assert num_params(plain) > num_params(disc)  # one more layer for the larger frame
    with pytest.raises(ValueError, match="power of two"):
        AudioVideoDiscriminator(12, image_size=96)


@pytest.mark.parametrize("spectral", [False, True])
def test_patch_discriminator_shapes(spectral: bool) -> None:
    disc = PatchDiscriminator(6, base=8, layers=3, spectral_norm=spectral)
    assert disc(torch.randn(2, 6, 64, 64)).shape == (2, 1, 6, 6)
    assert PatchDiscriminator(3, base=8, layers=2)(torch.randn(1, 3, 32, 32)).shape == (1, 1, 6, 6)


# ---------------------------------------------------------------- VGG-19


SHALLOW = ("relu1_2", "relu2_2")


def test_vgg_trunk_matches_torchvision_layout() -> None:
    from torchvision.models.vgg import cfgs, make_layers

    ours = VGG19Features(layers=("relu5_4",)).features.state_dict()
    theirs = make_layers(cfgs["E"]).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    assert vgg19_layer_names()[35] == "relu5_4"  # features[35] in torchvision


def test_vgg_loads_saved_weights(tmp_path: Path) -> None:
    torch.manual_seed(9)
    random = VGG19Features(layers=SHALLOW)
    assert random.source == "random"
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    want = random(x)
    assert [k for k in want] == list(SHALLOW) and want["relu2_2"].shape == (2, 128, 8, 8)
    whole = random.state_dict()  # "features.N.weight": torchvision's vgg19 layout
    for name, state in {
        "vgg19.pth": {**whole, "classifier.0.weight": torch.zeros(2, 2)},
        "features.pth": random.features.state_dict(),
    }.items():
        torch.save(state, tmp_path / name)
        loaded = VGG19Features(tmp_path / name, layers=SHALLOW)
        assert loaded.source == f"file:{tmp_path / name}"
        for k, v in loaded(x).items():
            torch.testing.assert_close(v, want[k], atol=0, rtol=0)


def test_vgg_rejects_bad_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    wrong_keys = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong_keys)
    wrong_shape = tmp_path / "narrow.pth"
    torch.save({"0.weight": torch.zeros(8, 3, 3, 3), "0.bias": torch.zeros(8)}, wrong_shape)
    for path in (garbage, wrong_keys, wrong_shape):
        with pytest.raises(ValueError, match=path.name):
            VGG19Features(path, layers=("relu1_1",))
    with pytest.raises(ValueError, match="unknown layers"):
        VGG19Features(layers=("relu9_9",))


def test_vgg_is_frozen_and_passes_gradients() -> None:
    vgg = VGG19Features(layers=SHALLOW)
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg(x)["relu2_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_perceptual_loss() -> None:
    torch.manual_seed(10)
    vgg = VGG19Features(layers=SHALLOW)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert float(perceptual_loss(vgg, x, x)) == 0.0
    assert float(perceptual_loss(vgg, x, x.flip(-1))) > 0.0
