"""Importer of the Music-to-Dance-Motion-Synthesis layout (Tang et al.; read by Abary's
music2dance) into the on-disk format, repairing its known defects, and a reader of the DeepMimic
motion clips that pybullet ships, as real motion capture.

The original layout, one folder per dance::

    SRC/DANCE_<W|C|T|R>_<n>/skeletons.json   {"length": N, "center": N×3, "skeletons": N×23×3}
    SRC/DANCE_<W|C|T|R>_<n>/config.json      {"start_position": s, "end_position": e}
    SRC/DANCE_<W|C|T|R>_<n>/audio_extract.wav the music; frames s … e (25 fps) were danced

Known defects, and what is done about them:

* **Waltz 4× slow.** The waltz skeletons run four times slower than their music, which shows
  (we take it) as N ≈ 4·(e − s) frames. :func:`detect_slowdown` compares N with the music's
  frames (for every style, not only waltz) and the motion is resampled in time by the factor
  found (linear interpolation). The raw ``skeletons.json`` is read; the original's own repaired
  ``new_skeletons.json``, where present, is not needed.
* **Audio and motion out of sync.** The original cropped both to the shorter length.
  :func:`estimate_offset` finds the lag between the music's onset envelope and the motion's
  kinematic beats (minima of joint speed, the motion's periodicity) by cross-correlation within
  ±``max_offset`` seconds; the audio is shifted by it and both are cropped to their overlap. The
  offset found is reported per dance.
* **Units and axes.** Undocumented: the up axis (the one from the ankles to the head) is
  rotated to ``+y``, and centimetres or millimetres (median thigh longer than 2 or 200 units)
  become metres.
* **Bad input.** Missing keys, a joint count other than 23, or ``length`` disagreeing with the
  frames raise :class:`DataError` naming the file. NaN gaps of up to ``max_gap`` frames are
  filled by linear interpolation (reported); longer ones raise. Music shorter than the motion
  crops the motion (reported); less than one second of overlap raises.

**Joint mapping.** The dataset does not document its 23 joints. Its visualiser's bones
(music2dance ``visualize.py``) give: 0, 1 two head points; 2 the root (hips); 3–6 one arm
(shoulder, elbow, wrist, hand) and 12–15 the other; 7–9 one leg (hip, knee, ankle) with 10, 11
two foot points and 16–18 the other leg with 19, 20; 21, 22 unused by the visualiser. The first
arm and leg are taken as the dancer's left (``mirror=True`` swaps). Into the studio's 23 joints
(:data:`~audiovis.data.studio.rigs.dance.DANCE_JOINTS`), see :data:`ORIGINAL_TO_STUDIO`:

    pelvis ← 2 · neck ← mean(3, 12) · spine ← 2 + 0.3·(neck − 2) · chest ← 2 + 0.75·(neck − 2)
    head ← mean(0, 1) · clavicles ← neck + 0.25·(shoulder − neck) · shoulder … hand ← 3…6 / 12…15
    hip, knee, ankle ← 7, 8, 9 / 16, 17, 18 · toe ← mean(10, 11) / mean(19, 20) · 21, 22 dropped
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiovis.data.schema import DataError, PerformanceMeta, write_manifest, write_performance
from audiovis.data.studio.rigs.dance import DANCE_JOINTS, J
from audiovis.metrics.dance import motion_beats, onset_envelope

ORIGINAL_JOINTS = 23
STYLE_CODES = {"W": "waltz", "C": "chacha", "T": "tango", "R": "rumba"}
FOLDER = re.compile(r"^DANCE_([WCTR])_(\d+)$")


def _mapping(mirror: bool = False) -> np.ndarray:
    """The (23 studio, 23 original) matrix W with studio = W @ original."""
    w = np.zeros((len(DANCE_JOINTS), ORIGINAL_JOINTS))
    left_arm, right_arm = (3, 4, 5, 6), (12, 13, 14, 15)
    left_leg, right_leg = (7, 8, 9, 10, 11), (16, 17, 18, 19, 20)
    if mirror:
        left_arm, right_arm, left_leg, right_leg = right_arm, left_arm, right_leg, left_leg
    neck = np.zeros(ORIGINAL_JOINTS)
    neck[[left_arm[0], right_arm[0]]] = 0.5
    root = np.zeros(ORIGINAL_JOINTS)
    root[2] = 1.0
    w[J["pelvis"]] = root
    w[J["neck"]] = neck
    w[J["spine"]] = root + 0.3 * (neck - root)
    w[J["chest"]] = root + 0.75 * (neck - root)
    w[J["head"], [0, 1]] = 0.5
    for side, arm, leg in (("l", left_arm, left_leg), ("r", right_arm, right_leg)):
        shoulder = np.zeros(ORIGINAL_JOINTS)
        shoulder[arm[0]] = 1.0
        w[J[f"{side}_clavicle"]] = neck + 0.25 * (shoulder - neck)
        for name, k in zip(("shoulder", "elbow", "wrist", "hand"), arm, strict=True):
            w[J[f"{side}_{name}"], k] = 1.0
        for name, k in zip(("hip", "knee", "ankle"), leg, strict=False):
            w[J[f"{side}_{name}"], k] = 1.0
        w[J[f"{side}_toe"], [leg[3], leg[4]]] = 0.5
    return w


ORIGINAL_TO_STUDIO: np.ndarray = _mapping()
"""(23, 23): studio joints = ORIGINAL_TO_STUDIO @ original joints (see the module docstring)."""


def to_studio_joints(skeletons: np.ndarray, mirror: bool = False) -> np.ndarray:
    """Map original joints to the studio's layout.

    Shape:
        skeletons (N, 23, 3) in the original order → (N, 23, 3) in DANCE_JOINTS order
    """
    return np.einsum("sj,njc->nsc", _mapping(mirror), skeletons)


# ------------------------------------------------------------------------------ reading


def read_skeletons(path: str | Path, max_gap: int = 5) -> tuple[np.ndarray, list[str]]:
    """Read ``skeletons.json``: the skeletons (N, 23, 3) float64 and notes of repairs made.

    Raises:
        DataError: not JSON, a missing key, a joint count other than 23, ``length`` not the
            number of frames, or a NaN gap longer than ``max_gap`` frames.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(path, f"not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object with 'length', 'center', 'skeletons'")
    missing = [k for k in ("length", "skeletons") if k not in data]
    if missing:
        raise DataError(path, f"missing key(s) {missing}; expected 'length', 'center', "
                              "'skeletons'")  # fmt: skip
    try:
        skel = np.array(data["skeletons"], dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(path, "'skeletons' is not an N×23×3 array of numbers") from None
    if skel.ndim != 3 or skel.shape[1:] != (ORIGINAL_JOINTS, 3):
        raise DataError(path, f"'skeletons' has shape {skel.shape}, expected (N, "
                              f"{ORIGINAL_JOINTS}, 3)")  # fmt: skip
    if int(data["length"]) != len(skel):
        raise DataError(path, f"'length' is {data['length']} but there are {len(skel)} frames")
    notes = []
    bad = np.asarray(~np.isfinite(skel).all(axis=(1, 2)), dtype=bool)
    if bad.any():
        skel, filled = _fill_gaps(skel, bad, max_gap, path)
        notes.append(f"filled {filled} frame(s) holding NaN by linear interpolation")
    return skel, notes


def _fill_gaps(skel: np.ndarray, bad: np.ndarray, max_gap: int,
               path: Path) -> tuple[np.ndarray, int]:  # fmt: skip
    idx = np.flatnonzero(bad)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    for run in runs:
        if len(run) > max_gap or run[0] == 0 or run[-1] == len(skel) - 1:
            raise DataError(path, f"frames {run[0]}–{run[-1]} hold NaN: a gap of {len(run)} "
                                  f"frames at the edge or longer than {max_gap} cannot be "
                                  "interpolated")  # fmt: skip
    good = np.flatnonzero(~bad)
    out = skel.copy()
    flat = out.reshape(len(out), -1)
    for k in range(flat.shape[1]):
        flat[idx, k] = np.interp(idx, good, flat[good, k])
    return out, len(idx)


def read_config(path: str | Path) -> tuple[int, int]:
    """``config.json``'s (start_position, end_position), in 25 fps frames of the music."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        start, end = int(data["start_position"]), int(data["end_position"])
    except KeyError as err:
        raise DataError(path, f"missing key {err}") from None
    except (OSError, ValueError, TypeError) as err:
        raise DataError(path, f"not a readable config ({err})") from None
    if end <= start:
        raise DataError(path, f"end_position {end} is not after start_position {start}")
    return start, end


# -------------------------------------------------------------------------- repairs


def upright(joints: np.ndarray) -> np.ndarray:
    """Rotate so that the axis from the ankles to the head is ``+y`` (a permutation of the
    axes, with a sign), in the studio's layout."""
    up = (joints[:, J["head"]] - 0.5 * (joints[:, J["l_ankle"]] + joints[:, J["r_ankle"]])).mean(0)
    axis = int(np.argmax(np.abs(up)))
    sign = np.sign(up[axis]) or 1.0
    if axis == 1:
        return joints * np.array([1.0, sign, sign])  # a half-turn about x keeps it a rotation
    other = next(a for a in range(3) if a not in (axis, 1))
    # map axis → y (with sign), y → axis, keep the third: a rotation by 90° (det +1)
    out = joints.copy()
    out[..., 1] = sign * joints[..., axis]
    out[..., axis] = -sign * joints[..., 1]
    out[..., other] = joints[..., other]
    return out


def metres_scale(joints: np.ndarray) -> float:
    """1, 0.01 or 0.001: the factor to metres from the median thigh length (hip to knee)."""
    thigh = float(
        np.median(np.linalg.norm(joints[:, J["l_hip"]] - joints[:, J["l_knee"]], axis=-1))
    )
    if thigh > 200:
        return 0.001
    if thigh > 2:
        return 0.01
    return 1.0


def detect_slowdown(motion_frames: int, music_frames: int) -> int:
    """The whole factor by which the motion runs slower than its music: 1, or 4 for the slow
    waltzes (any factor 2–8 whose ratio is within 15 %).

    Raises:
        ValueError: the ratio is far from a whole factor (not a known defect).
    """
    ratio = motion_frames / max(music_frames, 1)
    factor = max(1, round(ratio))
    if ratio < 0.5 or abs(ratio - factor) > 0.15 * factor or factor > 8:
        raise ValueError(f"{motion_frames} motion frames for {music_frames} music frames "
                         f"(ratio {ratio:.2f}) is not a whole slow-down factor")  # fmt: skip
    return factor


def resample_motion(joints: np.ndarray, factor: float) -> np.ndarray:
    """Speed the motion up by ``factor`` (linear interpolation in time).

    Shape:
        (N, J, 3) → (round(N / factor), J, 3)
    """
    n = len(joints)
    m = max(2, round(n / factor))
    t = np.linspace(0, n - 1, m)
    i = np.minimum(np.floor(t).astype(int), n - 2)
    w = (t - i)[:, None, None]
    return (1 - w) * joints[i] + w * joints[i + 1]


def motion_beat_signal(joints: np.ndarray, length: int, sigma: float = 1.5) -> np.ndarray:
    """Kinematic beats (minima of joint speed) as Gaussian bumps over ``length`` frames."""
    t = np.arange(length)[:, None]
    beats = motion_beats(joints)[None].astype(np.float64) + 1  # speed frame k ends at frame k+1
    if beats.size == 0:
        return np.zeros(length)
    return np.exp(-((t - beats) ** 2) / (2 * sigma**2)).sum(1)


def estimate_offset(audio: np.ndarray, sample_rate: int, joints: np.ndarray, fps: float,
                    max_offset: float = 2.0) -> tuple[int, float]:  # fmt: skip
    """The lag, in frames, at which the music's onsets best meet the motion's beats.

    A positive offset means the music is late: music frame ``t + offset`` goes with motion
    frame ``t``. Cross-correlation of the standardised onset envelope with the motion's beat
    signal, over lags within ±``max_offset`` seconds, normalised by the overlap.

    Returns:
        (offset in frames, the correlation at it)
    """
    env = onset_envelope(audio, sample_rate, fps)
    motion = motion_beat_signal(joints, len(joints))
    env = (env - env.mean()) / (env.std() + 1e-9)
    motion = (motion - motion.mean()) / (motion.std() + 1e-9)
    best, best_score = 0, -np.inf
    limit = int(round(max_offset * fps))
    for lag in range(-limit, limit + 1):
        a = env[max(lag, 0) :]
        m = motion[max(-lag, 0) :]
        n = min(len(a), len(m))
        if n < fps:  # less than a second of overlap
            continue
        score = float((a[:n] * m[:n]).mean())
        if score > best_score:
            best, best_score = lag, score
    return best, best_score


# ------------------------------------------------------------------------------- import


@dataclass
class ImportReport:
    """What was done to one dance."""

    name: str
    style: str
    frames: int
    slowdown: int
    offset_frames: int
    offset_seconds: float
    correlation: float
    scale: float
    notes: list[str]

    def line(self) -> str:
        extra = f"; {'; '.join(self.notes)}" if self.notes else ""
        return (f"{self.name}: {self.style}, {self.frames} frames, slow-down ×{self.slowdown} "
                f"undone, audio offset {self.offset_frames:+d} frames "
                f"({self.offset_seconds:+.2f} s, r={self.correlation:.2f}){extra}")  # fmt: skip


Imported = tuple[PerformanceMeta, dict[str, np.ndarray], np.ndarray, "ImportReport"]


def import_dance(folder: str | Path, fps: float = 25.0, sample_rate: int = 16000,
                 max_offset: float = 2.0, mirror: bool = False) -> Imported:  # fmt: skip
    """Read one ``DANCE_*_n`` folder and repair it: (meta, arrays, audio, report)."""
    from audiovis.media import read_audio

    folder = Path(folder)
    match = FOLDER.match(folder.name)
    if match is None:
        raise DataError(folder, "not a DANCE_<W|C|T|R>_<n> folder")
    style = STYLE_CODES[match.group(1)]
    skel, notes = read_skeletons(folder / "skeletons.json")
    start, end = read_config(folder / "config.json")
    wav = folder / "audio_extract.wav"
    music, _ = read_audio(wav, sample_rate)
    begin = round(start / fps * sample_rate)
    music = music[begin : round(end / fps * sample_rate)]
    music_frames = int(len(music) * fps / sample_rate)
    if music_frames < fps:
        raise DataError(wav, f"{len(music) / sample_rate:.2f} s of music between start_position "
                             f"{start} and end_position {end}: less than a second")  # fmt: skip
    try:
        slowdown = detect_slowdown(len(skel), end - start)
    except ValueError as err:
        raise DataError(folder / "skeletons.json", str(err)) from None
    joints = to_studio_joints(skel, mirror)
    joints = upright(joints)
    scale = metres_scale(joints)
    joints = joints * scale
    if slowdown > 1:
        joints = resample_motion(joints, slowdown)
    offset, corr = estimate_offset(music, sample_rate, joints, fps, max_offset)
    per_frame = sample_rate / fps
    # shift: music frame t + offset goes with motion frame t
    if offset >= 0:
        music = music[round(offset * per_frame) :]
    else:
        joints = joints[-offset:]
    frames = min(len(joints), int(len(music) / per_frame))
    if frames < fps:
        raise DataError(wav, f"after aligning (offset {offset} frames) music and motion overlap "
                             f"for {frames} frames, less than a second")  # fmt: skip
    if frames < len(joints):
        notes.append(f"music shorter than the motion: motion cropped to {frames} frames")
    joints = joints[:frames]
    music = music[: round(frames * per_frame)]
    pose3d = (joints - joints[:, J["pelvis"] : J["pelvis"] + 1]).astype(np.float32)
    meta = PerformanceMeta(
        name=f"{style}_{folder.name}",
        fps=fps,
        sample_rate=sample_rate,
        num_frames=frames,
        size=(256, 256),  # no frames are stored; the schema wants a size (the render's)
        streams=["instrument", "style", "performer"],
        instrument="dance",
        style=style,
        performer="music2dance",
        piece=folder.name,
        source="Music-to-Dance-Motion-Synthesis (Tang et al. 2018), imported by audiovis",
        licence="see the dataset's terms",
        extra={"slowdown": slowdown, "audio_offset_frames": offset, "scale_to_metres": scale},
    )
    report = ImportReport(meta.name, style, frames, slowdown, offset, offset / fps, corr, scale,
                          notes)  # fmt: skip
    return meta, {"pose3d": pose3d}, music, report


def import_music2dance(src: str | Path, out: str | Path, fps: float = 25.0,
                       sample_rate: int = 16000, max_offset: float = 2.0,
                       splits: dict[str, str] | None = None,
                       mirror: bool = False) -> list[ImportReport]:  # fmt: skip
    """Import every ``DANCE_*_n`` folder under ``src`` into a dataset root ``out``.

    Per style, the dances are sorted by number; the last goes to ``test``, the one before to
    ``val`` (with at least three of a style), the rest to ``train``; ``splits`` (folder name →
    split) overrides.

    Returns:
        one :class:`ImportReport` per dance (also written to ``out/import_report.json``).
    """
    src, out = Path(src), Path(out)
    folders = sorted((p for p in src.iterdir() if p.is_dir() and FOLDER.match(p.name)),
                     key=lambda p: (p.name[6], int(p.name.split("_")[2])))  # fmt: skip
    if not folders:
        raise DataError(src, "no DANCE_<W|C|T|R>_<n> folders")
    chosen = dict(splits or {})
    for code in STYLE_CODES:
        mine = [p.name for p in folders if p.name[6] == code]
        for i, name in enumerate(mine):
            default = ("test" if i == len(mine) - 1 and len(mine) >= 2 else
                       "val" if i == len(mine) - 2 and len(mine) >= 3 else "train")  # fmt: skip
            chosen.setdefault(name, default)
    entries, reports = [], []
    for folder in folders:
        meta, arrays, audio, report = import_dance(folder, fps, sample_rate, max_offset, mirror)
        write_performance(out, meta, arrays, audio)
        entries.append((meta, chosen[folder.name]))
        reports.append(report)
    write_manifest(out, entries, name=f"music2dance import of {src.name}")
    (out / "import_report.json").write_text(
        json.dumps([r.__dict__ for r in reports], indent=2) + "\n"
    )
    return reports


# ------------------------------------------------------------------------- DeepMimic clips

DEEPMIMIC_JOINTS: tuple[str, ...] = (
    "root", "chest", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle",
)  # fmt: skip
"""The 15 links of pybullet's DeepMimic humanoid (``humanoid/humanoid.urdf``), in link order."""

# a motion frame's joints in order, as (link index, values): a quaternion (w x y z) for the
# spherical joints, an angle for the hinges: chest, neck, right hip, knee, ankle, shoulder,
# elbow, then the left's
_DEEPMIMIC_LAYOUT: tuple[tuple[int, int], ...] = (
    (1, 4), (2, 4), (9, 4), (10, 1), (11, 4), (3, 4), (4, 1),
    (12, 4), (13, 1), (14, 4), (6, 4), (7, 1),
)  # fmt: skip


def deepmimic_clip_path(name: str = "humanoid3d_dance_a") -> Path:
    """A motion clip shipped with pybullet (``humanoid3d_dance_a``, ``_dance_b``, …)."""
    try:
        import pybullet_data
    except ImportError as err:
        from audiovis.errors import MissingDependency

        raise MissingDependency("reading DeepMimic clips needs pybullet: pip install "
                                "pybullet") from err  # fmt: skip
    path = Path(pybullet_data.getDataPath()) / "data" / "motions" / f"{name}.txt"
    if not path.is_file():
        raise DataError(path, "no such DeepMimic clip")
    return path


def read_deepmimic(path: str | Path, fps: float = 25.0) -> np.ndarray:
    """Joint positions of a DeepMimic clip by forward kinematics of pybullet's humanoid,
    resampled to ``fps``.

    A clip's frames are: duration, root position (3), root rotation (quaternion w x y z), then
    per joint a quaternion or a hinge angle. Positions are in the clip's units (metres, ``y``
    up), the root's path included.

    Shape:
        → (T, 15, 3) in :data:`DEEPMIMIC_JOINTS` order
    """
    import pybullet as pb
    import pybullet_data

    path = Path(path)
    try:
        frames = np.array(json.loads(path.read_text())["Frames"], np.float64)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(path, f"not a DeepMimic motion file ({err})") from None
    if frames.ndim != 2 or frames.shape[1] != 44:
        raise DataError(path, f"frames of {frames.shape[1:]} values, expected 44")
    client = pb.connect(pb.DIRECT)
    try:
        urdf = str(Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf")
        # the clips are in metres for the humanoid at a quarter of its URDF size (as pybullet's
        # DeepMimic environment loads it)
        body = pb.loadURDF(urdf, useFixedBase=False, globalScaling=0.25, physicsClientId=client)
        points = []
        for frame in frames:
            pos, q = frame[1:4], frame[4:8]
            pb.resetBasePositionAndOrientation(body, pos.tolist(), [q[1], q[2], q[3], q[0]],
                                               physicsClientId=client)  # fmt: skip
            k = 8
            for joint, size in _DEEPMIMIC_LAYOUT:
                v = frame[k : k + size]
                k += size
                if size == 4:
                    pb.resetJointStateMultiDof(body, joint, [v[1], v[2], v[3], v[0]],
                                               physicsClientId=client)  # fmt: skip
                else:
                    pb.resetJointState(body, joint, float(v[0]), physicsClientId=client)
            points.append([pb.getLinkState(body, i, computeForwardKinematics=True,
                                           physicsClientId=client)[4]
                           for i in range(len(DEEPMIMIC_JOINTS))])  # fmt: skip
    finally:
        pb.disconnect(client)
    joints = np.array(points, np.float64)  # (N, 15, 3) at the clip's own rate
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    t = np.arange(0.0, times[-1] + 1e-9, 1.0 / fps)
    flat = joints.reshape(len(joints), -1)
    out = np.stack([np.interp(t, times, flat[:, c]) for c in range(flat.shape[1])], -1)
    return out.reshape(len(t), 15, 3)


def deepmimic_to_studio(joints: np.ndarray) -> np.ndarray:
    """Place DeepMimic's 15 points in the studio's 23-joint layout (root-centred).

    The points it lacks are derived: spine and chest between the root and the chest point
    and neck, the head above the neck along the chest → neck direction, clavicles a quarter of
    the way from the neck to each shoulder, hands beyond the wrists along the forearm, hips
    beside the root, toes ahead of the ankles (the humanoid's feet are boxes; 0.14 m ahead in
    the horizontal facing direction).

    Shape:
        (T, 15, 3) → (T, 23, 3)
    """
    d = {name: joints[:, i] for i, name in enumerate(DEEPMIMIC_JOINTS)}
    out = np.zeros((len(joints), len(DANCE_JOINTS), 3))
    root, chest, neck = d["root"], d["chest"], d["neck"]
    out[:, J["pelvis"]] = root
    out[:, J["spine"]] = root + 0.5 * (chest - root)
    out[:, J["chest"]] = chest
    out[:, J["neck"]] = neck
    out[:, J["head"]] = neck + 0.6 * (neck - chest)
    left = d["left_hip"] - d["right_hip"]
    left[:, 1] = 0
    left /= np.linalg.norm(left, axis=-1, keepdims=True) + 1e-9
    forward = np.cross(left, np.array([0.0, 1.0, 0.0]))
    for side, name in (("l", "left"), ("r", "right")):
        out[:, J[f"{side}_clavicle"]] = neck + 0.25 * (d[f"{name}_shoulder"] - neck)
        out[:, J[f"{side}_shoulder"]] = d[f"{name}_shoulder"]
        out[:, J[f"{side}_elbow"]] = d[f"{name}_elbow"]
        out[:, J[f"{side}_wrist"]] = d[f"{name}_wrist"]
        out[:, J[f"{side}_hand"]] = d[f"{name}_wrist"] + 0.3 * (
            d[f"{name}_wrist"] - d[f"{name}_elbow"])  # fmt: skip
        out[:, J[f"{side}_hip"]] = d[f"{name}_hip"]
        out[:, J[f"{side}_knee"]] = d[f"{name}_knee"]
        out[:, J[f"{side}_ankle"]] = d[f"{name}_ankle"]
        out[:, J[f"{side}_toe"]] = d[f"{name}_ankle"] + 0.14 * forward - [0, 0.05, 0]
    return out - out[:, J["pelvis"] : J["pelvis"] + 1]


def summarise(reports: Iterable[ImportReport]) -> dict[str, Any]:
    """Counts of the repairs over an import, for a log line."""
    reports = list(reports)
    return {
        "dances": len(reports),
        "slowed_down": sum(r.slowdown > 1 for r in reports),
        "mean_abs_offset_s": float(np.mean([abs(r.offset_seconds) for r in reports]))
        if reports
        else 0.0,  # fmt: skip
    }
