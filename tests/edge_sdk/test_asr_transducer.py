"""Transducer decoding on a tiny random stateless transducer exported in the sherpa-onnx / icefall layout:
greedy and modified beam search match a plain torch reference and sherpa-onnx itself, streaming encoder
output in chunks changes nothing, and bad models and inputs are refused clearly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.asr.hotwords import Hotwords
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.asr.transducer import OnnxTransducer, TransducerDecoder
from edge_sdk.errors import BadInputError

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
nn = torch.nn

VOCAB, CHANNELS, CONTEXT, FEATURES = 12, 16, 2, 80
SYMBOLS = ("<blk>", *"abcdefghijk")


class Encoder(nn.Module):
    """Features [N, T, 80] → [N, T // 4, C]: a strided convolution, as a subsampling encoder does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(FEATURES, CHANNELS, kernel_size=4, stride=4)

    def forward(self, x, x_lens):
        return torch.tanh(self.conv(x.transpose(1, 2))).transpose(1, 2), x_lens // 4


class PositionEncoder(nn.Module):
    """Output that depends on nothing but a fixed table, so that two programs computing different features
    from the same audio still hand their searches the same encoder output."""

    def __init__(self, frames: int = 24) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(1, frames, CHANNELS))

    def forward(self, x, x_lens):
        touch = 0.0 * x[:, :1, :1].mean()  # keeps x an input of the graph
        return torch.tanh(self.table * 2.0) + touch, x_lens * 0 + self.table.shape[1]


class Decoder(nn.Module):
    """icefall's stateless decoder: an embedding (blank and -1 embed as zeros) and a convolution over the
    context."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, CHANNELS, padding_idx=0)
        self.conv = nn.Conv1d(CHANNELS, CHANNELS, kernel_size=CONTEXT, groups=CHANNELS // 4, bias=False)

    def forward(self, y):
        e = self.embedding(y.clamp(min=0)) * (y >= 0).unsqueeze(-1)
        return torch.relu(self.conv(e.permute(0, 2, 1)).squeeze(-1))


class Joiner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.dec, self.out = nn.Linear(CHANNELS, 32), nn.Linear(CHANNELS, 32), nn.Linear(32, VOCAB)
        with torch.no_grad():
            self.out.weight.mul_(6.0)  # peaky enough that argmax choices are far from ties
            self.out.bias[0] += 1.5  # and blank often wins, as in a trained model

    def forward(self, encoder_out, decoder_out):
        return self.out(torch.tanh(self.enc(encoder_out) + self.dec(decoder_out)))


def export(folder: Path, encoder: nn.Module, decoder: nn.Module, joiner: nn.Module) -> Path:
    """The three ONNX files in the sherpa-onnx layout, with the decoder's metadata, and tokens.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    batch = {0: "N"}
    jobs = {
        "encoder": (encoder, (torch.randn(1, 40, FEATURES), torch.tensor([40])), ["x", "x_lens"],
                    ["encoder_out", "encoder_out_lens"],
                    {"x": {0: "N", 1: "T"}, "x_lens": batch, "encoder_out": {0: "N", 1: "T"}}),
        "decoder": (decoder, (torch.zeros(1, CONTEXT, dtype=torch.int64),), ["y"], ["decoder_out"],
                    {"y": batch, "decoder_out": batch}),
        "joiner": (joiner, (torch.randn(1, CHANNELS), torch.randn(1, CHANNELS)),
                   ["encoder_out", "decoder_out"], ["logit"],
                   {"encoder_out": batch, "decoder_out": batch, "logit": batch}),
    }  # fmt: skip
    for name, (module, args, inputs, outputs, axes) in jobs.items():
        path = folder / f"{name}.onnx"
        torch.onnx.export(
            module.eval(), args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
            opset_version=17, dynamo=False,
        )  # fmt: skip
        if name == "decoder":
            model = onnx.load(str(path))
            for key, value in {"context_size": CONTEXT, "vocab_size": VOCAB}.items():
                model.metadata_props.add(key=key, value=str(value))
            onnx.save(model, str(path))
    (folder / "tokens.txt").write_text("".join(f"{s} {i}\n" for i, s in enumerate(SYMBOLS)), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def modules():
    torch.manual_seed(0)
    return Encoder(), Decoder(), Joiner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, modules) -> Path:
    return export(tmp_path_factory.mktemp("transducer"), *modules)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> OnnxTransducer:
    return OnnxTransducer.from_dir(model_dir)


