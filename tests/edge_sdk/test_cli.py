"""End to end through the installed ``edge-sdk`` command, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small conv classifier built with onnx.helper (no torch needed), calibration data and an input."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "b")
    fc = numpy_helper.from_array(rng.standard_normal((8, 5)).astype(np.float32), "fc")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])],
        [w, b, fc],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, d / "tiny.onnx")
    np.savez(d / "calib.npz", x=rng.standard_normal((16, 1, 3, 16, 16)).astype(np.float32))
    np.save(d / "x.npy", rng.standard_normal((2, 3, 16, 16)).astype(np.float32))
    return d


@pytest.fixture(scope="module")
def converted(model_dir: Path) -> Path:
    out = model_dir / "arts"
    r = cli(
        "convert",
        str(model_dir / "tiny.onnx"),
        "--to",
        "onnx:fp32,onnx:int8",
        "--calib",
        str(model_dir / "calib.npz"),
        "--out",
        str(out),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # nothing but JSON on stdout
    assert [a["precision"] for a in data["artifacts"]] == ["fp32", "int8"]
    assert data["failures"] == {}
    return out


def test_convert_writes_checked_artifacts(converted: Path) -> None:
    fp32 = edge_sdk.load_artifact(converted / "tiny-onnx-fp32")
    int8 = edge_sdk.load_artifact(converted / "tiny-onnx-int8")
    assert fp32.parity["max_abs_error"] < 1e-5
    assert int8.parity["inputs"] == "calibration" and int8.parity["samples"] == 16
    assert int8.parity["cosine_similarity"] > 0.99
    assert int8.recipe["calibration"]["samples"] == 16


def test_convert_table_for_people(model_dir: Path, tmp_path: Path) -> None:
    r = cli("convert", str(model_dir / "tiny.onnx"), "--to", "onnx:fp16", "--out", str(tmp_path), "-q")
    assert r.returncode == 0, r.stderr
    assert "onnx:fp16" in r.stdout and "ok" in r.stdout


def test_inspect_artifact_and_model(converted: Path, model_dir: Path) -> None:
    r = cli("inspect", str(converted / "tiny-onnx-int8"), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert "QuantizeLinear" in info["model"]["ops"] and info["model"]["opsets"]["ai.onnx"] >= 13
    assert info["artifact"]["parity"]["samples"] == 16
    r = cli("inspect", str(model_dir / "tiny.onnx"))
    assert r.returncode == 0, r.stderr
    assert "Conv" in r.stdout and "GlobalAveragePool" in r.stdout and "batch" in r.stdout


def test_run_matches_python(converted: Path, model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "y.npz"
    r = cli(
        "run", str(converted / "tiny-onnx-fp32"), "--input", str(model_dir / "x.npy"), "--output", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert "onnxruntime/cpu" in r.stdout
    x = np.load(model_dir / "x.npy")
    expected = edge_sdk.load(converted / "tiny-onnx-fp32").run({"x": x})["y"]
    np.testing.assert_array_equal(np.load(out)["y"], expected)
    r = cli("run", str(converted / "tiny-onnx-fp32"), "--input", f"x={model_dir / 'x.npy'}", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["outputs"]["y"]["shape"] == [2, 5]
    assert data["selection"]["accelerator"] == "cpu"


def test_parity_gate_fails_the_job(model_dir: Path, tmp_path: Path) -> None:
    r = cli(
        "convert",
        str(model_dir / "tiny.onnx"),
        "--to",
        "onnx:int8",
        "--calib",
        str(model_dir / "calib.npz"),
        "--max-error",
        "1e-9",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 1
    assert "parity check failed" in r.stderr and "max abs error" in r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written, not even a hidden partial directory


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["convert", "missing.onnx", "--to", "onnx:fp32"], "no such file"),
        (["convert", "{model}", "--to", "onnx:int9"], "unknown precision 'int9'"),
        (["convert", "{model}", "--to", "tflight:fp32"], "unknown target format 'tflight'"),
        (["convert", "{model}", "--to", "onnx:int8"], "--calib"),
        (
            ["convert", "{model}", "--to", "onnx:int8", "--calib", "{dir}/x.npy", "--option", "colour=red"],
            "colour",
        ),
        (["convert", "{truncated}", "--to", "onnx:fp32"], "truncated or corrupt"),
        (["run", "{model}", "--input", "{dir}/calib.npz"], "shape"),
        (["run", "{model}", "--input", "{dir}/nothing.npy"], "not a file"),
        (["inspect", "{dir}/nowhere"], "no such file"),
        (["models", "pull", "no-such-model"], "silero-vad"),
        (["convert", "{model}"], "--to"),  # argparse: usage error
    ],
)
def test_bad_input_exits_2(model_dir: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    truncated = tmp_path / "trunc.onnx"
    truncated.write_bytes((model_dir / "tiny.onnx").read_bytes()[:300])
    subst = {"{model}": str(model_dir / "tiny.onnx"), "{dir}": str(model_dir), "{truncated}": str(truncated)}
    for k, v in subst.items():
        args = [a.replace(k, v) for a in args]
    r = cli(*args, "--out", str(tmp_path / "o")) if args[0] == "convert" else cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_models_list() -> None:
    r = cli("models", "list", "--json")
    assert r.returncode == 0, r.stderr
    names = {m["name"]: m for m in json.loads(r.stdout)}
    assert names["silero-vad"]["license"] == "MIT"
    assert "silero-vad-op18" in names


@pytest.mark.network
def test_demo_end_to_end(tmp_path: Path, embedding_cache: Path) -> None:
    r = cli("demo", "--out", str(tmp_path / "demo"), "--json", env={"EDGE_SDK_CACHE": str(embedding_cache)})
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    rows = {row["target"]: row for row in result["rows"]}
    onnx = {t for t in rows if t.startswith("onnx:")}
    assert onnx == {"onnx:fp32", "onnx:fp16", "onnx:int8", "onnx:int8-dynamic"}
    assert rows["onnx:fp32"]["agreement_vs_fp32"] == 1.0
    # fp16 must keep the decisions; the clip is mostly speech with silences around and between sentences.
    assert rows["onnx:fp16"]["agreement_vs_fp32"] >= 0.97
    assert 0.5 < rows["onnx:fp32"]["speech_fraction"] < 0.95
    assert rows["onnx:int8-dynamic"]["size"] < rows["onnx:fp32"]["size"] / 2
    for fmt in ("openvino", "tflite"):  # each format is either compared or said to be skipped or failed
        assert any(t.startswith(fmt) for t in rows) or any(n.startswith(fmt) for n in result["notes"])
    # The live loop on the bundled noisy clip: both denoisers ran, improved the speech, and the VAD found
    # the clip's two sentences in the denoised audio.
    audio = result["audio_loop"]
    assert 4.5 < audio["noisy_si_sdr_db"] < 5.5
    loops = {row["denoiser"]: row for row in audio["rows"]}
    assert set(loops) == {"tiny", "nsnet2"}
    for name, row in loops.items():
        assert row["si_sdr_gain_db"] > 3.0, (name, row)
        assert row["speech_segments"] == 2 and Path(row["recording"]).is_file()
        stages = [s["name"] for s in audio["summaries"][name]["stages"]]
        assert stages == [f"denoise.{name}", "vad.silero", "record.wav"]
    # Speech recognition of the bundled clip: Whisper tiny.en hears the clean read speech nearly word for word
    # and still most of it in noise.
    asr = {row["audio"]: row for row in result["speech_recognition"]["rows"]}
    assert set(asr) == {"clean", "pink noise 5 dB", "pink noise 5 dB, tiny denoiser"}
    assert asr["clean"]["wer"] <= 0.15 and all(row["wer"] <= 0.5 for row in asr.values()), asr
    # The video loop on the bundled clip: every frame through noise → zoo:video, a real PSNR gain, and the
    # denoised video written.
    video = result["video_loop"]
    assert video["frames"] == 30 and video["sigma"] == 25.0
    assert 19.5 < video["psnr_noisy_db"] < 21.0
    assert video["psnr_gain_db"] > 4.0
    assert Path(video["recording"]).is_file() and video["summary"]["drops"] == 0
    assert [s["name"] for s in video["summary"]["stages"]] == [
        "noise", "psnr-noisy", "video.denoise", "psnr-denoised",
    ]  # fmt: skip


def test_devices_on_a_recorded_jetson_and_on_this_machine() -> None:
    tree = Path(__file__).resolve().parents[1] / "devices" / "fixtures" / "jetson-orin"
    r = cli("devices", "--root", str(tree), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["profile"]["name"] == "jetson-orin" and data["probed"] is False
    cuda = next(a for a in data["accelerators"] if a["accelerator"] == "cuda")
    assert cuda["usable"] is False and "onnxruntime-gpu" in cuda["enable"]
    assert "ina3221" in data["telemetry"]["sources"] or "ina3221" in str(data["telemetry"]["skipped"])
    r = cli("devices")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("device: ") and "onnxruntime/cpu" in r.stdout and "telemetry" in r.stdout


def test_devices_says_what_would_run(converted: Path) -> None:
    tree = Path(__file__).resolve().parents[1] / "devices" / "fixtures" / "raspberry-pi-5"
    r = cli("devices", "--root", str(tree), "--artifacts", str(converted), "--json")
    assert r.returncode == 0, r.stderr
    sel = json.loads(r.stdout)["selection"]
    assert sel["device"] == "raspberry-pi-5" and sel["backend"] == "onnxruntime"
    assert sel["artifact"] == "tiny-onnx-int8"  # the Pi prefers int8
    r = cli(
        "run", str(converted), "--input", str(converted.parent / "x.npy"), "--device", "x86-64", "--strict"
    )
    assert r.returncode == 0, r.stderr


def test_errors_and_warnings_reach_a_pipe_whole(tmp_path: Path) -> None:
    """stderr is a pipe here: a long message stays on one line (rich wraps at 80 columns otherwise, and
    a path split across lines cannot be searched for in a log)."""
    deep = tmp_path / ("d" * 120) / "model.onnx"
    r = cli("inspect", str(deep), env={"COLUMNS": "40"})
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and f"{deep}: no such file or directory" in line
