"""Audio front-ends: shapes, pitch placement, onsets, video-rate pooling, autocast, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from audiovis.audio import (
    CQT,
    AudioFrontEnd,
    Chroma,
    LogMel,
    OnsetEnvelope,
    chroma_filterbank,
    frames_to_video_rate,
    hop_for,
)

SR = 16000


def sine(freq: float, num_samples: int = SR, rate: int = SR) -> Tensor:
    return 0.5 * torch.sin(2 * math.pi * freq * torch.arange(num_samples) / rate)


@pytest.fixture(scope="module")
def cqt() -> CQT:
    return CQT(sample_rate=SR)  # building the kernels takes about a second: share it


@pytest.fixture(scope="module")
def front_ends(cqt: CQT) -> list[AudioFrontEnd]:
    return [cqt, LogMel(sample_rate=SR), Chroma(sample_rate=SR), OnsetEnvelope(sample_rate=SR)]


@pytest.mark.parametrize("num_samples", [12345, 16000])
def test_output_shapes(front_ends: list[AudioFrontEnd], num_samples: int) -> None:
    audio = 0.1 * torch.randn(2, num_samples, generator=torch.Generator().manual_seed(0))
    expected_features = [84, 80, 12, 1]
    for module, features in zip(front_ends, expected_features, strict=True):
        assert module.num_features == features
        assert module.num_frames(num_samples) == num_samples // 256 + 1
        out = module(audio)
        assert out.shape == (2, features, num_samples // 256 + 1), type(module).__name__
        assert out.dtype == torch.float32


def test_a_single_waveform_becomes_a_batch_of_one(front_ends: list[AudioFrontEnd]) -> None:
    audio = sine(440, 4096)
    for module in front_ends:
        assert module(audio).shape == (1, module.num_features, 17)
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        front_ends[1](torch.zeros(1, 1, 4096))


def test_cqt_works_on_clips_shorter_than_its_longest_kernel(cqt: CQT) -> None:
    # 0.25 s is shorter than half the lowest bin's kernel (about 0.5 s at 32.7 Hz)
    out = cqt(sine(440, 4000)[None])
    assert out.shape == (1, 84, 4000 // 256 + 1)
    assert torch.isfinite(out).all()


def test_cqt_of_a4_peaks_at_bin_45(cqt: CQT) -> None:
    out = cqt(sine(440)[None])[0]  # (84, N)
    expected = round(12 * math.log2(440 / 32.70))
    assert expected == 45
    assert int(out.mean(dim=1).argmax()) == expected
    # every frame away from the edges agrees
    assert (out[:, 8:-8].argmax(dim=0) == expected).all()


def test_cqt_beyond_nyquist_raises() -> None:
    with pytest.raises(ValueError, match="Nyquist"):
        CQT(sample_rate=16000, n_bins=96)  # 32.7 Hz * 2^8 = 8371 Hz > 8000 Hz
    with pytest.raises(ValueError, match="Nyquist"):
        CQT(sample_rate=8000, n_bins=84)  # 32.7 Hz * 2^7 = 4186 Hz > 4000 Hz


@pytest.mark.parametrize(("freq", "pitch_class"), [(440.0, 9), (261.63, 0), (392.0, 7)])
def test_chroma_peaks_at_the_pitch_class(freq: float, pitch_class: int) -> None:
    out = Chroma(sample_rate=SR)(sine(freq)[None])[0]  # (12, N)
    assert int(out.mean(dim=1).argmax()) == pitch_class
    assert (out.argmax(dim=0) == pitch_class).all()
    # each frame is normalised to a maximum of 1
    torch.testing.assert_close(out.amax(dim=0), torch.ones(out.shape[1]))


def test_chroma_of_silence_is_zero() -> None:
    out = Chroma(sample_rate=SR)(torch.zeros(1, 4096))
    assert torch.equal(out, torch.zeros(1, 12, 17))


def test_chroma_filterbank_rows() -> None:
    # 14080 Hz with n_fft 32: FFT bin k sits at 440 k Hz
    fb = chroma_filterbank(14080, 32, fmin=55.0, fmax=5000.0)
    assert fb.shape == (12, 17)
    # 440 Hz and 880 Hz are both A: weight 1 on class 9 only
    for k in (1, 2):
        expected = torch.zeros(12)
        expected[9] = 1.0
        torch.testing.assert_close(fb[:, k], expected)
    # 1320 Hz is MIDI 69 + 12 log2(3) = 88.02: 98 % E (class 4), 2 % F (class 5)
    frac = (12 * math.log2(3)) % 1
    assert float(fb[4, 3]) == pytest.approx(1 - frac, abs=1e-6)
    assert float(fb[5, 3]) == pytest.approx(frac, abs=1e-6)
    assert float(fb[:, 3].sum()) == pytest.approx(1.0)
    # 0 Hz and everything above fmax (bins 12..16, from 5280 Hz) carry no weight
    assert torch.equal(fb[:, 0], torch.zeros(12))
    assert torch.equal(fb[:, 12:], torch.zeros(12, 5))


def test_chroma_filterbank_columns_sum_to_one_inside_the_band() -> None:
    fb = chroma_filterbank(16000, 2048)  # bins are 7.8125 Hz apart
    sums = fb.sum(dim=0)
    # 55 Hz <= f <= 5000 Hz holds for bins 8 (62.5 Hz) to 640 (5000 Hz)
    torch.testing.assert_close(sums[8:641], torch.ones(633))
    assert torch.equal(sums[:8], torch.zeros(8))
    assert torch.equal(sums[641:], torch.zeros(1025 - 641))


def test_onset_envelope_peaks_at_the_onset() -> None:
    audio = torch.zeros(1, SR)
    audio[0, SR // 2 :] = sine(440, SR // 2)  # tone starts at 0.5 s
    out = OnsetEnvelope(sample_rate=SR)(audio)[0, 0]
    onset_frame = round(0.5 * SR / 256)  # 31
    assert abs(int(out.argmax()) - onset_frame) <= 2
    # frames whose windows see only silence have no flux
    assert torch.equal(out[:29], torch.zeros(29))
    assert float(out.max()) > 1.0


def test_onset_envelope_ignores_a_fade_out() -> None:
    t = torch.arange(SR) / SR
    # full level until 0.4 s, a raised-cosine fade to 1 % by 0.6 s, then quiet
    fade = 0.01 + 0.99 * 0.5 * (1 + torch.cos(math.pi * (t - 0.4) / 0.2))
    level = torch.where(t < 0.4, 1.0, torch.where(t > 0.6, 0.01, fade))
    out = OnsetEnvelope(sample_rate=SR)(level * sine(440))[0, 0]
    # energy only falls: no positive flux to speak of (a rectified-free flux is ~0.15 here)
    assert float(out[23:40].mean()) < 0.05


def test_frames_to_video_rate_averages_spans() -> None:
    features = torch.arange(8.0).reshape(1, 1, 8)
    out = frames_to_video_rate(features, 4)
    assert out.shape == (1, 4, 1)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([0.5, 2.5, 4.5, 6.5]))
    two = torch.stack([torch.arange(6.0), 10 * torch.arange(6.0)])[None]  # (1, 2, 6)
    torch.testing.assert_close(
        frames_to_video_rate(two, 3), torch.tensor([[[0.5, 5.0], [2.5, 25.0], [4.5, 45.0]]])
    )


def test_hop_for() -> None:
    assert hop_for(16000, 25) == 160
    assert hop_for(16000, 30) == 133  # floor(133.3)
    assert hop_for(16000, 24) == 166  # floor(166.7), not rounded
    assert hop_for(16000, 25, per_frame=1) == 640
    assert hop_for(10, 30) == 1


def test_autocast_keeps_float32(front_ends: list[AudioFrontEnd]) -> None:
    audio = sine(440, 8192)[None] + 0.01 * torch.randn(
        1, 8192, generator=torch.Generator().manual_seed(1)
    )
    for module in front_ends:
        reference = module(audio)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert nn.Linear(4, 4)(torch.ones(1, 4)).dtype == torch.bfloat16  # autocast is on
            out = module(audio)
            from_bf16 = module(audio.bfloat16())
        name = type(module).__name__
        assert out.dtype == torch.float32, name
        assert from_bf16.dtype == torch.float32, name
        assert torch.isfinite(out).all(), name
        torch.testing.assert_close(out, reference, msg=name)


def test_log_mel_as_first_layer_passes_gradients() -> None:
    frontend = LogMel(sample_rate=SR, n_mels=16)
    head = nn.Linear(16, 1)
    audio = sine(440, 4096)[None].requires_grad_(True)
    features = frames_to_video_rate(frontend(audio), 4)  # (1, 4, 16)
    loss = head(features).pow(2).mean()
    loss.backward()
    assert head.weight.grad is not None
    assert head.weight.grad.abs().sum() > 0
    assert audio.grad is not None  # the gradient reaches the waveform through the front-end
    assert torch.isfinite(audio.grad).all()
    assert audio.grad.abs().sum() > 0
