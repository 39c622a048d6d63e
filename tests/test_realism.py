"""The realism measure: C2ST of generated vs real rows beside the floor (real train vs real test), two classifiers,
per class and pooled, Clopper-Pearson intervals, and no classifier scoring a row it was fitted on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dualspace.realism import COLUMNS, RealismConfig, image_features, realism_table, series_features
from dualspace.two_sample import c2st


def series(n, shift=0.0, seed=0, C=2, T=32):
    """(n, C, T) smooth random walks plus white noise; `shift` moves every window's level."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.3, (n, C, T)), axis=-1)
    return walk + rng.normal(0, 0.5, (n, C, T)) + rng.normal(0, 1.0, (n, C, 1)) + shift


def labelled(make, n_per_class, seed, **kw):
    xs = [make(n_per_class, seed=seed + 10 * c, **kw) + 0.5 * c for c in range(2)]
    return np.concatenate(xs), np.repeat(np.arange(2), n_per_class)


def _interval(k, n):
    low = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return low, high


def test_identical_sets_score_near_chance_and_a_shifted_set_is_told_apart():
    test, tl = labelled(series, 80, seed=1)
    train, rl = labelled(series, 80, seed=2)
    same, sl = labelled(series, 80, seed=3)
    rows = realism_table(same, sl, test, tl, train, rl, "series", ["a", "b"], seed=0)
    assert [list(r) for r in rows] == [COLUMNS] * len(rows) and len(rows) == 2 * 3  # 2 classifiers x (2 + all)
    for r in rows:
        assert r["c2st_low"] <= 0.5 <= r["c2st_high"] or r["c2st"] < 0.62, r
        assert r["floor_low"] <= 0.5 <= r["floor_high"] or r["floor"] < 0.62, r
        assert r["realism_gap"] == pytest.approx(r["c2st"] - r["floor"])
    shifted, fl = labelled(series, 80, seed=3, shift=3.0)
    for r in realism_table(shifted, fl, test, tl, train, rl, "series", ["a", "b"], seed=0):
        assert r["c2st"] > 0.85 and r["realism_gap"] > 0.25, r


def test_interval_is_clopper_pearson_and_sizes_are_balanced():
    test, tl = labelled(series, 60, seed=1)
    train, rl = labelled(series, 90, seed=2)
    fake, fl = labelled(series, 200, seed=3, shift=0.4)
    features = RealismConfig(classifiers=("features",))
    for r in realism_table(fake, fl, test, tl, train, rl, "series", ["a", "b"], seed=4, cfg=features):
        n = 2 * r["n_real"]  # both sides cut to the test split's size
        assert r["n_fake"] == r["n_real"] == (60 if r["class"] != "all" else 120)
        for name in ("c2st", "floor"):
            k = round(r[name] * n)
            assert r[name] * n == pytest.approx(k)
            assert (r[f"{name}_low"], r[f"{name}_high"]) == pytest.approx(_interval(k, n), abs=1e-9)


def test_no_classifier_scores_a_row_it_was_fitted_on():
    """Every row predicted exactly once, by a classifier that never saw it (ids in the last column)."""
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(size=(40, 3)), np.arange(40)[:, None]], axis=1)
    fake = np.concatenate([rng.normal(size=(50, 3)), 100 + np.arange(50)[:, None]], axis=1)
    seen = []

    def spy(X, y, X_test, seed):
        assert not set(X[:, -1]) & set(X_test[:, -1])
        seen.extend(X_test[:, -1])
        return np.zeros(len(X_test), dtype=y.dtype)

    r = c2st(real, fake, seed=1, folds=4, fit_predict=spy)
    assert len(seen) == len(set(seen)) == r.n == 80 and r.accuracy == 0.5  # all predicted "fake": half right


def test_summary_features_measure_what_they_say():
    x = np.zeros((2, 1, 64))
    x[0, 0] = np.sin(np.linspace(0, 2 * np.pi, 64)) + 3.0  # slow, level 3
    x[1, 0] = np.where(np.arange(64) % 2 == 0, 1.0, -1.0)  # fastest oscillation, level 0
    f, names = series_features(x)
    col = {n: f[:, i] for i, n in enumerate(names)}
    assert col["ch0.mean"] == pytest.approx([3.0, 0.0], abs=0.05)
    assert col["ch0.log_low"][0] > col["ch0.log_low"][1] and col["ch0.log_high"][1] > col["ch0.log_high"][0]
    assert col["ch0.ac1"][0] > 0.9 and col["ch0.ac1"][1] == pytest.approx(-63 / 64)  # 63 products of -1 over 64 squares
    img = -np.ones((2, 1, 8, 8))
    img[0, 0, 1, 1] = 1.0  # a bright pixel up left
    img[1, 0, 6, 5:7] = 1.0  # two bright pixels down right
    f, names = image_features(img)
    col = {n: f[:, i] for i, n in enumerate(names)}
    assert col["ch0.bright"] == pytest.approx([1 / 64, 2 / 64]) and col["ch0.dark"] == pytest.approx([63 / 64, 62 / 64])
    assert col["ch0.centroid_row"][0] < 0 < col["ch0.centroid_row"][1]
    assert col["ch0.hist7"] == pytest.approx(col["ch0.bright"])  # the top bin holds the bright pixels


def test_raw_classifier_on_tiny_images_is_pixels_and_finds_a_blur():
    rng = np.random.default_rng(3)
    sharp = np.where(rng.random((600, 1, 8, 8)) < 0.3, 1.0, -1.0)
    fake = (sharp[:200] + np.roll(sharp[:200], 1, axis=-1)) / 2  # half-tones appear: 42% of pixels at 0
    test, train, label = sharp[200:400], sharp[400:], np.zeros(200, int)
    rows = realism_table(fake, label, test, label, train, label, "image", ["x"], seed=0,
                         cfg=RealismConfig(classifiers=("raw",)))
    assert all(r["c2st"] > 0.9 and r["floor_low"] < 0.5 < r["floor_high"] for r in rows), rows


def test_a_class_too_small_is_left_out_and_none_left_is_an_error():
    test, tl = labelled(series, 30, seed=1)
    train, rl = labelled(series, 30, seed=2)
    fake, fl = labelled(series, 30, seed=3)
    keep = (fl == 0) | (np.arange(len(fl)) < 34)  # class 1 keeps 4 drafts
    rows = realism_table(fake[keep], fl[keep], test, tl, train, rl, "series", ["a", "b"],
                         cfg=RealismConfig(classifiers=("features",)))
    assert [r["class"] for r in rows] == [0, "all"]
    with pytest.raises(ValueError, match="no class has 10 rows"):
        realism_table(fake[:4], fl[:4], test, tl, train, rl, "series", ["a", "b"])


def test_the_schemas_classifier_names_are_the_modules():
    from pathlib import Path

    import yaml

    from dualspace.realism import CLASSIFIERS

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["properties"]["realism"]["properties"]["classifiers"]["items"]["enum"] == list(CLASSIFIERS)
    with pytest.raises(ValueError, match="realism.classifiers"):
        RealismConfig(classifiers=("features", "knn"))
