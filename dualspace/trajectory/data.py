"""Recorded human mouse paths: load and validate them, turn them into padded (dx, dy, dt) steps with a goal
condition, split them by seed, and normalise the geometry with train statistics.

The default source is `trajectories.json.gz` of the PyPI package `cursory` (2.1.0, LGPL-3.0): a JSON list of
records {"points": [[x, y], ...] (px), "timing": [t, ...] (ms, one per point), "start": [x, y], "end": [x, y],
"length": arc length (px), "dx", "dy"}. Only points and timing are required; start and end are checked when
present. "length", "dx" and "dy" are ignored (in the package, "dx"/"dy" are end - start for records 0-1068 but
the list [end - start] in both keys for records 1069 onwards).
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.base import DataMissingError, one_hot, random_partition
from ..io import package_dir, sha256_file

CURSORY_PACKAGE = "cursory"
CURSORY_FILE = "trajectories.json.gz"
ON_BAD = ("skip", "refuse")

DISPLACEMENT_SCALE_PX = 1000.0  # goal displacement and distance are divided by this: cursory's straight-line
#                                 distances run from 59 to 2406 px (median 665), so the condition stays O(1)
N_OCTANTS = 8
COND_COLUMNS = ["goal_dx", "goal_dy", "distance"] + [f"octant_{k}" for k in range(N_OCTANTS)]
STD_FLOOR = 1e-3  # smallest std of a geometry channel, so a constant channel never divides by ~0


def cursory_path() -> Path:
    """Where the installed `cursory` package keeps trajectories.json.gz, found without importing the package."""
    missing = ("the PyPI package 'cursory' is not installed; `pip install cursory==2.1.0`, or pass the path of your "
               "own recordings in the same JSON shape")
    return package_dir(CURSORY_PACKAGE, missing, DataMissingError) / CURSORY_FILE


@dataclass
class Record:
    """One validated path: its points and timestamps, and where it sits in the source file."""

    index: int  # position of the record in the source file's list
    points: np.ndarray  # (n, 2) float64 px, n >= 3
    timing: np.ndarray  # (n,) float64 ms, strictly increasing
    start: np.ndarray  # (2,) float64 px: the record's "start", or points[0] when absent
    end: np.ndarray  # (2,) float64 px: the record's "end", or points[-1] when absent

    @property
    def n_steps(self) -> int:
        """Number of (dx, dy, dt) steps: one fewer than the points."""
        return len(self.points) - 1


@dataclass
class LoadReport:
    """What `load_records` read: how many records, and each bad one by its index with what is wrong."""

    path: str
    sha256: str  # of the file as read, for provenance
    n_total: int
    n_loaded: int
    bad: list[tuple[int, str]] = field(default_factory=list)  # (record index, problem)

    @property
    def n_bad(self) -> int:
        return len(self.bad)


def _vector(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """`value` as a finite float64 array of `shape` (-1 = any length); ValueError saying what is wrong."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"'{what}' is not numeric of shape {shape}") from None
    if arr.ndim != len(shape) or any(s != -1 and s != a for s, a in zip(shape, arr.shape)):
        raise ValueError(f"'{what}' has shape {arr.shape}, expected {shape} (-1 = any)")
    bad = np.flatnonzero(~np.isfinite(arr).reshape(len(arr), -1).all(axis=1)) if arr.size else []
    if len(bad):
        raise ValueError(f"'{what}' is not finite at position {int(bad[0])}")
    return arr


def check_record(raw: Any, index: int) -> Record:
    """A validated Record from one raw JSON record; ValueError saying what is wrong with it."""
    if not isinstance(raw, dict):
        raise ValueError(f"is a {type(raw).__name__}, expected an object with 'points' and 'timing'")
    for key in ("points", "timing"):
        if key not in raw:
            raise ValueError(f"has no '{key}'")
    points = _vector(raw["points"], (-1, 2), "points")
    timing = _vector(raw["timing"], (-1,), "timing")
    if len(points) < 3:
        raise ValueError(f"has {len(points)} points, at least 3 are needed")
    if len(timing) != len(points):
        raise ValueError(f"has {len(points)} points but {len(timing)} timestamps")
    dt = np.diff(timing)
    if (dt <= 0).any():
        k = int(np.flatnonzero(dt <= 0)[0])
        raise ValueError(f"timing is not strictly increasing at point {k + 1} ({timing[k]:g} -> {timing[k + 1]:g} ms)")
    start = _vector(raw["start"], (2,), "start") if "start" in raw else points[0].copy()
    end = _vector(raw["end"], (2,), "end") if "end" in raw else points[-1].copy()
    return Record(index, points, timing, start, end)


