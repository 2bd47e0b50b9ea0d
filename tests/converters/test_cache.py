"""The conversion cache: a repeated request is reused, says so and is byte-identical; cache=False and
--no-cache rebuild; a changed option or source gets a new key; a target's calibrated build is reused when
only other things change, so the calibrator does not run again (counted through the progress stage)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import edge_sdk
from edge_sdk.converters.cache import builds_dir, conversions_dir

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"


class Stages:
    """A progress callback counting the calls per stage."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        self.calls[stage] += 1


def _convert(source: Any, targets: str, out: Path, calib: list, **kw: Any) -> tuple[list, Counter[str]]:
    stages = Stages()
    arts = edge_sdk.convert(source, targets, out=out, calibration=calib, progress=stages, **kw)
    return arts, stages.calls


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_second_identical_conversion_is_reused(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    (first,), calls = _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration)
    assert calls["calibrate"] > 0 and not getattr(first, "reused_from", "")
    (again,), calls = _convert(tiny_onnx, "onnx:int8", tmp_path / "b", tiny_calibration)
    assert calls["calibrate"] == 0 and calls["parity"] == 0  # no work at all
    assert again.reused_from.startswith(str(conversions_dir()))  # says where it came from
    assert _tree(first.path) == _tree(again.path)  # byte-identical, manifest included
    assert edge_sdk.load_artifact(again.path).parity == first.parity


def test_cache_false_rebuilds(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration)
    (art,), calls = _convert(tiny_onnx, "onnx:int8", tmp_path / "b", tiny_calibration, cache=False)
    assert calls["calibrate"] > 0 and not getattr(art, "reused_from", "")


def test_cache_false_refreshes_the_cache(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    """What a cache=False call builds is stored: the same request afterwards is taken from the cache."""
    (built,), _ = _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration, cache=False)
    (again,), calls = _convert(tiny_onnx, "onnx:int8", tmp_path / "b", tiny_calibration)
    assert getattr(again, "reused_from", "") and calls["calibrate"] == 0
    assert (again.path / "model.onnx").read_bytes() == (built.path / "model.onnx").read_bytes()


def test_cache_false_replaces_the_entries_already_there(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    """A cache=False run stores what it built in place of what the cache held, artifact and build."""
    _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration)
    entries = [*conversions_dir().iterdir(), *builds_dir().iterdir()]
    assert len(entries) == 2
    for entry in entries:
        (entry / "left-by-the-old-entry").write_text("x")
    _convert(tiny_onnx, "onnx:int8", tmp_path / "b", tiny_calibration, cache=False)
    assert sorted(p.name for p in [*conversions_dir().iterdir(), *builds_dir().iterdir()]) == sorted(
        e.name for e in entries
    )
    assert not any((e / "left-by-the-old-entry").exists() for e in entries)


def test_changed_option_or_source_gets_a_new_key(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration)
    (art,), calls = _convert(
        tiny_onnx, "onnx:int8", tmp_path / "b", tiny_calibration, options={"per_channel": False}
    )
    # a new artifact, quantised again, from the activation ranges the first one calibrated
    assert calls["calibrate"] == 0 and not getattr(art, "reused_from", "")
    assert art.recipe["per_channel"] is False
    # The same graph with one weight changed is another source.
    model = onnx.load(str(tiny_onnx))
    w = model.graph.initializer[0]
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * 1.01, w.name))
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    (art,), calls = _convert(other, "onnx:int8", tmp_path / "c", tiny_calibration, name="tiny")
    assert calls["calibrate"] > 0 and not getattr(art, "reused_from", "")
    assert len(list(conversions_dir().iterdir())) == 3


def test_calibration_is_not_redone_when_only_other_things_change(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration)
    # Another format beside it: the int8 artifact is reused whole.
    arts, calls = _convert(tiny_onnx, "onnx:int8,onnx:fp16", tmp_path / "b", tiny_calibration)
    assert calls["calibrate"] == 0 and arts[0].reused_from and not getattr(arts[1], "reused_from", "")
    # Options that change no int8 build (a gate, the name, the parity check's samples): the calibrated
    # build is reused and only the parity check runs again.
    for kw in ({"max_error": 10.0}, {"name": "renamed"}, {"parity_samples": 3}):
        (art,), calls = _convert(tiny_onnx, "onnx:int8", tmp_path / "c", tiny_calibration, **kw)
        assert calls["calibrate"] == 0 and calls["parity"] > 0, kw
        assert not getattr(art, "reused_from", "")
    assert len(list(builds_dir().iterdir())) == 2  # int8 and fp16


ORT_RANGES = {"calibrator": "onnxruntime"}  # tflite's opt-in; openvino's default