@pytest.fixture(scope="module")
def tokens(model_dir: Path) -> TokenTable:
    return TokenTable.from_file(model_dir / "tokens.txt")


def features(seed: int, frames: int = 160) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, (frames, FEATURES)).astype(np.float32)


# --- plain torch references -----------------------------------------------------------------------------


def reference_greedy(modules, x: np.ndarray) -> list[int]:
    """One symbol per frame, the decoder rerun after each emitted token."""
    encoder, decoder, joiner = modules
    with torch.no_grad():
        enc, _ = encoder(torch.from_numpy(x)[None], torch.tensor([len(x)]))
        ys = [0] * CONTEXT
        dec = decoder(torch.tensor([ys[-CONTEXT:]]))
        for t in range(enc.shape[1]):
            y = int(joiner(enc[:, t], dec).argmax())
            if y != 0:
                ys.append(y)
                dec = decoder(torch.tensor([ys[-CONTEXT:]]))
    return ys[CONTEXT:]


def reference_beam(modules, x: np.ndarray, beam: int) -> tuple[list[int], float]:
    """Modified beam search written out: every (hypothesis, token) scored, the best ``beam`` kept, equal token
    sequences merged by log-add; the winner by score per token (context blanks counted)."""
    encoder, decoder, joiner = modules
    with torch.no_grad():
        enc, _ = encoder(torch.from_numpy(x)[None], torch.tensor([len(x)]))
        hyps: dict[tuple[int, ...], float] = {(0,) * CONTEXT: 0.0}
        for t in range(enc.shape[1]):
            candidates = []
            for ys, score in hyps.items():
                logp = torch.log_softmax(joiner(enc[:, t], decoder(torch.tensor([ys[-CONTEXT:]]))), -1)[0]
                for token in range(VOCAB):
                    new = ys if token == 0 else (*ys, token)
                    candidates.append((score + float(logp[token]), new))
            candidates.sort(key=lambda c: -c[0])
            hyps = {}
            for score, ys in candidates[:beam]:
                hyps[ys] = float(np.logaddexp(hyps[ys], score)) if ys in hyps else score
    ys, score = max(hyps.items(), key=lambda kv: kv[1] / len(kv[0]))
    return list(ys[CONTEXT:]), score


# --- tests ----------------------------------------------------------------------------------------------


def test_the_model_is_read_from_its_onnx_files_and_metadata(model: OnnxTransducer) -> None:
    assert (model.context_size, model.vocab_size, model.feature_dim) == (CONTEXT, VOCAB, FEATURES)
    assert model.encode(features(0, 160)).shape == (40, CHANNELS)


@pytest.mark.parametrize("seed", range(3))
def test_greedy_search_matches_the_torch_reference(modules, model, tokens, seed: int) -> None:
    x = features(seed)
    result = model.search(tokens).decode(model.encode(x))
    assert list(result.tokens) == reference_greedy(modules, x)
    assert len(result.tokens) > 3  # the random model does emit: the comparison is not empty against empty
    assert list(result.frames) == sorted(result.frames) and len(set(result.frames)) == len(result.frames)
    assert result.text == "".join(SYMBOLS[t] for t in result.tokens)


@pytest.mark.parametrize("seed", range(3))
def test_modified_beam_search_matches_the_torch_reference(modules, model, seed: int) -> None:
    x = features(10 + seed)
    result = model.search(method="modified_beam_search", beam=4).decode(model.encode(x))
    ys, score = reference_beam(modules, x, beam=4)
    assert list(result.tokens) == ys
    assert result.score == pytest.approx(score, rel=1e-4, abs=1e-4)


def test_several_symbols_per_frame_are_allowed_when_asked(model: OnnxTransducer) -> None:
    enc = model.encode(features(3))
    one = model.search(max_symbols_per_frame=1).decode(enc)
    three = model.search(max_symbols_per_frame=3).decode(enc)
    assert max(np.bincount(one.frames)) == 1
    assert len(three.tokens) >= len(one.tokens)


@pytest.mark.parametrize("method", ["greedy_search", "modified_beam_search"])
def test_streaming_encoder_output_in_chunks_gives_exactly_the_whole_result(model, tokens, method) -> None:
    enc = model.encode(features(5, 400))
    hot = Hotwords([[3, 4], [5]], bonus=0.5) if method == "modified_beam_search" else None
    search = model.search(tokens, method=method, hotwords=hot)
    whole = search.decode(enc)
    stream = search.stream()
    for chunk in np.split(enc, [1, 7, 8, 30, 61]):
        stream.accept(chunk)
        partial = stream.partial()
        assert partial.tokens[: len(partial.frames)] == partial.tokens
    assert stream.finish() == whole


