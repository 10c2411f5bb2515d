"""Dance metrics, each against a case worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiovis.data.studio.rigs.dance import J
from audiovis.metrics.dance import (
    GEOMETRIC_RELATIONS,
    beat_alignment,
    beat_alignment_chance,
    beat_lag,
    beat_lag_curve,
    dance_beat_alignment,
    dance_beat_lag,
    dance_fid_div,
    diversity,
    frechet_distance,
    geometric_relations,
    jerk,
    kinetic_features,
    local_minima,
    motion_beats,
    music_beats,
    onset_envelope,
    physical_foot_contact,
    track_beats,
)

FPS = 25.0


def test_frechet_distance_of_two_1d_gaussians() -> None:
    # a = {0, 2}: mean 1, variance (sample) 2; b = {3, 7}: mean 5, variance 8
    a, b = np.array([[0.0], [2.0]]), np.array([[3.0], [7.0]])
    # (1 − 5)² + 2 + 8 − 2·√(2·8) = 16 + 10 − 8 = 18
    assert math.isclose(frechet_distance(a, b), 18.0, rel_tol=1e-6)
    assert math.isclose(frechet_distance(a, a), 0.0, abs_tol=1e-6)


def test_diversity_is_the_mean_pairwise_distance() -> None:
    # a 3-4-5 triangle: distances 3, 4, 5 → mean 4
    f = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert math.isclose(diversity(f), 4.0)


def test_kinetic_features_of_uniform_and_accelerated_motion() -> None:
    t = np.arange(10)[:, None, None]
    x = np.zeros((10, 2, 3))
    x[..., 0] = 0.1 * t[..., 0]  # joint 0 and 1 move along x at 0.1 m/frame = 2.5 m/s
    x[:, 1, 1] = 0.02 * t[:, 0, 0] ** 2  # joint 1 also accelerates upward: a = 0.04 m/frame²
    f = kinetic_features(x, FPS)
    ke_h, ke_v, energy = f[:2], f[2:4], f[4:]
    assert np.allclose(ke_h, 0.5 * 2.5**2)  # ½ v²
    # vertical velocities of joint 1: 0.02·(2k+1) m/frame, k = 0..8, times 25
    v = 0.02 * (2 * np.arange(9) + 1) * FPS
    assert math.isclose(ke_v[0], 0.0) and math.isclose(ke_v[1], (0.5 * v**2).mean())
    assert math.isclose(energy[0], 0.0, abs_tol=1e-9)
    assert math.isclose(energy[1], 0.04 * FPS**2)  # 25 m/s²


def test_geometric_relations_on_a_posed_skeleton() -> None:
    pose = np.zeros((1, 23, 3))
    coords = {
        "pelvis": (0, 1.0, 0), "spine": (0, 1.1, 0), "chest": (0, 1.3, 0), "neck": (0, 1.45, 0),
        "head": (0, 1.6, 0), "l_shoulder": (0.2, 1.45, 0), "r_shoulder": (-0.2, 1.45, 0),
        "l_elbow": (0.2, 1.7, 0), "l_wrist": (0.2, 1.95, 0), "l_hand": (0.2, 2.0, 0),
        "r_elbow": (-0.2, 1.2, 0), "r_wrist": (-0.2, 0.95, 0), "r_hand": (-0.2, 0.9, 0),
        "l_hip": (0.1, 0.95, 0), "r_hip": (-0.1, 0.95, 0), "l_knee": (0.1, 0.5, 0),
        "r_knee": (-0.1, 0.5, 0), "l_ankle": (0.1, 0.08, 0.3), "r_ankle": (-0.1, 0.08, 0),
    }  # fmt: skip
    for name, xyz in coords.items():
        pose[0, J[name]] = xyz
    rel = dict(zip(GEOMETRIC_RELATIONS, geometric_relations(pose)[0], strict=True))
    # left arm straight up: above the head and the shoulder, not bent; right arm hangs
    assert rel["l_hand_above_head"] and rel["l_hand_above_shoulder"]
    assert not rel["r_hand_above_head"] and not rel["r_hand_above_shoulder"]
    assert not rel["l_elbow_bent"] and not rel["r_elbow_bent"]
    # left foot 0.3 m ahead (> 0.5·s = 0.2 m), feet level; left knee bent by the reach forward
    assert rel["l_foot_ahead"] and not rel["r_foot_ahead"]
    assert not rel["l_foot_raised"] and not rel["r_foot_raised"]
    assert rel["l_knee_bent"] and not rel["r_knee_bent"]
    assert not rel["leaning_forward"]


def test_beat_alignment_by_hand() -> None:
    # music beats 10 and 30; motion beats 10 and 33: (e⁰ + e^(−9/18)) / 2
    expected = (1 + math.exp(-9 / 18)) / 2
    assert math.isclose(beat_alignment(np.array([10, 30]), np.array([10, 33])), expected)
    # per motion beat (FACT): motion beats 10, 20, 33 against music 10, 30 → d = 0, 10, 3
    expected = (1 + math.exp(-100 / 18) + math.exp(-9 / 18)) / 3
    got = beat_alignment(np.array([10, 30]), np.array([10, 20, 33]), per="motion")
    assert math.isclose(got, expected)
    assert beat_alignment(np.array([10]), np.array([], np.int64)) == 0.0
    with pytest.raises(ValueError):
        beat_alignment(np.array([]), np.array([1]))


def test_motion_beats_are_the_rests_of_a_swing() -> None:
    # a joint swinging as cos: its speed is least at the turning points, every 25 frames
    t = np.arange(200)
    x = np.zeros((200, 1, 3))
    x[:, 0, 0] = np.cos(2 * np.pi * t / 50)
    beats = motion_beats(x)
    assert np.allclose(np.diff(beats), 25, atol=1)
    assert all(min(abs(b + 0.5 - k * 25) for k in range(9)) <= 1 for b in beats)


def test_local_minima_count_a_flat_bottom_once() -> None:
    v = np.array([3, 1, 1, 3, 2, 2, 2, 5, 0, 4.0])
    # runs 1,1 (frames 1-2) and 2,2,2 (4-6) are bottoms, at their middles; 0 at frame 8 too
    np.testing.assert_array_equal(local_minima(v), [1, 5, 8])
    # order 2: the run at frames 4-6 has the lower 1 of frame 2 within two frames
    np.testing.assert_array_equal(local_minima(v, order=2), [1, 8])
    assert len(local_minima(np.ones(6))) == 0  # a still dancer has no beats


def test_music_beats_of_a_click_track() -> None:
    rate = 8000
    audio = np.zeros(rate * 8)
    click = np.hanning(80) * np.sin(np.arange(80))
    clicks = np.arange(0.5, 7.6, 0.5)  # 120 bpm: a beat every 12.5 frames
    for c in clicks:
        audio[int(c * rate) : int(c * rate) + 80] += click
    env = onset_envelope(audio, rate, FPS)
    assert env.argmax() in {int(c * FPS) for c in clicks} | {int(c * FPS) + 1 for c in clicks}
    beats = music_beats(audio, rate, FPS)
    expected = clicks * FPS
    assert len(beats) >= 12
    assert np.abs(beats[:, None] - expected[None]).min(1).max() <= 1.0
    assert len(track_beats(np.zeros(100), FPS)) == 0


def test_beat_alignment_chance_by_hand() -> None:
    # music beats every 8 frames; kinematic beats on them. Two shifts, 0 and 4 frames: the
    # score is 1 at shift 0 and e^(−16/18) at 4 (every beat 4 frames from a kinematic beat)
    music = np.array([0, 8, 16, 24])
    chance = beat_alignment_chance(music, music, 30, shifts=2)
    assert math.isclose(chance, (1 + math.exp(-16 / 18)) / 2)
    # a kinematic beat on every frame is near every shifted beat too: no gain over chance
    every = np.arange(30)
    assert math.isclose(beat_alignment(music, every), beat_alignment_chance(music, every, 30))
    with pytest.raises(ValueError):
        beat_alignment_chance(np.array([3]), every, 30)


def _click_track(rate: int, seconds: float, every: float) -> tuple[np.ndarray, np.ndarray]:
    audio = np.zeros(int(rate * seconds))
    click = np.hanning(80) * np.sin(np.arange(80))
    clicks = np.arange(every, seconds - every / 2, every)
    for c in clicks:
        audio[int(c * rate) : int(c * rate) + 80] += click
    return audio, clicks


def test_jitter_does_not_raise_the_beat_alignment_above_chance() -> None:
    rate, seconds = 8000, 12.0
    audio, clicks = _click_track(rate, seconds, 0.52)  # 13 frames a beat
    t = np.arange(int(seconds * FPS)) / FPS
    # a dancer resting on every click: a joint whose speed is least on the beats
    phase = np.interp(t, clicks, np.arange(len(clicks)))
    on_beat = np.zeros((len(t), 1, 3))
    on_beat[:, 0, 0] = np.cos(np.pi * phase)
    # jitter: white noise puts a speed minimum every few frames, near every music beat
    jitter = np.random.default_rng(0).normal(0, 0.05, (len(t), 4, 3))
    bas = {n: dance_beat_alignment(x, audio, rate, FPS) for n, x in
           (("on_beat", on_beat), ("jitter", jitter))}  # fmt: skip
    gain = {n: dance_beat_alignment(x, audio, rate, FPS, above_chance=True) for n, x in
            (("on_beat", on_beat), ("jitter", jitter))}  # fmt: skip
    assert bas["on_beat"] > 0.7 and bas["jitter"] > 0.5  # plain BAS rewards the jitter
    assert gain["on_beat"] > 0.25, gain
    assert abs(gain["jitter"]) < 0.1, gain
    # AIST++'s order: one kinematic beat per ±4 frames at most
    assert np.diff(motion_beats(jitter, order=4)).min() > 4
    assert len(motion_beats(jitter, order=4)) < len(motion_beats(jitter))


def test_physical_foot_contact_by_hand() -> None:
    # a root accelerating upward by 1, 2, 3 (metres per frame², normalised by 3) while both feet
    # slide 0.1 m/frame horizontally: PFC = mean(â · 0.1 · 0.1) = (1/3 + 2/3 + 1) / 3 · 0.01
    n = 5
    x = np.zeros((n, 23, 3))
    for j in ("l_ankle", "l_toe", "r_ankle", "r_toe"):
        x[:, J[j], 0] = 0.1 * np.arange(n)
    root = np.zeros((n, 3))
    root[:, 1] = np.cumsum(np.cumsum([0, 0, 1, 2, 3]))  # second differences 1, 2, 3
    expected = (1 / 3 + 2 / 3 + 1) / 3 * 0.01
    assert math.isclose(physical_foot_contact(x, FPS, root=root), expected)
    # feet planted: no penalty whatever the root does
    still = np.zeros((n, 23, 3))
    assert physical_foot_contact(still, FPS, root=root) == 0.0
    # downward acceleration is free (gravity): clamped to 0 → no acceleration → 0
    assert physical_foot_contact(x, FPS, root=-root) == 0.0


def test_jerk_of_a_cubic() -> None:
    # x = t³ in frames: third difference 6 per frame³ → 6·25³ m/s³
    x = np.zeros((8, 1, 3))
    x[:, 0, 0] = np.arange(8) ** 3
    assert math.isclose(jerk(x, FPS), 6 * FPS**3)
    assert math.isclose(jerk(x, FPS, squared=True), (6 * FPS**3) ** 2)


def test_fid_and_diversity_of_dances() -> None:
    rng = np.random.default_rng(0)
    real = [rng.normal(0, 0.05, (30, 23, 3)).cumsum(0) for _ in range(6)]
    same = dance_fid_div(real, real, FPS)
    assert same["fid_k"] < 1e-6 and same["fid_g"] < 1e-6
    still = [np.repeat(r[:1], 30, 0) + rng.normal(0, 1e-4, (30, 23, 3)) for r in real]
    moved = dance_fid_div(real, still, FPS)
    assert moved["fid_k"] > 1.0 and moved["div_k"] < same["div_k"]


def test_beat_lag_finds_late_and_early_steps() -> None:
    music = np.array([10.0, 20.0, 30.0])
    lags, curve = beat_lag_curve(music, music + 3, max_lag=4, sigma=1.0)
    assert list(lags) == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    # at lag 3 every music beat meets its motion beat exactly (the others are 10+ frames off)
    assert curve[lags == 3][0] == pytest.approx(1.0, abs=1e-12)
    assert curve[lags == 2][0] == pytest.approx(math.exp(-0.5), abs=1e-12)
    # at lag -4, music beats 20 and 30 are 3 frames from the motion beats 13 and 23 of the
    # previous period, and all three are 7 frames from their own
    expected = (2 * math.exp(-9 / 2) + 3 * math.exp(-49 / 2)) / 3
    assert curve[lags == -4][0] == pytest.approx(expected, abs=1e-12)
    assert beat_lag(music, music + 3, FPS, max_seconds=0.2, sigma=1.0) == pytest.approx(0.12)
    assert beat_lag(music, music - 2, FPS, max_seconds=0.2, sigma=1.0) == pytest.approx(-0.08)
    # 7 frames late at a period of 10 is 3 frames early: the search stops at half a period
    assert beat_lag(music, music + 7, FPS, max_seconds=0.6, sigma=1.0) == pytest.approx(-0.12)
    assert math.isnan(beat_lag(music, np.array([]), FPS))
    with pytest.raises(ValueError, match="max_lag"):
        beat_lag_curve(music, music, max_lag=-1)


def test_dance_beat_lag_of_a_dancer_stopping_after_each_click() -> None:
    rate, seconds = 8000, 8.0
    t = np.arange(int(rate * seconds)) / rate
    audio = 0.05 * np.sin(2 * np.pi * 220 * t)
    clicks = np.arange(0.5, seconds - 0.2, 0.5)  # 120 bpm
    for c in clicks:
        i = int(c * rate)
        audio[i : i + 200] += np.hanning(400)[200:]
    frames = int(seconds * FPS)
    time = np.arange(frames) / FPS
    # speed ~ |sin|: a pause (a kinematic beat) 0.16 s (4 frames) after every click
    phase = 2 * np.pi * (time - 0.16) / 0.5
    x = np.cumsum(np.abs(np.sin(phase / 2)) + 0.01)
    joints = np.zeros((frames, 2, 3))
    joints[:, :, 0] = x[:, None] * 0.01
    assert dance_beat_lag(joints, audio, rate, FPS) == pytest.approx(0.16, abs=0.041)
    assert dance_beat_lag(joints[::-1], audio, rate, FPS) == pytest.approx(-0.16, abs=0.041)
