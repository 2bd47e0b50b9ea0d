"""CTC and transducer models as recognisers: Kaldi fbank against kaldi-native-fbank, a transducer in
sherpa-onnx's layout transcribed by us and by sherpa-onnx from the same real recording, and a CTC model's
layouts, logits and mistakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edge_sdk.asr import Recognizer
from edge_sdk.asr.features import kaldi_fbank
from edge_sdk.devices.sources.wav_file import read_wav
from edge_sdk.errors import BadInputError
from tests.edge_sdk.test_asr_transducer import SYMBOLS, Decoder, Encoder, Joiner, export

torch = pytest.importorskip("torch")

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_wav(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav")[0]


def test_kaldi_fbank_matches_kaldi_native_fbank_as_sherpa_onnx_sets_it(speech: np.ndarray) -> None:
    knf = pytest.importorskip("kaldi_native_fbank")
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = 80
    opts.mel_opts.high_freq = -400
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, speech.tolist())
    fbank.input_finished()
    expected = np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])
    ours = kaldi_fbank(speech)
    assert ours.shape == expected.shape == (round(len(speech) / 160), 80)
    np.testing.assert_allclose(ours, expected, atol=1e-3, rtol=0)
    assert kaldi_fbank(np.zeros(0, np.float32)).shape == (0, 80)


class NormalisingEncoder(Encoder):
    """The strided encoder on features normalised per utterance: log-mel values span tens of units, which
    would hold a random encoder on tanh's flat ends."""

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True) + 1e-3)
        return super().forward(x, x_lens)


@pytest.fixture(scope="module")
def transducer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    return export(tmp_path_factory.mktemp("fbank-transducer"), NormalisingEncoder(), Decoder(), Joiner())


@pytest.mark.parametrize("method", ["greedy_search", "modified_beam_search"])
def test_a_transducer_gives_what_sherpa_onnx_gives_on_the_same_real_recording(
    transducer_dir: Path, speech: np.ndarray, method: str
) -> None:
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    ours = Recognizer.from_transducer(transducer_dir, method=method, beam=4).transcribe(speech)
    recognizer = sherpa_onnx.OfflineRecognizer.from_transducer(
        encoder=str(transducer_dir / "encoder.onnx"),
        decoder=str(transducer_dir / "decoder.onnx"),
        joiner=str(transducer_dir / "joiner.onnx"),
        tokens=str(transducer_dir / "tokens.txt"),
        num_threads=1,
        decoding_method=method,
        max_active_paths=4,
    )
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, speech)
    recognizer.decode_stream(stream)
    assert list(stream.result.tokens) == ours.tokens
    assert len(ours.tokens) > 3  # a random model, but one that says something


class TinyCtc(torch.nn.Module):
    def __init__(self, vocab: int, channels_first: bool, logits: bool) -> None:
        super().__init__()
        self.proj, self.channels_first, self.logits = torch.nn.Linear(80, vocab), channels_first, logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x.transpose(1, 2) if self.channels_first else x) / 3.0
        return y if self.logits else torch.log_softmax(y, dim=-1)


def ctc_model(folder: Path, channels_first: bool = False, logits: bool = False, kind: str = "ctc") -> Path:
    torch.manual_seed(5)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    shape = (1, 80, 50) if channels_first else (1, 50, 80)
    time_axis = 2 if channels_first else 1
    torch.onnx.export(
        TinyCtc(len(SYMBOLS), channels_first, logits).eval(),
        (torch.randn(*shape),),
        str(path),
        input_names=["features"],
        output_names=["log_probs"],
        dynamic_axes={"features": {0: "N", time_axis: "T"}, "log_probs": {0: "N", 1: "T"}},
        opset_version=17,
        dynamo=False,
    )
    model = onnx.load(str(path))
    model.metadata_props.add(key="edge_sdk.asr.kind", value=kind)
    onnx.save(model, str(path))
    (folder / "tokens.txt").write_text("".join(f"{s} {i}\n" for i, s in enumerate(SYMBOLS)), encoding="utf-8")
    return path


def test_a_ctc_model_is_decoded_the_same_in_either_layout_and_from_logits(
    tmp_path: Path, speech: np.ndarray
) -> None:
    from edge_sdk.asr.ctc import greedy

    plain = Recognizer.from_ctc(ctc_model(tmp_path / "a"))
    nemo_layout = Recognizer.from_ctc(ctc_model(tmp_path / "b", channels_first=True))
    from_logits = Recognizer.from_ctc(ctc_model(tmp_path / "c", logits=True))
    expected = plain.transcribe(speech)
    assert expected.tokens and nemo_layout.transcribe(speech).tokens == expected.tokens
    assert from_logits.transcribe(speech).tokens == expected.tokens
    lp = plain.engine.log_probs(speech)
    assert lp.shape == (round(len(speech) / 160), len(SYMBOLS))
    np.testing.assert_allclose(np.exp(from_logits.engine.log_probs(speech)).sum(-1), 1.0, atol=1e-5)
    assert [SYMBOLS[t] for t in greedy(lp).tokens] == expected.tokens
    beam = Recognizer.from_ctc(tmp_path / "a" / "model.onnx", beam=8).transcribe(speech)
    assert beam.avg_logprob * len(beam.tokens) >= expected.avg_logprob * len(expected.tokens) - 1e-6


def test_a_ctc_model_of_another_kind_or_with_the_wrong_tokens_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="transducer model, not a CTC model"):
        Recognizer.from_ctc(ctc_model(tmp_path / "t", kind="transducer"))
    path = ctc_model(tmp_path / "w")
    (tmp_path / "w" / "tokens.txt").write_text("<blk> 0\na 1\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="12 classes per frame; the token table has 2"):
        Recognizer.from_ctc(path).transcribe(np.zeros(16000, np.float32))
    with pytest.raises(BadInputError, match="no token table"):
        Recognizer.from_ctc(path, tokens=tmp_path / "missing.txt")


def test_the_live_stage_runs_a_ctc_model_and_gives_token_times_in_stream_seconds(tmp_path: Path) -> None:
    from edge_sdk.devices.sources.wav_file import WavFile
    from edge_sdk.live.audio import AudioLoop
    from edge_sdk.stages import Transcript
    from edge_sdk.stages.chain import audio_stages

    path = ctc_model(tmp_path / "ctc")
    assert Recognizer.from_model(path).kind == "ctc"
    events: list[object] = []
    stages, _ = audio_stages(vad="energy", asr=path)
    with WavFile(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav") as source:
        AudioLoop(source, stages, on_event=events.append).run()
    finals = [e for e in events if isinstance(e, Transcript)]
    assert finals and all(t.stage == "asr.ctc" for t in finals)
    for t in finals:
        assert len(t.token_times) == len(t.tokens) > 0
        assert t.start <= t.token_times[0] and t.token_times[-1] <= t.end
        assert list(t.token_times) == sorted(t.token_times)