@pytest.mark.parametrize(
    "first,second",
    [("onnx:int8", "openvino:int8"), ("openvino:int8", "onnx:int8"), ("onnx:int8", "tflite:int8")],
)
def test_changing_only_the_format_does_not_calibrate_again(
    first: str, second: str, tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    """openvino:int8 is imported from the QDQ model that onnx:int8 is, and tflite:int8 (calibrator
    onnxruntime) carries the same ranges onto its graph, so what one format calibrated serves the others."""
    for target in (first, second):
        pytest.importorskip(target.split(":")[0].replace("tflite", "onnx2tf"), reason="needs its extra")
    _, calls = _convert(tiny_onnx, first, tmp_path / "a", tiny_calibration, options=ORT_RANGES)
    assert calls["calibrate"] > 0
    (art,), calls = _convert(tiny_onnx, second, tmp_path / "b", tiny_calibration, options=ORT_RANGES)
    assert calls["calibrate"] == 0 and not getattr(art, "reused_from", "") and calls["parity"] > 0
    assert art.parity is not None and art.parity["passed"] is not False
    if second.startswith("tflite"):
        assert art.recipe["calibrator"] == "onnxruntime" and art.recipe["ranges_carried"] >= 2
    else:
        assert art.recipe["quantized_weights"] >= 1


def test_nncf_and_tensorflow_calibrate_for_themselves(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    pytest.importorskip("nncf", reason="needs the openvino extra")
    _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration)
    (nncf,), calls = _convert(
        tiny_onnx, "openvino:int8", tmp_path / "b", tiny_calibration, options={"calibrator": "nncf"}
    )
    assert calls["calibrate"] > 0 and nncf.recipe["quantizer"] == "nncf.quantize"


def test_torch_modules_differing_outside_their_weights_get_different_keys(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Scaled(torch.nn.Module):
        def __init__(self, scale: float) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.fc = torch.nn.Linear(4, 3)
            self.scale = scale  # not a parameter or buffer: the state_dicts are equal

        def forward(self, x: Any) -> Any:
            return self.fc(x) * self.scale

    x = torch.ones(1, 4)
    (a,) = edge_sdk.convert(Scaled(1.0), "onnx:fp32", out=tmp_path / "a", example_inputs=x)
    (b,) = edge_sdk.convert(Scaled(2.0), "onnx:fp32", out=tmp_path / "b", example_inputs=x)
    assert not getattr(b, "reused_from", "")
    (again,) = edge_sdk.convert(Scaled(1.0), "onnx:fp32", out=tmp_path / "c", example_inputs=x)
    assert again.reused_from  # the export is deterministic, so the same module is found again
    assert a.source["sha256"] == b.source["sha256"]  # the state fingerprint alone would collide
    feed = {"x": np.ones((1, 4), np.float32)}
    (ya,) = edge_sdk.load(a.path).run(feed).values()
    (yb,) = edge_sdk.load(b.path).run(feed).values()
    np.testing.assert_allclose(yb, 2 * ya, rtol=1e-5)


def test_cli_says_it_reused_and_no_cache_rebuilds(tiny_onnx: Path, tmp_path: Path) -> None:
    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        args = [EXE, "convert", str(tiny_onnx), "--to", "onnx:fp32", "--out", str(tmp_path / "o"), *extra]
        return subprocess.run(args, capture_output=True, text=True, timeout=300, env=dict(os.environ))

    assert run("--json").returncode == 0
    r = run()
    assert r.returncode == 0 and "reused cached artifact" in r.stderr
    assert "reused cached artifact" in r.stdout  # the table's status column
    r = run("--json", "--no-cache")
    assert r.returncode == 0 and "reused" not in r.stderr
    assert json.loads(r.stdout)["artifacts"][0]["reused_from"] is None


def test_onnxruntime_calibration_ranges_are_shared_by_int8_variants(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    from onnxruntime import quantization as q

    from edge_sdk.converters.cache import calibration_ranges_file

    class Reader:
        def __init__(self) -> None:
            self.reads = 0
            self._it = iter(tiny_calibration)

        def get_next(self) -> dict | None:
            sample = next(self._it, None)
            self.reads += sample is not None
            return sample

    ranges = calibration_ranges_file(tiny_onnx, tiny_calibration, "minmax")
    assert ranges == calibration_ranges_file(tiny_onnx, tiny_calibration, "minmax")
    assert ranges != calibration_ranges_file(tiny_onnx, tiny_calibration, "entropy")
    assert ranges != calibration_ranges_file(tiny_onnx, tiny_calibration[1:], "minmax")
    reads = []
    for i, per_channel in enumerate((True, False, True)):
        reader = Reader()
        q.quantize_static(
            str(tiny_onnx),
            str(tmp_path / f"q{i}.onnx"),
            reader,  # type: ignore[arg-type]
            per_channel=per_channel,
            calibration_cache_path=str(ranges),
        )
        reads.append(reader.reads)
    assert reads == [len(tiny_calibration), 0, 0]  # calibrated once, for every variant
    assert (tmp_path / "q0.onnx").read_bytes() == (tmp_path / "q2.onnx").read_bytes()


def test_a_cached_build_naming_a_file_outside_its_entry_is_not_copied(tmp_path: Path) -> None:
    from edge_sdk.converters.cache import BUILD_RECORD, reuse_build

    entry = builds_dir() / "crafted"
    entry.mkdir(parents=True)
    (builds_dir() / "secret.onnx").write_bytes(b"not this entry's")
    record = {"files": ["../secret.onnx"], "recipe": {}, "quantization": {}, "versions": {}}
    (entry / BUILD_RECORD).write_text(json.dumps({**record, "inputs": None, "outputs": None}))
    stage = tmp_path / "stage"
    stage.mkdir()
    assert reuse_build("crafted", stage) is None  # treated as damaged: built again
    assert list(stage.iterdir()) == []
    assert not (tmp_path / "secret.onnx").exists()


def test_a_cached_artifact_linking_out_of_its_entry_is_not_reused(tiny_onnx: Path, tmp_path: Path) -> None:
    (first,) = edge_sdk.convert(tiny_onnx, "onnx:fp32", out=tmp_path / "a")
    (entry,) = list(conversions_dir().iterdir())
    outside = Path(shutil.copy(entry / "model.onnx", tmp_path / "outside.onnx"))
    (entry / "model.onnx").unlink()
    (entry / "model.onnx").symlink_to(outside)  # same bytes, so only the confinement refuses it
    (again,) = edge_sdk.convert(tiny_onnx, "onnx:fp32", out=tmp_path / "b")
    assert not getattr(again, "reused_from", "")
    assert not (again.path / "model.onnx").is_symlink()
