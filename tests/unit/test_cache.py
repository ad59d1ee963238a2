"""Cache entries are sealed when written and checked before they are read: a damaged entry is made again with one
warning, a dead writer's partial is removed, and a cache folder that cannot be written is one line naming it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from pipeline.cache import SEAL, damage, usable, write_entry
from pipeline.errors import PipelineError


def make(folder, payload: bytes = b"\x00\x01" * 500) -> None:
    write_entry(folder, lambda partial: (partial / "data.bin").write_bytes(payload), "test")


def test_an_entry_reads_back_as_written(tmp_path):
    make(tmp_path / "key")
    assert usable(tmp_path / "key", "test") and damage(tmp_path / "key") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]  # no partial left beside it


@pytest.mark.parametrize(
    "spoil",
    [
        lambda f: f.write_bytes(f.read_bytes()[:-1]),  # cut short
        lambda f: f.write_bytes(bytes([f.read_bytes()[0] ^ 1]) + f.read_bytes()[1:]),  # one flipped bit
        lambda f: (f.parent / SEAL).unlink(),  # written by an older version, without a seal
        lambda f: (f.parent / "extra.bin").write_bytes(b"x"),  # a file planted beside
    ],
    ids=["truncated", "flipped-bit", "unsealed", "planted"],
)
def test_a_damaged_entry_is_removed_with_a_warning(tmp_path, caplog, spoil):
    make(tmp_path / "key")
    spoil(tmp_path / "key" / "data.bin")
    with caplog.at_level(logging.INFO):
        assert not usable(tmp_path / "key", "test vectors")
    assert "(test vectors) is" in caplog.text and "making it again" in caplog.text
    assert not (tmp_path / "key").exists()
    make(tmp_path / "key")
    assert usable(tmp_path / "key", "test")


def test_a_partial_of_a_dead_writer_is_removed_and_a_live_one_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".old.{int(dead.stdout)}.partial"
    live = tmp_path / f".other.{__import__('os').getppid()}.partial"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "half.bin").write_bytes(b"x" * 100)
    make(tmp_path / "key")
    assert not stale.exists() and live.exists()


def test_a_cache_folder_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(PipelineError, match=r"cannot write the test cache in .*file.* set EMBEDLAB_CACHE"):
        make(tmp_path / "file" / "key")


def test_another_writer_s_entry_is_kept(tmp_path):
    make(tmp_path / "key", b"first")
    make(tmp_path / "key", b"second")  # a second process that computed the same entry
    assert (tmp_path / "key" / "data.bin").read_bytes() == b"first" and usable(tmp_path / "key", "test")


def test_an_entry_moved_under_another_key_is_damage(tmp_path, caplog):
    make(tmp_path / "short", b"max_length 4")
    make(tmp_path / "long", b"max_length 16")
    (tmp_path / "short").rename(tmp_path / "held")  # the two entries swapped between their keys
    (tmp_path / "long").rename(tmp_path / "short")
    (tmp_path / "held").rename(tmp_path / "long")
    with caplog.at_level(logging.WARNING):
        assert not usable(tmp_path / "short", "encoded splits") and not usable(tmp_path / "long", "encoded splits")
    assert caplog.text.count("sealed as entry") == 2


def test_a_seal_from_before_seals_named_their_key_is_an_older_version(tmp_path, caplog):
    make(tmp_path / "key")
    record = json.loads((tmp_path / "key" / SEAL).read_text())
    (tmp_path / "key" / SEAL).write_text(json.dumps({"files": record["files"]}))
    with caplog.at_level(logging.INFO):
        assert not usable(tmp_path / "key", "test")
    assert "is from an older version: making it again" in caplog.text and "damaged" not in caplog.text


@pytest.mark.parametrize("garbled", ['{"files": [1, 2]}', "not json", '{"key": "key"}'])
def test_a_garbled_seal_is_damage_not_an_older_version(tmp_path, caplog, garbled):
    make(tmp_path / "key")
    (tmp_path / "key" / SEAL).write_text(garbled)
    with caplog.at_level(logging.INFO):
        assert not usable(tmp_path / "key", "test")
    assert "is damaged (entry.json is not a seal this version wrote)" in caplog.text


def test_a_link_inside_an_entry_is_damage_and_is_not_read(tmp_path, caplog):
    make(tmp_path / "key")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00\x01" * 500)  # the same bytes as the entry's file: only the link gives it away
    (tmp_path / "key" / "data.bin").unlink()
    (tmp_path / "key" / "data.bin").symlink_to(secret)
    with caplog.at_level(logging.WARNING):
        assert not usable(tmp_path / "key", "test")
    assert "holds a link (data.bin)" in caplog.text and secret.read_bytes() == b"\x00\x01" * 500


def test_an_entry_that_is_a_link_is_one_line_and_nothing_is_moved(tmp_path):
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "key").symlink_to(mine)
    with pytest.raises(PipelineError, match=r"cache entry .*key is a link"):
        usable(tmp_path / "cache" / "key", "test")
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["key"]  # no .partial left beside it
