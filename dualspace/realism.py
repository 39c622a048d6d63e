"""Realism, judged as an expert would: can a classifier tell generated outcomes from real ones (a C2ST), next to
the same classifier on real train vs real test at the same sizes (the floor: what a perfect copy of the training
data scores; ~0.5 for random splits, above 0.5 where held-out subjects differ)? `realism_gap = c2st - floor`.

Two classifiers, because each is blind where the other looks:
- `features`: gradient boosting on summary statistics chosen for the data kind (`summary_features`), each one a
  tell an expert checks first (listed with the functions below);
- `raw`: the raw values, as pixels for tiny images (gradient boosting on <= 1024 values) and through a small CNN
  for series and larger images, so a tell nobody thought of is still found.
Pooled ("all": every class with the same number of rows on both sides, so class frequencies tell nothing) and per
class (the pooled classifier's held-out accuracy on one class's rows). Every accuracy is cross-validated (each row
predicted by a classifier that never saw it) and comes with its Clopper-Pearson 95% interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .two_sample import C2ST, FitPredict, accuracy_interval, cross_predict

log = logging.getLogger("dualspace")

CLASSIFIERS = ("features", "raw")
COLUMNS = ["classifier", "class", "class_name", "n_fake", "n_real", "c2st", "c2st_low", "c2st_high", "floor",
           "floor_low", "floor_high", "realism_gap"]
RAW_PIXELS_MAX = 1024  # images with at most this many values go to gradient boosting as raw pixels, not a CNN


@dataclass
class RealismConfig:
    """Config section `realism`; plain types only."""

    folds: int = 5  # cross-validation folds of every C2ST
    min_rows: int = 10  # a class with fewer rows on a side gets no row
    classifiers: tuple[str, ...] = CLASSIFIERS  # which of "features", "raw"
    cnn_epochs: int = 30  # the raw classifier's CNN (series, larger images): epochs over the train fold ...
    cnn_max_steps: int = 400  # ... but at most this many AdamW steps (batch 64), so a large pooled set stays cheap
    cnn_width: int = 32  # channels of its first conv block

    def __post_init__(self):
        self.classifiers = tuple(self.classifiers)
        unknown = set(self.classifiers) - set(CLASSIFIERS)
        if unknown or not self.classifiers:
            raise ValueError(f"realism.classifiers: {list(self.classifiers)} must be a non-empty subset of "
                             f"{list(CLASSIFIERS)}")
        for key in ("folds", "min_rows", "cnn_epochs", "cnn_max_steps", "cnn_width"):
            if getattr(self, key) < (2 if key == "folds" else 1):
                raise ValueError(f"realism.{key} must be >= {2 if key == 'folds' else 1}, got {getattr(self, key)}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "RealismConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"realism: unknown key(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)


# -- summary features -----------------------------------------------------------------------------------------
def image_features(x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N, C, H, W) in [-1, 1] -> (N, F) per image, per channel:
    - mean, std: overall ink and contrast;
    - share of pixels within 0.05 of -1 and of +1: a flat background and saturated strokes, which a blurry or
      noisy generator misses;
    - a 8-bin histogram of values: the grey-level distribution (values off the data's grid, washed-out mid-tones);
    - mean |horizontal| and |vertical| differences and the mean squared Laplacian: edge sharpness and
      pixel-level noise;
    - the intensity centroid (row, column) and its spread: where the shape sits and how big it is."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    cols, names = [], []
    rows, colsg = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
    edges = np.linspace(-1.0, 1.0, 9)
    for c in range(C):
        v = x[:, c]
        flat = v.reshape(N, -1)
        feats = {"mean": flat.mean(1), "std": flat.std(1), "dark": (flat < -0.95).mean(1),
                 "bright": (flat > 0.95).mean(1)}
        hist = np.stack([np.histogram(row, bins=edges)[0] for row in np.clip(flat, -1, 1)]) / flat.shape[1]
        feats.update({f"hist{k}": hist[:, k] for k in range(hist.shape[1])})
        feats["grad_h"] = np.abs(np.diff(v, axis=2)).mean((1, 2)) if W > 1 else np.zeros(N)
        feats["grad_v"] = np.abs(np.diff(v, axis=1)).mean((1, 2)) if H > 1 else np.zeros(N)
        if H > 2 and W > 2:
            lap = v[:, 1:-1, :-2] + v[:, 1:-1, 2:] + v[:, :-2, 1:-1] + v[:, 2:, 1:-1] - 4 * v[:, 1:-1, 1:-1]
            feats["laplacian2"] = (lap ** 2).mean((1, 2))
        w = v - v.min(axis=(1, 2), keepdims=True)  # intensity weights >= 0
        total = w.sum((1, 2)) + 1e-12
        r0, c0 = (w * rows).sum((1, 2)) / total, (w * colsg).sum((1, 2)) / total
        feats.update({"centroid_row": r0, "centroid_col": c0,
                      "spread": np.sqrt((w * ((rows - r0[:, None, None]) ** 2
                                              + (colsg - c0[:, None, None]) ** 2)).sum((1, 2)) / total)})
        for k, f in feats.items():
            cols.append(f)
            names.append(f"ch{c}.{k}")
    return np.stack(cols, axis=1), names


def series_features(x: np.ndarray, margin: int = 5) -> tuple[np.ndarray, list[str]]:
    """(N, C, T) -> (N, F) per window, per channel:
    - mean: the window's level (posture, gravity direction for accelerometers): the slow variation between
      windows that a generator deciding it in its first steps collapses to the class mean;
    - std and range (max - min): amplitude;
    - log10 power in the low (< 1/8 of Nyquist) and high (> 5/8) bands of the de-meaned window: slow drift vs
      residual noise;
    - lag-1 autocorrelation: smoothness;
    - edge ratio: mean |x - median| at the first and last sample over the interior's: spikes at a window's ends."""
    x = np.asarray(x, np.float64)
    N, C, T = x.shape
    centred = x - x.mean(axis=-1, keepdims=True)
    hann = np.hanning(T + 1)[:-1]
    power = np.abs(np.fft.rfft(centred * hann, axis=-1)) ** 2 / (hann ** 2).sum()  # (N, C, T//2 + 1)
    freq = np.linspace(0.0, 1.0, power.shape[-1])  # fraction of Nyquist
    low = power[..., (freq > 0) & (freq < 0.125)].sum(-1)
    high = power[..., freq > 0.625].sum(-1)
    var = (centred ** 2).sum(-1)
    ac1 = np.where(var > 0, (centred[..., :-1] * centred[..., 1:]).sum(-1) / np.maximum(var, 1e-300), 0.0)
    dev = np.abs(x - np.median(x, axis=-1, keepdims=True))
    edge = dev[..., [0, T - 1]].mean(-1) / (dev[..., margin:T - margin].mean(-1) + 1e-12)
    per = {"mean": x.mean(-1), "std": x.std(-1), "range": x.max(-1) - x.min(-1),
           "log_low": np.log10(low + 1e-12), "log_high": np.log10(high + 1e-12), "ac1": ac1, "edge": edge}
    cols, names = [], []
    for c in range(C):
        for k, f in per.items():
            cols.append(f[:, c])
            names.append(f"ch{c}.{k}")
    return np.stack(cols, axis=1), names


def summary_features(x: np.ndarray, kind: str) -> tuple[np.ndarray, list[str]]:
    """The summary features of the data kind ("image" (N, C, H, W) or "series" (N, C, T))."""
    if kind == "image":
        return image_features(x)
    if kind == "series":
        return series_features(x)
    raise ValueError(f"realism: no summary features for data kind '{kind}' (image, series)")


# -- raw-value classifier --------------------------------------------------------------------------------------
def small_cnn(channels: int, dims: int, width: int = 32):
    """Three conv blocks (conv, GELU, max-pool x2), mean and std pooled over positions, one logit; 1-D or 2-D."""
    import torch
    from torch import nn

    conv, pool = (nn.Conv1d, nn.MaxPool1d) if dims == 1 else (nn.Conv2d, nn.MaxPool2d)

    class MeanStdPool(nn.Module):
        """(B, F, *) -> (B, 2F): mean and std over positions (the std keeps amplitude, the mean the level)."""

        def forward(self, h):
            h = h.flatten(2)
            return torch.cat([h.mean(-1), h.std(-1)], dim=1)

    return nn.Sequential(conv(channels, width, 5, padding=2), nn.GELU(), pool(2),
                         conv(width, 2 * width, 5, padding=2), nn.GELU(), pool(2),
                         conv(2 * width, 2 * width, 3, padding=1), nn.GELU(),
                         MeanStdPool(), nn.Linear(4 * width, 1))


def cnn_fit_predict(epochs: int = 30, max_steps: int = 400, batch_size: int = 64, lr: float = 2e-3,
                    width: int = 32) -> FitPredict:
    """`small_cnn` as a C2ST classifier on raw rows (N, C, T) or (N, C, H, W), trained with AdamW on the train
    fold for `epochs` (at most `max_steps` steps); inputs standardised per channel with the train fold's
    statistics only."""

    def fit_predict(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, seed: int) -> np.ndarray:
        import torch

        axes = (0, *range(2, X.ndim))
        mean, std = X.mean(axis=axes, keepdims=True), X.std(axis=axes, keepdims=True) + 1e-6
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        net = small_cnn(X.shape[1], X.ndim - 2, width)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        xt = torch.as_tensor((X - mean) / std, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)
        net.train()
        batches = [idx for _ in range(epochs) for idx in torch.randperm(len(xt), generator=g).split(batch_size)]
        for idx in batches[:max_steps]:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt[idx]).squeeze(1), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            logits = net(torch.as_tensor((X_test - mean) / std, dtype=torch.float32)).squeeze(1)
        return (logits > 0).numpy().astype(y.dtype)

    return fit_predict


def raw_view(x: np.ndarray, kind: str, cfg: RealismConfig | None = None) -> tuple[np.ndarray, FitPredict | None]:
    """What the raw classifier sees and which classifier: tiny images as pixel rows for gradient boosting (None),
    series and larger images as arrays for the CNN."""
    if kind == "image" and int(np.prod(x.shape[1:])) <= RAW_PIXELS_MAX:
        return x.reshape(len(x), -1), None
    cfg = cfg or RealismConfig()
    return x, cnn_fit_predict(cfg.cnn_epochs, cfg.cnn_max_steps, width=cfg.cnn_width)


# -- the table -------------------------------------------------------------------------------------------------
def _view(x: np.ndarray, kind: str, classifier: str, cfg: RealismConfig) -> tuple[np.ndarray, FitPredict | None]:
    if classifier == "features":
        return summary_features(x, kind)[0], None
    if classifier == "raw":
        return raw_view(x, kind, cfg)
    raise ValueError(f"realism: unknown classifier '{classifier}' ({', '.join(CLASSIFIERS)})")


def _balanced(label: np.ndarray, per_class: Mapping[int, int], rng: np.random.Generator) -> np.ndarray:
    """Sorted indices: per_class[c] rows of each class c, drawn without replacement."""
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(label == c), n, replace=False)
                                   for c, n in per_class.items()]))


def realism_table(fake: np.ndarray, fake_label: np.ndarray, test: np.ndarray, test_label: np.ndarray,
                  train: np.ndarray, train_label: np.ndarray, kind: str, class_names: Sequence[str],
                  seed: int = 0, cfg: RealismConfig | None = None) -> list[dict[str, Any]]:
    """Rows of COLUMNS: per classifier, the C2ST of generated rows `fake` against real `test` rows and the floor
    (real `train` against the same `test` rows), pooled ("all") and per class.

    Each class c contributes m_c = min(#fake, #test, #train of class c) rows to every side, so both sides of a
    comparison hold the same classes in the same numbers. One classifier per comparison is cross-validated on
    the pooled rows; a class's row is its held-out accuracy on that class's rows (chance: 0.5). A class with fewer
    than `cfg.min_rows` rows on a side is left out."""
    cfg = cfg or RealismConfig()
    folds = cfg.folds
    rng = np.random.default_rng(seed)
    per_class = {}
    for c in range(len(class_names)):
        m = min(int((fake_label == c).sum()), int((test_label == c).sum()), int((train_label == c).sum()))
        if m >= max(cfg.min_rows, folds):
            per_class[c] = m
    if not per_class:
        raise ValueError(f"realism: no class has {max(cfg.min_rows, folds)} rows in the drafts, the test and the "
                         "train split; more drafts (regions.K) or a larger split")
    picked = {}  # the same number of rows of each class on every side
    for name, data, label in (("fake", fake, fake_label), ("test", test, test_label), ("train", train, train_label)):
        rows_of = _balanced(label, per_class, rng)
        picked[name] = (data[rows_of], label[rows_of])
    groups = [(c, class_names[c]) for c in per_class] + [("all", "all")]
    rows = []
    for clf in cfg.classifiers:
        views = {name: _view(x, kind, clf, cfg) for name, (x, _) in picked.items()}
        fit_predict = views["test"][1]
        result: dict[str, dict[Any, C2ST]] = {}
        for comparison, other in (("c2st", "fake"), ("floor", "train")):
            X = np.concatenate([views["test"][0], views[other][0]])
            y = np.repeat([1, 0], [len(views["test"][0]), len(views[other][0])])
            cls = np.concatenate([picked["test"][1], picked[other][1]])
            pred = cross_predict(X, y, seed, folds, fit_predict)
            result[comparison] = {c: accuracy_interval(int((pred == y)[sel].sum()), int(sel.sum()), folds)
                                  for c, _ in groups for sel in [cls == c if c != "all" else np.ones(len(y), bool)]}
        for c, cname in groups:
            a, b = result["c2st"][c], result["floor"][c]
            rows.append({"classifier": clf, "class": c, "class_name": cname, "n_fake": a.n // 2, "n_real": a.n // 2,
                         "c2st": a.accuracy, "c2st_low": a.low, "c2st_high": a.high, "floor": b.accuracy,
                         "floor_low": b.low, "floor_high": b.high, "realism_gap": a.accuracy - b.accuracy})
            log.info("realism %s class %s: c2st %.3f [%.3f, %.3f], floor %.3f, gap %+.3f", clf, cname, a.accuracy,
                     a.low, a.high, b.accuracy, a.accuracy - b.accuracy)
    return rows


def realism_frame(fake: np.ndarray, fake_label: np.ndarray, test: np.ndarray, test_label: np.ndarray,
                  train: np.ndarray, train_label: np.ndarray, kind: str, class_names: Sequence[str], seed: int,
                  cfg: RealismConfig, threads: int = 1, **columns: Any):
    """`realism_table` as a DataFrame with `columns` (dataset, family, generation, ...) first; the boosting's
    OpenMP threads held to `threads` (more than a job's cores thrash)."""
    import pandas as pd
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        rows = realism_table(fake, fake_label, test, test_label, train, train_label, kind, class_names, seed, cfg)
    df = pd.DataFrame(rows)
    for i, (key, value) in enumerate(columns.items()):
        df.insert(i, key, value)
    return df


__all__ = ["CLASSIFIERS", "COLUMNS", "RealismConfig", "cnn_fit_predict", "image_features", "raw_view", "realism_frame",
           "realism_table",
           "series_features", "small_cnn", "summary_features"]
