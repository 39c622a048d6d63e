"""Dataset registry: the one list of datasets (name, kind, loader, the schema of its options), read by the
rules, the config check and the library; `prepare` writes the split files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .base import SPLITS, DataMissingError, Dataset, Split, ValueGrid, one_hot
from .files import SplitFileError, read_split, split_meta, write_split
from .images import DIGITS_OPTIONS, ROOT_OPTIONS, check_digits, load_cifar10, load_digits, load_mnist
from .series import HAPT_OPTIONS, HAR_OPTIONS, load_har, load_hapt
from .abr_simulated import ABR_SIMULATED_OPTIONS, load_abr_simulated

__all__ = ["DATASETS", "REGISTRY", "SPLITS", "DataMissingError", "Dataset", "DatasetSpec", "Split", "ValueGrid",
           "SplitFileError", "dataset_spec", "load_dataset", "one_hot", "prepare", "read_split", "split_meta",
           "write_split"]


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry. Adding a dataset = one entry here + a config section `<name>` + its loader's tests."""

    name: str
    kind: str  # "image" or "series": picks phi's network (features.FEATURE_NETS) and the metrics' extras
    loader: Callable[..., Dataset]  # loader(seed, **options) with options = config section `<name>.data`
    options: dict[str, Any]  # JSON-schema properties of `<name>.data` (checked before any job runs)
    check: Callable[[dict], list[str]] = field(default=lambda options: [])  # cross-key problems of the options
    prepare_mb: int = 3000  # memory the prepare_data job needs
    grid: ValueGrid | None = None  # the values x can hold (drafts are snapped onto it); None: continuous


REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in [
    DatasetSpec("digits", "image", load_digits, DIGITS_OPTIONS, check_digits, grid=ValueGrid(16)),  # 17 greys
    DatasetSpec("hapt", "series", load_hapt, HAPT_OPTIONS),
    DatasetSpec("cifar10", "image", load_cifar10, ROOT_OPTIONS, prepare_mb=6000, grid=ValueGrid(255)),  # 8-bit
    DatasetSpec("har", "series", load_har, HAR_OPTIONS),
    DatasetSpec("mnist", "image", load_mnist, ROOT_OPTIONS, prepare_mb=6000, grid=ValueGrid(255)),  # 8-bit
    DatasetSpec("abr_simulated", "series", load_abr_simulated, ABR_SIMULATED_OPTIONS),
]}
DATASETS = list(REGISTRY)


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of `name`; an unknown name fails with the known ones listed."""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset '{name}'; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def load_dataset(name: str, seed: int, **options: Any) -> Dataset:
    """Build dataset `name` with its config options; unknown names and options fail with the valid ones listed."""
    spec = dataset_spec(name)
    try:
        ds = spec.loader(seed=seed, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise TypeError(f"config section '{name}.data': {e}") from None
        raise
    if ds.kind != spec.kind:
        raise TypeError(f"loader of '{name}' returned kind '{ds.kind}', but the registry says '{spec.kind}'")
    return ds


def prepare(name: str, seed: int, options: Mapping[str, Any], outputs: Mapping[str, str | Path]) -> Dataset:
    """Load dataset `name` and write one HDF5 file per split (x, label, extras) with stats and provenance."""
    ds = load_dataset(name, seed, **dict(options))
    for split, path in outputs.items():
        write_split(path, ds, split, dict(options))
    return ds
