"""The tiny-denoiser: the shipped ONNX keeps its contract, and the recipe trains, resumes and exports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.audio.features import log_power, stft

MODEL = Path(__file__).resolve().parents[2] / "edge_sdk" / "zoo" / "tiny-denoiser" / "model.onnx"


def _frame_by_frame_matches(path: Path) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    layers, _, hidden = sess.get_inputs()[1].shape
    rng = np.random.default_rng(0)
    feats = np.stack([log_power(stft(rng.standard_normal(4000).astype(np.float32) * s)) for s in (0.01, 0.3)])
    state = np.zeros((layers, 2, hidden), np.float32)
    whole, whole_state = sess.run(None, {"input": feats, "state_in_0": state})
    assert whole.shape == feats.shape and whole.dtype == np.float32
    assert whole.min() >= 0.0 and whole.max() <= 1.0
    outs = []
    for t in range(feats.shape[1]):
        out, state = sess.run(None, {"input": feats[:, t : t + 1], "state_in_0": state})
        outs.append(out)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), whole, atol=1e-5)
    np.testing.assert_allclose(state, whole_state, atol=1e-5)


def test_shipped_model_contract() -> None:
    import onnx

    assert MODEL.is_file(), "the zoo's tiny-denoiser/model.onnx is missing"
    assert (MODEL.parent / "MODEL_CARD.md").is_file()
    model = onnx.load(str(MODEL))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    floats = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    params = sum(int(np.prod(t.dims)) for t in floats)
    assert params <= 100_000

    def dims(value: onnx.ValueInfoProto) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    io = {v.name: dims(v) for v in [*model.graph.input, *model.graph.output]}
    assert [v.name for v in model.graph.input] == ["input", "state_in_0"]
    assert [v.name for v in model.graph.output] == ["output", "state_out_0"]
    assert io["input"][2] == 161 and io["output"][2] == 161
    assert isinstance(io["input"][0], str) and isinstance(io["input"][1], str)  # dynamic batch and frames
    assert isinstance(io["state_in_0"][1], str) and io["state_in_0"] == io["state_out_0"]
    _frame_by_frame_matches(MODEL)


@pytest.mark.torch
def test_torch_spectra_equal_the_numpy_features() -> None:
    torch = pytest.importorskip("torch")
    from edge_sdk.audio.features import istft
    from edge_sdk.train.tiny_denoiser import spectral_ops

    t_stft, t_istft, t_log_power = spectral_ops()
    x = np.random.default_rng(1).standard_normal((2, 5003)).astype(np.float32) * 0.1
    spec = t_stft(torch.from_numpy(x))
    np.testing.assert_allclose(spec[1].numpy(), stft(x[1]), atol=1e-5)
    np.testing.assert_allclose(t_log_power(spec)[1].numpy(), log_power(stft(x[1])), atol=1e-4)
    np.testing.assert_allclose(t_istft(spec)[1].numpy(), istft(stft(x[1])), atol=1e-5)


@pytest.mark.torch
@pytest.mark.network
def test_recipe_trains_resumes_and_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("soxr")
    pytest.importorskip("av", reason="the train extra (PyAV) decodes the wideband prompts")
    if not list((Path("/usr/share/asterisk/sounds/en")).glob("*.g722")):
        pytest.skip("needs Debian's asterisk-core-sounds-en-g722 (.ci/system-deps installs it)")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the recipe synthesises its speech with it)")
    from edge_sdk.train import tiny_denoiser

    monkeypatch.setenv("EDGE_SDK_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    small = ["--out", str(out), "--batch", "4", "--clip", "1", "--tts", "16", "--log-every", "2"]
    small += ["--eval-every", "2", "--val-batches", "1", "--proj", "16", "--hidden", "24"]
    small += ["--wide", "0.3", "--wide-languages", "en", "--wide-minutes", "0.3"]  # real wideband speech
    small += ["--typing", "0.5", "--keys", "0.5"]  # click trains, some of recorded keyboards
    tiny_denoiser.main([*small, "--steps", "2"])
    tiny_denoiser.main([*small, "--steps", "4"])  # resumes from ckpt.pt at step 2
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert np.isfinite(json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])["loss"])
    _frame_by_frame_matches(out / "model.onnx")