def read_json(path: Path) -> Any:
    """The parsed JSON of `path`, gzip-compressed or not (told apart by the gzip magic bytes)."""
    if not path.is_file():
        raise DataMissingError(f"trajectory file {path} not found; pass a JSON or JSON.gz list of records "
                               "with 'points' and 'timing', or install cursory for the default data")
    blob = path.read_bytes()
    try:
        return json.loads(gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not readable as JSON / gzip-compressed JSON ({e})") from None


def load_records(path: str | Path | None = None, on_bad: str = "skip") -> tuple[list[Record], LoadReport]:
    """Read and validate every record of `path` (default: cursory's trajectories.json.gz).

    A bad record (timing not strictly increasing, non-finite points, fewer than 3 points, len(points) !=
    len(timing), malformed fields) is skipped and listed in the report (on_bad="skip") or stops the load with
    a ValueError naming the file, the record index and the problem (on_bad="refuse").
    """
    if on_bad not in ON_BAD:
        raise ValueError(f"on_bad must be one of {ON_BAD}, got {on_bad!r}")
    path = cursory_path() if path is None else Path(path)
    raw = read_json(path)
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of records, found a {type(raw).__name__}")
    records, bad = [], []
    for i, item in enumerate(raw):
        try:
            records.append(check_record(item, i))
        except ValueError as e:
            if on_bad == "refuse":
                raise ValueError(f"{path}: record {i} {e} (on_bad='skip' leaves it out)") from None
            bad.append((i, str(e)))
    return records, LoadReport(str(path), sha256_file(path), len(raw), len(records), bad)


def choose_T(lengths: Sequence[int] | np.ndarray, coverage: float = 0.99) -> int:
    """The smallest T such that a share >= `coverage` of the paths have at most T steps."""
    lengths = np.sort(np.asarray(lengths, dtype=np.int64))
    if not len(lengths):
        raise ValueError("choose_T needs at least one path length")
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must lie in (0, 1], got {coverage}")
    return int(lengths[math.ceil(coverage * len(lengths)) - 1])


def octant(displacement: np.ndarray) -> np.ndarray:
    """(N, 2) displacements -> (N,) int64 octant k: the angle atan2(dy, dx) lies in [45k, 45(k+1)) degrees.

    Pixel coordinates have y pointing down, so increasing k turns clockwise on screen. Comparisons instead of
    atan2 keep exact diagonals (dx = dy) on their boundary; a zero displacement is octant 0.
    """
    x, y = np.asarray(displacement, dtype=np.float64).reshape(-1, 2).T
    # quadrant q covers [90q, 90(q+1)) degrees; `upper`: the angle lies in its second half
    quadrant = np.select([(x > 0) & (y >= 0), (x <= 0) & (y > 0), (x < 0) & (y <= 0), (x >= 0) & (y < 0)],
                         [0, 1, 2, 3], default=0)
    upper = np.choose(quadrant, [y >= x, -x >= y, y <= x, x >= -y]) & ((x != 0) | (y != 0))
    return (2 * quadrant + upper).astype(np.int64)


@dataclass
class Steps:
    """Paths as fixed-length step sequences with their goal condition; row i is records[index[i]]."""

    steps: np.ndarray  # (N, T, 3) float32 (dx px, dy px, dt ms), zero on padding
    mask: np.ndarray  # (N, T) bool, True on a path's steps (a prefix of each row)
    start: np.ndarray  # (N, 2) float64 px, where the steps start
    end: np.ndarray  # (N, 2) float64 px, the goal
    t0: np.ndarray  # (N,) float64 ms, the first timestamp (timing = t0 + cumsum(dt))
    cond: np.ndarray  # (N, 11) float32: goal displacement / scale, distance / scale, one-hot octant (COND_COLUMNS)
    octant: np.ndarray  # (N,) int64 in 0..7, the class label
    distance: np.ndarray  # (N,) float64 px, straight-line distance |end - start|
    index: np.ndarray  # (N,) int64 position in `records` of each kept path
    dropped: np.ndarray  # (M,) int64 positions in `records` of the paths longer than T
    scale: float  # the displacement scale used in cond


def to_steps(records: Sequence[Record], T: int, anchor: str = "points", scale: float = DISPLACEMENT_SCALE_PX) -> Steps:
    """Consecutive differences of points and times, padded to T steps with a mask; longer paths are dropped.

    anchor="points": start = points[0], end = points[-1], so the steps sum exactly to end - start.
    anchor="record": the record's own start/end, so the goal condition is the recorded target rather than where
    the path went (cursory's start differs from points[0] in 849 of its 2,356 records, by up to 67 px; its end
    matches points[-1] within 0.71 px).
    """
    if anchor not in ("points", "record"):
        raise ValueError(f"anchor must be 'points' or 'record', got {anchor!r}")
    if T < 1 or scale <= 0:
        raise ValueError(f"need T >= 1 and scale > 0, got T={T}, scale={scale}")
    n_steps = np.array([r.n_steps for r in records], dtype=np.int64)
    keep = np.flatnonzero(n_steps <= T)
    if not len(keep):
        shortest = f"the shortest of the {len(records)} paths has {n_steps.min()} steps" if len(records) else "no paths"
        raise ValueError(f"T={T} keeps no path ({shortest}); pick T with choose_T(lengths, coverage)")
    steps = np.zeros((len(keep), T, 3), dtype=np.float32)
    mask = np.arange(T)[None, :] < n_steps[keep, None]  # (N, T)
    for row, i in enumerate(keep):
        r = records[i]
        steps[row, : r.n_steps, :2] = np.diff(r.points, axis=0)
        steps[row, : r.n_steps, 2] = np.diff(r.timing)
    kept = [records[i] for i in keep]
    if anchor == "points":
        start = np.array([r.points[0] for r in kept]).reshape(-1, 2)
        end = np.array([r.points[-1] for r in kept]).reshape(-1, 2)
    else:
        start = np.array([r.start for r in kept]).reshape(-1, 2)
        end = np.array([r.end for r in kept]).reshape(-1, 2)
    goal = end - start  # (N, 2)
    distance = np.hypot(goal[:, 0], goal[:, 1])
    octants = octant(goal)
    cond = np.concatenate([goal / scale, distance[:, None] / scale, one_hot(octants, N_OCTANTS)], axis=1)
    t0 = np.array([r.timing[0] for r in kept], dtype=np.float64)
    return Steps(steps, mask, start, end, t0, cond.astype(np.float32), octants, distance,
                 keep.astype(np.int64), np.flatnonzero(n_steps > T).astype(np.int64), float(scale))


def split_indices(n: int, seed: int, fractions: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """Disjoint sorted index sets covering range(n), one per named split, drawn at random from `seed`.

    Default fractions {"train": 0.8, "val": 0.1, "test": 0.1}; every split but the last gets round(n * f)
    examples, the last takes the rest.
    """
    fractions = dict(fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
    if any(f <= 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"split fractions must be positive and sum to 1, got {fractions}")
    sizes = [int(round(n * f)) for f in list(fractions.values())[:-1]]
    parts = random_partition(n, sizes, np.random.default_rng(seed))
    return dict(zip(fractions, parts))


@dataclass
class GeometryStats:
    """Per-channel mean and std of (dx, dy) over the train split's steps; what normalises the geometry."""

    mean: np.ndarray  # (2,) float64 px
    std: np.ndarray  # (2,) float64 px, floored at STD_FLOOR

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form, for the stats file every run reuses."""
        return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Sequence[float]]) -> "GeometryStats":
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "GeometryStats":
        return cls.from_dict(json.loads(Path(path).read_text()))


def geometry_stats(steps: np.ndarray, mask: np.ndarray, channels: int = 2) -> GeometryStats:
    """Mean and std of the first `channels` channels of `steps` (N, T, >=channels) over the steps where `mask`
    (N, T) is True: (dx, dy) for the geometry, (dx, dy, dt) for the joint baseline's one normalisation.

    Pass the train split only: val and test never enter the normalisation.
    """
    mask = np.asarray(mask, dtype=bool)
    if steps.shape[:2] != mask.shape:
        raise ValueError(f"steps {steps.shape} and mask {mask.shape} disagree in (N, T)")
    active = np.asarray(steps, dtype=np.float64)[mask][:, :channels]  # (n_active, channels)
    if not len(active):
        raise ValueError("geometry_stats: the mask selects no step")
    return GeometryStats(active.mean(axis=0), np.maximum(active.std(axis=0), STD_FLOOR))


def normalise_geometry(steps: np.ndarray, mask: np.ndarray, stats: GeometryStats) -> np.ndarray:
    """(N, T, >=C) steps -> (N, T, C) float32 z-scored with the C channels of `stats` ((dx, dy), or (dx, dy, dt)
    for the joint baseline), zero on padding: what the diffusion model sees."""
    z = (np.asarray(steps, dtype=np.float64)[..., : len(stats.mean)] - stats.mean) / stats.std
    return np.where(np.asarray(mask, dtype=bool)[..., None], z, 0.0).astype(np.float32)
