"""Files kept by name are written whole with their sha256 beside them, and one that no longer matches (or
has no record) is removed with a warning rather than reused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge_sdk.integrity import hashes, mismatch, reusable, sidecar, write_checked


def test_a_written_file_is_reusable_until_its_bytes_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "derived" / "model.onnx"
    assert write_checked(path, lambda tmp: tmp.write_bytes(b"weights"))
    assert sidecar(path).read_text().split()[1] == "model.onnx"  # sha256sum's format
    assert reusable(path, "derived model")
    path.write_bytes(b"weighTs")
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        assert not reusable(path, "derived model")
    (warned,) = [r.getMessage() for r in caplog.records]
    assert warned.startswith(f"derived model {path} is damaged (model.onnx has sha256")
    assert not path.exists() and not sidecar(path).exists()  # removed, so it is made again
    assert list((tmp_path / "derived").iterdir()) == []  # no temp files left behind


def test_a_file_without_its_record_is_not_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.onnx"
    path.write_bytes(b"made before records were kept")
    with caplog.at_level(logging.INFO, logger="edge_sdk"):
        assert not reusable(path, "derived model")
    # made again, with a note rather than a warning: an older edge-sdk's file is unproven, not damaged
    (note,) = [r for r in caplog.records if r.name == "edge_sdk.integrity"]
    assert note.levelno == logging.INFO and "has no sha256 recorded beside it" in note.getMessage()
    assert not path.exists()
    assert not reusable(tmp_path / "absent.onnx", "derived model") and "absent" not in caplog.text


def test_a_writer_that_makes_nothing_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ranges.json"
    assert not write_checked(path, lambda tmp: None)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_writer_leaves_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    write_checked(path, lambda tmp: tmp.write_bytes(b"v1"))

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_checked(path, broken)
    assert reusable(path, "x") and path.read_bytes() == b"v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.sha256"]


def test_mismatch_names_the_first_changed_or_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    recorded = hashes(tmp_path, ["a", "b"])
    assert mismatch(tmp_path, recorded) is None
    (tmp_path / "b").write_bytes(b"B")
    assert (mismatch(tmp_path, recorded) or "").startswith("b has sha256")
    (tmp_path / "a").unlink()
    assert (mismatch(tmp_path, recorded) or "").startswith("a cannot be read")