def test_search_runs_on_any_callables_and_a_blank_only_joiner_gives_nothing() -> None:
    calls = []

    def decoder_fn(y: np.ndarray) -> np.ndarray:
        calls.append(y.copy())
        return np.zeros((len(y), 4), dtype=np.float32)

    def joiner_fn(enc: np.ndarray, dec: np.ndarray) -> np.ndarray:
        logits = np.zeros((len(enc), 5), dtype=np.float32)
        logits[:, 0] = 5.0
        return logits

    for method in ("greedy_search", "modified_beam_search"):
        calls.clear()
        search = TransducerDecoder(decoder_fn, joiner_fn, context_size=2, method=method)
        result = search.decode(np.ones((9, 3), dtype=np.float32))
        assert result.tokens == () and result.frames == ()
        # each context's decoder output is computed once and kept, the all-blank one first
        contexts = [tuple(row) for call in calls for row in call.tolist()]
        assert contexts[0] == (0, 0) and len(contexts) == len(set(contexts))
        assert len(calls) == (1 if method == "greedy_search" else 2)
        assert result.score == pytest.approx(9 * (5.0 - math.log(math.exp(5.0) + 4)), rel=1e-6)


def test_sherpa_onnx_finds_the_same_tokens_on_the_same_model(tmp_path: Path, model_dir: Path) -> None:
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    torch.manual_seed(1)
    folder = export(tmp_path / "positional", PositionEncoder(), Decoder(), Joiner())
    ours_model = OnnxTransducer.from_dir(folder)
    encoder_out = ours_model.encode(features(0, 100))  # the same whatever the features
    table = TokenTable.from_file(folder / "tokens.txt")
    audio = np.random.default_rng(0).normal(0.0, 0.1, 16000).astype(np.float32)
    for method in ("greedy_search", "modified_beam_search"):
        recognizer = sherpa_onnx.OfflineRecognizer.from_transducer(
            encoder=str(folder / "encoder.onnx"), decoder=str(folder / "decoder.onnx"),
            joiner=str(folder / "joiner.onnx"), tokens=str(folder / "tokens.txt"), num_threads=1,
            decoding_method=method, max_active_paths=4,
        )  # fmt: skip
        stream = recognizer.create_stream()
        stream.accept_waveform(16000, audio)
        recognizer.decode_stream(stream)
        ours = ours_model.search(table, method=method, beam=4).decode(encoder_out)
        assert len(ours.tokens) > 3
        assert list(stream.result.tokens) == [SYMBOLS[t] for t in ours.tokens], method
        # sherpa gives times in seconds: output frame × subsampling 4 × 10 ms feature shift
        assert np.allclose(stream.result.timestamps, np.array(ours.frames) * 0.04), method


# --- bad input ------------------------------------------------------------------------------------------


def test_bad_encoder_output_is_refused(model: OnnxTransducer) -> None:
    search = model.search()
    with pytest.raises(BadInputError, match="2-D"):
        search.decode(np.zeros((1, 5, CHANNELS), dtype=np.float32))
    with pytest.raises(BadInputError, match="NaN"):
        search.decode(np.full((3, CHANNELS), np.nan, dtype=np.float32))
    stream = search.stream()
    stream.accept(np.zeros((2, CHANNELS), dtype=np.float32))
    with pytest.raises(BadInputError, match="8 channels per frame, expected 16"):
        stream.accept(np.zeros((2, 8), dtype=np.float32))
    with pytest.raises(BadInputError, match="80"):
        model.encode(np.zeros((40, 40), dtype=np.float32))


def test_bad_settings_and_model_files_are_refused(model: OnnxTransducer, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown transducer decoding method"):
        model.search(method="beam")
    with pytest.raises(BadInputError, match="modified_beam_search"):
        model.search(hotwords=Hotwords([[1]]))
    with pytest.raises(BadInputError, match="3 symbols but the model 12"):
        model.search(TokenTable(("<blk>", "a", "b")))
    with pytest.raises(BadInputError, match="not found"):
        OnnxTransducer.from_dir(tmp_path)
    (tmp_path / "encoder.onnx").write_bytes(b"not a model")
    for part in ("decoder", "joiner"):
        (tmp_path / f"{part}.onnx").write_bytes(b"")
    with pytest.raises(BadInputError, match="cannot load"):
        OnnxTransducer.from_dir(tmp_path)
