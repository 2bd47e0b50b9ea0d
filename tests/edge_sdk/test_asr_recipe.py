"""The small recogniser's recipe (``edge-sdk train asr``) end to end on a handful of utterances, its
transducer loss against the textbook recursion, and the shipped ``zoo/digits-asr`` models: consistent
files, run by our decoders, and a real TIDIGITS recording transcribed."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.asr import Recognizer
from edge_sdk.asr.acoustic import model_info
from edge_sdk.asr.frames import META_FRONT_END, META_KIND
from edge_sdk.asr.text import normalize, wer
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.asr.transducer import OnnxTransducer
from edge_sdk.errors import BadInputError
from edge_sdk.train import asr_data

torch = pytest.importorskip("torch")
pytest.importorskip("soxr")

SHIPPED = Path(__file__).resolve().parents[2] / "edge_sdk" / "zoo" / "digits-asr"
TIDIGITS = Path("/usr/share/pocketsphinx/test/data/tidigits/dhd.2934z.raw")
FILES = ("model.onnx", "encoder.onnx", "decoder.onnx", "joiner.onnx")


def test_transducer_loss_equals_the_textbook_recursion() -> None:
    from edge_sdk.train.asr_model import rnnt_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 6)
    targets = torch.randint(1, 6, (2, 3))
    t_lens, u_lens = torch.tensor([5, 4]), torch.tensor([3, 2])
    got = rnnt_loss(logits, targets, t_lens, u_lens)
    lp = logits.log_softmax(-1).double()
    for b in range(2):
        n_t, n_u = int(t_lens[b]), int(u_lens[b])
        a = np.full((n_t, n_u + 1), -np.inf)
        for t in range(n_t):
            for u in range(n_u + 1):
                if t == u == 0:
                    a[t, u] = 0.0
                    continue
                ways = []
                if t:
                    ways.append(a[t - 1, u] + float(lp[b, t - 1, u, 0]))
                if u:
                    ways.append(a[t, u - 1] + float(lp[b, t, u - 1, targets[b, u - 1]]))
                a[t, u] = np.logaddexp.reduce(ways)
        assert math.isclose(float(got[b]), -(a[-1, -1] + float(lp[b, n_t - 1, n_u, 0])), rel_tol=1e-5)


def test_a_word_fires_on_each_rise_to_the_threshold() -> None:
    from edge_sdk.train.asr import fires

    trace = np.array([0.9, 0.2, 0.6, 0.7, 0.1, 0.55, 0.0])
    assert [fires(trace, t) for t in (0.5, 0.65, 0.8, 0.95)] == [3, 2, 1, 0]


def test_tokens_are_whole_words_with_the_blank_first() -> None:
    lines = asr_data.tokens_txt().splitlines()
    assert lines[0] == "<blk> 0" and len(lines) == len(asr_data.VOCAB) + 1
    assert asr_data.encode(["two", "oh", "stop"]) == [3, 11, 20]


@pytest.mark.network
@pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("flite")), reason="needs espeak-ng and flite"
)
def test_recipe_trains_and_exports_models_our_decoders_run(
    tmp_path: Path, embedding_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_sdk.train.asr import build_arg_parser, train

    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    out = tmp_path / "asr"
    args = build_arg_parser().parse_args(
        ["--out", str(out), "--sentences", "10", "--dev-sentences", "3", "--test-sentences", "0",
         "--steps", "4", "--eval-every", "2", "--batch", "4", "--passes", "1", "--hidden", "32",
         "--engines", "espeak-ng,flite", "--noise-seconds", "2", "--filler", "0.5"]
    )  # fmt: skip
    report = train(args)
    assert set(report["models"]) == {"ctc", "transducer"}
    assert {p.name for p in out.iterdir()} >= {*FILES, "tokens.txt", "MODEL_CARD.md", "eval.json"}
    tokens = TokenTable.from_file(out / "tokens.txt")
    # --filler: other speech is one more token, and the card says how the model was trained to hear it
    assert tokens.symbols[-1] == asr_data.FILLER and len(tokens) == len(asr_data.VOCAB) + 2
    assert "running speech of other words" in (out / "MODEL_CARD.md").read_text()
    # ...and its CTC model carries the spotting threshold chosen on the development set
    from edge_sdk.stages.kws import META_THRESHOLDS
    from edge_sdk.train.asr import THRESHOLDS, spotted_words

    chosen = report["models"]["ctc"]["spotting"]["threshold"]
    assert chosen in THRESHOLDS and "transducer" not in report["models"]["ctc"].get("spotting", {})
    meta = model_info(out / "model.onnx")[0]
    assert json.loads(meta[META_THRESHOLDS]) == dict.fromkeys(spotted_words(), chosen)
    audio = asr_data.speak(["two", "five"], asr_data.kws_data.Voice("espeak-ng", "en-us+m1"))
    ctc = Recognizer.from_ctc(out / "model.onnx")
    frames = ctc.engine.features(audio)
    lp = ctc.engine.log_probs(audio)
    assert lp.shape == (len(frames), len(tokens))
    assert np.allclose(np.exp(lp).sum(1), 1.0, atol=1e-4)
    for beam in (1, 8):
        assert isinstance(Recognizer.from_ctc(out / "model.onnx", beam=beam).transcribe(audio).text, str)
    rnnt = OnnxTransducer.from_dir(out)
    assert (rnnt.context_size, rnnt.vocab_size) == (2, len(tokens))
    assert rnnt.encode(frames).shape[0] == len(frames)
    for method in ("greedy_search", "modified_beam_search"):
        assert isinstance(Recognizer.from_transducer(out, method=method).transcribe(audio).text, str)


def test_shipped_files_agree_on_tokens_and_front_end() -> None:
    tokens = TokenTable.from_file(SHIPPED / "tokens.txt")
    assert (SHIPPED / "tokens.txt").read_text() == asr_data.tokens_txt()
    metas = [model_info(SHIPPED / f)[0] for f in FILES]
    assert [m[META_KIND] for m in metas] == ["ctc", "transducer", "transducer", "transducer"]
    settings = {m[META_FRONT_END] for m in metas}
    assert len(settings) == 1 and json.loads(settings.pop())["front_end"] == "speech-embedding"
    assert int(metas[2]["vocab_size"]) == len(tokens) and metas[2]["context_size"] == "2"
    assert sum((SHIPPED / f).stat().st_size for f in FILES) < 4_000_000
    assert (SHIPPED / "MODEL_CARD.md").is_file()


@pytest.mark.network
@pytest.mark.skipif(not TIDIGITS.exists(), reason="needs pocketsphinx-testdata")
def test_shipped_ctc_transcribes_a_real_tidigits_recording(
    embedding_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    audio = (np.fromfile(TIDIGITS, dtype="<i2") / 32768.0).astype(np.float32)
    hyp = Recognizer.from_ctc(SHIPPED / "model.onnx", beam=8).transcribe(audio).text
    result = wer(
        ["two nine three four zero"], [hyp], normalizer=lambda s: normalize(s, digits_oh_as_zero=True)
    )
    assert result.wer < 0.5, hyp


@pytest.mark.network
@pytest.mark.skipif(not Path("/usr/share/asterisk/sounds/en/digits/7.wav").exists(), reason="needs Asterisk")
def test_transcribe_runs_the_bundled_digits_model_by_its_zoo_name(
    embedding_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_sdk.cli import main

    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    wav = "/usr/share/asterisk/sounds/en/digits/7.wav"  # 8 kHz: resampled by the source
    assert main(["transcribe", "--json", "--model", "zoo:digits-asr", wav]) == 0
    (result,) = json.loads(capsys.readouterr().out)["files"]
    assert result["text"] == "seven" and result["segments"][0]["tokens"] == ["▁seven"]
    with pytest.raises(BadInputError, match="language is chosen for Whisper models only"):
        Recognizer.from_model("zoo:digits-asr", language="en")
