""".csv files laid out otherwise (`data.csv`): another delimiter, no quoting, fields named for a file without a header
row (as the STS Benchmark ships): numbers read as numbers, fields past the named ones left out and counted, a short
row one line naming it."""

from __future__ import annotations

import logging

import pytest

from pipeline.data.files import read_table
from pipeline.errors import PipelineError
from pipeline.recipe.schema import CsvLayout

STS = CsvLayout(delimiter="\t", quoting=False, columns=["genre", "id", "score", "sentence1", "sentence2"])


def test_named_fields_without_a_header_row(tmp_path, caplog):
    path = tmp_path / "sts-train.csv"
    path.write_text(
        'captions\t0001\t5.000\tA "plane" is taking off.\tAn air plane is taking off.\n'
        "news\t0002\t3.8\tA man plays.\tA man plays a flute.\textra source\tmore\n"
    )
    with caplog.at_level(logging.INFO):
        table = read_table(path, layout=STS)
    assert table.column_names == ["genre", "id", "score", "sentence1", "sentence2"]
    assert table.column("score").to_pylist() == [5.0, 3.8] and table.column("id").to_pylist() == [1, 2]
    assert table.column("sentence1").to_pylist()[0] == 'A "plane" is taking off.'  # a quote is a character
    assert "1 row(s) of" in caplog.text and "hold fields past data.csv.columns" in caplog.text


def test_a_row_with_fewer_fields_than_named_is_one_line(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("captions\t1\t5.0\tA plane.\tA jet.\nnews\t2\t3.0\tonly one sentence\n")
    with pytest.raises(PipelineError, match=r"row 2 has 4 field\(s\) for the 5 named \(data.csv.columns\)"):
        read_table(path, layout=STS)


def test_another_delimiter_with_a_header_row(tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text('text;label\n"good; fine";pos\nbad;neg\n')
    table = read_table(path, layout=CsvLayout(delimiter=";"))
    assert table.column("text").to_pylist() == ["good; fine", "bad"]
