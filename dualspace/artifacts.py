"""The dual-space artifacts as files, each written and read in one place, each read checked:

- pairs     results/{ds}/pairs/{split}.h5      e = g(c), y = PCA(phi(x)), label     (rule dump_pairs)
- pair scores  results/{ds}/conformal/scores_{split}.h5  score = -log p(y | e), label (rule score_pairs)
- samples   results/{ds}/drafts/samples.h5     x, label: the K drafts per class      (rule sample_drafts)
- scores    results/{ds}/drafts/scores.h5      phi, y, score = -log p(y | e), label  (rule score_drafts)
- region    results/{ds}/regions/alpha{a}/region.h5  accepted drafts + representatives (rule select_region)

(The split files are in `data.files`, the threshold tables in `conformal.ThresholdTable`.) A file that is
damaged, truncated or from another dataset is named where it is read, with the command that rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import existing_file, read_h5, read_h5_attrs, write_h5

__all__ = ["ArtifactError", "Pairs", "PairScores", "DraftSamples", "DraftScores", "Region"]


class ArtifactError(ValueError):
    """An artifact file whose contents disagree with its attributes or with what the reader expects."""


def _read(path: str | Path, names: list[str], what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = existing_file(path, what)
    try:
        return read_h5(path, names), read_h5_attrs(path)
    except (OSError, KeyError) as e:
        raise ArtifactError(f"{what} {path} is damaged ({e}); delete it and rerun `snakemake {path}`") from None


def _check(path: str | Path, what: str, arrays: dict[str, np.ndarray], attrs: dict[str, Any],
           dataset: str | None, widths: dict[str, int | None]) -> None:
    """Equal row counts, finite floats, labels in range, the dataset and the widths expected."""
    problems = []
    if dataset is not None and attrs.get("dataset") != dataset:
        problems.append(f"it belongs to dataset '{attrs.get('dataset')}', but '{dataset}' is expected here")
    n = {len(a) for a in arrays.values()}
    if len(n) > 1:
        problems.append(f"its arrays have different lengths {({k: len(a) for k, a in arrays.items()})}")
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            problems.append(f"'{name}' holds NaN or inf")
    label, k = arrays.get("label"), attrs.get("n_classes")
    if label is not None and k is not None and len(label) and (label.min() < 0 or label.max() >= int(k)):
        problems.append(f"labels lie outside [0, {k})")
    for name, want in widths.items():
        if want is not None and not problems and arrays[name].shape[1] != want:
            problems.append(f"'{name}' has width {arrays[name].shape[1]}, expected {want}")
    if problems:
        raise ArtifactError(f"{what} {path}: " + "; ".join(problems) + f". Delete it and rerun `snakemake {path}`")


@dataclass
class Pairs:
    """(e, y, label) of one split: the MDN's training data (train) and the conformal scores' inputs."""

    e: np.ndarray  # (N, cond_dim) float32
    y: np.ndarray  # (N, d) float32 whitened PCA coordinates of phi(x)
    label: np.ndarray  # (N,) int64
    attrs: dict[str, Any] = field(default_factory=dict)  # dataset, split, n_classes, provenance

    def write(self, path: str | Path) -> None:
        write_h5(path, {"e": self.e, "y": self.y, "label": self.label}, self.attrs)

    @classmethod
    def read(cls, path: str | Path, dataset: str | None = None, y_dim: int | None = None,
             cond_dim: int | None = None) -> "Pairs":
        arrays, attrs = _read(path, ["e", "y", "label"], "pair dump")
        _check(path, "pair dump", arrays, attrs, dataset, {"y": y_dim, "e": cond_dim})
        return cls(arrays["e"], arrays["y"], arrays["label"], attrs)


@dataclass
class PairScores:
    """Nonconformity scores of one split's pairs under the MDN, computed once: every alpha's thresholds (calib)
    and metrics (calib, test) read them without loading the MDN."""

    score: np.ndarray  # (N,) float64, -log p(y | e)
    label: np.ndarray  # (N,) int64
    attrs: dict[str, Any] = field(default_factory=dict)  # dataset, split, n_classes

    def write(self, path: str | Path) -> None:
        write_h5(path, {"score": self.score, "label": self.label}, self.attrs)

    @classmethod
    def read(cls, path: str | Path, dataset: str | None = None, split: str | None = None) -> "PairScores":
        arrays, attrs = _read(path, ["score", "label"], "pair scores")
        _check(path, "pair scores", arrays, attrs, dataset, {})
        if split is not None and attrs.get("split") != split:
            raise ArtifactError(f"pair scores {path} score the '{attrs.get('split')}' split, but '{split}' is expected "
                                f"here. Delete it and rerun `snakemake {path}`")
        return cls(arrays["score"], arrays["label"], attrs)


@dataclass
class DraftSamples:
    """K drafts per class from the generator, before any scoring."""

    x: np.ndarray  # (N, *shape) float32 in data space
    label: np.ndarray  # (N,) int64
    attrs: dict[str, Any] = field(default_factory=dict)  # dataset, K, seed, sampler, class_names, channel_names

    def write(self, path: str | Path) -> None:
        write_h5(path, {"x": self.x, "label": self.label}, self.attrs)

    @classmethod
    def read(cls, path: str | Path, dataset: str | None = None) -> "DraftSamples":
        arrays, attrs = _read(path, ["x", "label"], "draft samples")
        _check(path, "draft samples", arrays, attrs, dataset, {})
        return cls(arrays["x"], arrays["label"], attrs)


@dataclass
class DraftScores:
    """The drafts in the dual space: features, PCA coordinates, nonconformity scores (row i = draft i)."""

    phi: np.ndarray  # (N, D_phi) raw features
    y: np.ndarray  # (N, d)
    score: np.ndarray  # (N,) float64, -log p(y | g(c))
    label: np.ndarray  # (N,) int64, equal to the samples' labels
    class_e: np.ndarray  # (C, cond_dim) e = g(c) of every class (the MDN's conditions, for region volumes)
    attrs: dict[str, Any] = field(default_factory=dict)

    def write(self, path: str | Path) -> None:
        write_h5(path, {"phi": self.phi, "y": self.y, "score": self.score, "label": self.label,
                        "class_embedding": self.class_e}, self.attrs)

    @classmethod
    def read(cls, path: str | Path, dataset: str | None = None, samples: DraftSamples | None = None) -> "DraftScores":
        """Read the scores; with `samples`, check that they score exactly those drafts."""
        arrays, attrs = _read(path, ["phi", "y", "score", "label", "class_embedding"], "draft scores")
        class_e = arrays.pop("class_embedding")
        _check(path, "draft scores", arrays, attrs, dataset, {})
        if samples is not None and not np.array_equal(arrays["label"], samples.label):
            raise ArtifactError(f"draft scores {path} do not score the drafts they are read with (labels differ); "
                                f"delete it and rerun `snakemake {path}`")
        return cls(arrays["phi"], arrays["y"], arrays["score"], arrays["label"], class_e, attrs)


@dataclass
class Region:
    """The accepted drafts of one alpha and the representatives picked among them."""

    accepted_index: np.ndarray  # (A,) int64 indices into the drafts
    representative_index: np.ndarray  # (R,) int64 indices into the drafts, grouped by class
    attrs: dict[str, Any] = field(default_factory=dict)  # alpha, dataset, class_names, m_requested, m_used

    def write(self, path: str | Path, samples: DraftSamples, scores: DraftScores) -> None:
        """Indices plus the accepted drafts' arrays, so the file is readable on its own."""
        ok, rep = self.accepted_index, self.representative_index
        write_h5(path, {"accepted_index": ok, "x": samples.x[ok], "phi": scores.phi[ok], "y": scores.y[ok],
                        "score": scores.score[ok], "label": samples.label[ok], "representative_index": rep,
                        "representative_x": samples.x[rep], "representative_label": samples.label[rep]}, self.attrs)

    @classmethod
    def read(cls, path: str | Path, dataset: str | None = None) -> "Region":
        arrays, attrs = _read(path, ["accepted_index", "representative_index"], "region")
        _check(path, "region", {"accepted_index": arrays["accepted_index"]}, attrs, dataset, {})
        return cls(arrays["accepted_index"], arrays["representative_index"], attrs)
