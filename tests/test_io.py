"""io.write_csv and io.read_json: the one CSV writer and the one JSON-artifact reader every stage uses."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from dualspace.io import read_json, write_csv, write_json


def test_write_csv_round_trips_with_its_float_format(tmp_path):
    df = pd.DataFrame({"name": ["a", "b"], "x": [np.pi, 1e-7 / 3], "n": [1, 2]})
    path = tmp_path / "sub" / "t.csv"  # the parent folder does not exist yet
    write_csv(df, path, float_format="%.6g")
    lines = path.read_text().splitlines()
    assert lines[0] == "name,x,n"  # no index column by default
    assert lines[1] == f"a,{'%.6g' % np.pi},1"
    back = pd.read_csv(path)
    assert back["x"].tolist() == [float("%.6g" % np.pi), float("%.6g" % (1e-7 / 3))]
    assert back["name"].tolist() == ["a", "b"] and back["n"].tolist() == [1, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.csv"]


def test_write_csv_passes_index_and_writes_what_to_csv_writes(tmp_path):
    df = pd.DataFrame({"joint": [0.123456789], "legacy": [None]}, index=pd.Index(["snr"], name="metric"))
    write_csv(df, tmp_path / "a.csv", float_format="%.4f", index=True)
    df.to_csv(tmp_path / "b.csv", float_format="%.4f")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_text().splitlines() == ["metric,joint,legacy", f"snr,{'%.4f' % 0.123456789},"]


def test_write_csv_leaves_nothing_when_the_writer_raises(tmp_path):
    class Broken:  # a frame whose writer fails half-way
        def to_csv(self, path, **kw):
            open(path, "w").write("half a row")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_csv(Broken(), tmp_path / "t.csv")
    assert list(tmp_path.iterdir()) == []


def test_read_json_reads_what_write_json_wrote(tmp_path):
    write_json({"b": [1, 2], "a": 0.5}, tmp_path / "m.json")
    assert read_json(tmp_path / "m.json", "metrics") == {"a": 0.5, "b": [1, 2]}
    write_json([{"epoch": 0}], tmp_path / "h.json")
    assert read_json(tmp_path / "h.json", "training history", list) == [{"epoch": 0}]


def test_read_json_names_a_missing_file_and_how_to_build_it(tmp_path):
    path = tmp_path / "metrics.json"
    p = re.escape(str(path))
    with pytest.raises(FileNotFoundError, match=rf"metrics {p} does not exist; build it with `snakemake {p}`"):
        read_json(path, "metrics")


@pytest.mark.parametrize("content", ['{"accuracy": 0.9', "", b"\xff\xfe{}"])
def test_read_json_names_a_damaged_file(tmp_path, content):
    path = tmp_path / "metrics.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    p = re.escape(str(path))
    with pytest.raises(ValueError, match=rf"metrics {p} is damaged or not JSON .*rerun `snakemake {p}`"):
        read_json(path, "metrics")


def test_read_json_names_a_file_of_the_wrong_type(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps([1, 2]))
    p = re.escape(str(path))
    with pytest.raises(ValueError, match=rf"metrics {p} holds a JSON list where a dict is expected; delete it"):
        read_json(path, "metrics")
    with pytest.raises(ValueError, match=rf"history {p} holds a JSON list where a dict"):
        read_json(path, "history", dict)
    path.write_text("{}")
    with pytest.raises(ValueError, match="holds a JSON dict where a list is expected"):
        read_json(path, "history", list)


def test_existing_file_names_what_is_missing_and_the_command(tmp_path):
    from dualspace.io import existing_file, read_h5

    (tmp_path / "a.h5").write_bytes(b"")
    assert existing_file(str(tmp_path / "a.h5"), "pairs") == tmp_path / "a.h5"
    p = re.escape(str(tmp_path / "b.h5"))
    with pytest.raises(FileNotFoundError, match=rf"^pairs {p} does not exist; build it with `snakemake {p}`$"):
        existing_file(tmp_path / "b.h5", "pairs")
    with pytest.raises(FileNotFoundError, match=rf"^HDF5 file {p} does not exist"):
        read_h5(tmp_path / "b.h5")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        existing_file(tmp_path, "pairs")  # a folder is not the file
