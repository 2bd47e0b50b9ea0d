"""The audio benchmark's held-out noises stay out of the tiny denoiser's recipe: no recipe noise kind is a
held-out family, no recipe source names their recordings, and building the recipe's noise (and a few
training steps) opens no file of theirs. Also: the OpenSFX catalogue reader, on a catalogue written here."""

from __future__ import annotations

import io
import json
import struct
import sys
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge_sdk.train import noise_data, tiny_denoiser

TRAIN = Path(tiny_denoiser.__file__).resolve().parent
SHIPPED = TRAIN.parent / "zoo" / "tiny-denoiser" / "model.onnx"
_opened: list[list[str]] = []  # the hook is process-wide and cannot be removed: it records only when asked


def _hook(event: str, args: tuple) -> None:
    if event == "open" and _opened and isinstance(args[0], (str, bytes, Path)):
        _opened[-1].append(str(Path(args[0] if not isinstance(args[0], bytes) else args[0].decode())))


sys.addaudithook(_hook)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Paths opened while the test runs."""
    _opened.append([])
    try:
        yield _opened[-1]
    finally:
        _opened.pop()


@pytest.fixture(scope="module")
def corpus(bench_module: Callable[..., ModuleType]) -> ModuleType:
    """bench/speech_corpus.py imported as a module."""
    return bench_module("speech_corpus", "soxr")


def test_no_recipe_noise_kind_is_a_held_out_family(corpus: ModuleType) -> None:
    recipe_kinds = set(noise_data.GENERATORS) | set(noise_data.BROAD_KINDS) | {"babble", "typing"}
    assert corpus.HELD_OUT_NOISES and not set(corpus.HELD_OUT_NOISES) & recipe_kinds
    assert not set(corpus.HELD_OUT_NOISES) & set(corpus.NOISES)


def test_no_recipe_source_names_the_held_out_recordings(corpus: ModuleType) -> None:
    names = ["opensfx", "openttd", corpus.OPENSFX.name] + [t for ts in corpus.HELD_OUT.values() for t in ts]
    sources = sorted(TRAIN.glob("*.py"))
    assert tiny_denoiser.__file__ and noise_data.__file__ and len(sources) > 3
    for path in sources:
        text = path.read_text().lower()
        for name in names:
            if len(name) > 4:  # "Wind" alone would match "window"; its file is caught by the names above
                assert name.lower() not in text, f"{path.name} names held-out noise {name!r}"


def _recipe_noise(rng: np.random.Generator) -> dict[str, np.ndarray]:
    voices = [rng.standard_normal(8000).astype(np.float32) for _ in range(3)]
    data = {f"noise_train/{k}": v for k, v in noise_data.noise_bank(5.0, rng, voices, pieces=1).items()}
    data["train_tts"] = rng.standard_normal(16000 * 3).astype(np.float32) * 0.1
    data["boost_train"] = noise_data.typing_floor(16000 * 5, rng)
    return data


def test_building_the_recipes_noise_opens_no_held_out_file(
    corpus: ModuleType, opened: list[str], tmp_path: Path
) -> None:
    (tmp_path / "probe").write_text("x")
    (tmp_path / "probe").read_text()  # the hook sees opens: this one must be in the list
    data = _recipe_noise(np.random.default_rng(0))
    noisy, clean = tiny_denoiser.make_batch(
        data, "train", 4, 16000, np.random.default_rng(1), 0.0, 0.5, 0.0, 0.5
    )
    assert noisy.shape == clean.shape == (4, 16000)
    assert str(tmp_path / "probe") in opened
    held_out_dir = str(corpus.OPENSFX.parent)
    assert not [p for p in opened if p.startswith(held_out_dir)]


def _wav(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _catalogue(path: Path, sounds: list[tuple[str, bytes]]) -> None:
    """An OpenTTD sound catalogue: (offset | 0x80000000, size) pairs, then length-prefixed names and WAVs."""
    offset, header, body = 8 * len(sounds), b"", b""
    for name, data in sounds:
        entry = bytes([len(name) + 1]) + name.encode("latin-1") + b"\0" + data
        header += struct.pack("<II", (offset + len(body)) | 0x80000000, len(entry))
        body += entry
    path.write_bytes(header + body)


def test_catalogue_reader_and_looping(corpus: ModuleType, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(44100) / 44100) + 0.01 * rng.standard_normal(44100)
    silence_then_tone = np.concatenate([np.zeros(22050), tone])
    cat = tmp_path / "opensfx.cat"
    _catalogue(
        cat, [('"Helicopter". By someone.', _wav(silence_then_tone, 44100)), ('"Unused". Empty.', b"")]
    )
    sounds = corpus.opensfx_sounds(cat)
    assert list(sounds) == ["Helicopter"]
    assert abs(len(sounds["Helicopter"]) - 1.5 * 16000) < 50  # resampled to 16 kHz
    with pytest.raises(FileNotFoundError, match="lacks"):
        corpus.held_out_recordings(cat)  # the other titles are missing
    trimmed = corpus._trim(sounds["Helicopter"])
    assert abs(len(trimmed) - 16000) <= 800  # the half second of silence is gone
    x = corpus.looped([trimmed], 16000 * 5, np.random.default_rng(1))
    assert x.shape == (16000 * 5,) and abs(float(np.sqrt(np.mean(x**2))) - 1) < 1e-3


def _share_below_1k(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float(spec[np.fft.rfftfreq(len(x), 1 / 16000) < 1000].sum() / spec.sum())


def test_installed_held_out_families_have_the_spectra_they_are_described_by(corpus: ModuleType) -> None:
    if not corpus.OPENSFX.exists():
        pytest.skip("openttd-opensfx is not installed (apt-get install openttd-opensfx)")
    families = corpus.held_out_recordings()
    assert set(families) == {"engines", "wind", "machinery"}
    for family in ("engines", "wind"):  # low-frequency-heavy, the kind the denoiser was first weak on
        assert all(_share_below_1k(x) > 0.9 for x in families[family]), family
    shares = [_share_below_1k(x) for x in families["machinery"]]
    assert min(shares) < 0.3 and all(s < 0.9 for s in shares), shares  # broadband: not more of the same


@pytest.mark.torch
def test_recipe_fine_tunes_from_the_shipped_onnx_without_held_out_files(
    corpus: ModuleType,
    opened: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A few steps of the recipe from the exported model, with the low-frequency kinds: it runs, exports a
    streaming model, and opens nothing held out."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    mean, std = rng.normal(-5, 1, 161).astype(np.float32), rng.uniform(0.5, 2, 161).astype(np.float32)
    hp, weights = tiny_denoiser.weights_from_onnx(SHIPPED, mean, std)
    model = tiny_denoiser.make_model(mean, std, **hp)
    model.load_state_dict(weights)
    import onnxruntime as ort

    feats = (rng.standard_normal((1, 30, 161)) * 2 - 5).astype(np.float32)
    state = np.zeros((hp["layers"], 1, hp["hidden"]), np.float32)
    ref = ort.InferenceSession(str(SHIPPED), providers=["CPUExecutionProvider"]).run(
        None, {"input": feats, "state_in_0": state}
    )[0]
    with torch.no_grad():
        got = model(torch.from_numpy(feats), torch.from_numpy(state))[0].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)  # unfolded for another normalisation, same function

    # the recipe's own noise bank; random stand-in speech (the real corpus is the other recipe test's)
    data = _recipe_noise(np.random.default_rng(1))
    data.update({k.replace("train", "val"): v for k, v in data.items() if k != "boost_train"})
    monkeypatch.setattr(tiny_denoiser, "build_data", lambda *a, **k: dict(data))
    out = tmp_path / "run"
    args = ["--out", str(out), "--init", str(SHIPPED), "--batch", "2", "--clip", "1", "--tts", "8"]
    args += ["--steps", "2", "--log-every", "2", "--eval-every", "2", "--val-batches", "1", "--broad", "0.5"]
    tiny_denoiser.main(args)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2] and np.isfinite(log[0]["loss"]) and "val_sisdr_gain" in log[0]
    assert (out / "model.onnx").exists()
    score = ["--out", str(tmp_path / "score"), "--init", str(out / "best.pt"), "--val-batches", "1"]
    tiny_denoiser.main([*score, "--validate-only"])
    printed = json.loads(next(x for x in capsys.readouterr().out.splitlines() if x.startswith("{")))
    assert printed["val_sisdr_gain"] == pytest.approx(log[0]["val_sisdr_gain"], abs=1e-4)  # the same sets
    assert not [p for p in opened if p.startswith(str(corpus.OPENSFX.parent))]
