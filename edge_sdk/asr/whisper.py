"""Whisper speech recognition over a built model folder (see ``whisper_build``): log-mel → encoder →
autoregressive decoding with a KV cache, greedy or beam search, text out.

By default (``window="audio"``) the encoder sees only the audio there is, not Whisper's fixed 30 s window:
a 3 s utterance costs a fraction of the encoder work (whisper.cpp's ``audio_ctx`` idea). Whisper was
trained on 30 s windows and, given only the speech, often starts its transcript again once the speech
ends. So the short window is the audio, ``PAD_SECONDS`` of silence, and then ``TAIL_SECONDS`` more silence
placed at the *last* rows of the positional table, where Whisper always saw the end of its 30 s: the
decoder sees where the window ends. Audio under ``TAIL_FROM_SECONDS`` (a word or two) gets no tail.
These settings were chosen on a development split of Asterisk prompts that ``bench/asr_quality.py`` does
not score (73 sentences, 51 short prompts; int8): pooled word error rate 9.2 % with 0.5 s of padding
alone, 6.8 % with 1 s, 6.6 % with the tail everywhere, and 5.2 % on the full window at 4.4 times the CPU.
The tail helped sentences (4.6 → 4.1 %) and hurt single words (29 → 33 %), hence the threshold; as
shipped: 6.6 % (sentences 4.4 %, short prompts 29 %).
``window="full"`` encodes 30 s as Whisper does.
Audio longer than 30 s is cut into 30 s windows, each transcribed in turn.

Decoding runs without timestamps: the prompt is ``<|startoftranscript|>`` (then the language and
``<|transcribe|>`` on a multilingual model) and ``<|notimestamps|>``; control and timestamp tokens are
never sampled, nor the model's non-speech symbols; a blank or end of text is refused as the first token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.asr.scoring import log_softmax
from edge_sdk.asr.tokenizer import WhisperTokenizer
from edge_sdk.audio import whisper_mel
from edge_sdk.errors import BadInputError

SAMPLE_RATE = 16000
WINDOW_SECONDS = 30.0
PAD_SECONDS = 1.0
"""Silence after the audio in a short window, at the positions that follow it."""
TAIL_SECONDS = 4.0
"""Silence at the end of a short window, at the positional table's last rows (see the module docstring)."""
TAIL_FROM_SECONDS = 2.0
"""Audio shorter than this (a word or two) gets no tail: there it made Whisper say the word twice."""
TOKENS_PER_SECOND = 12.0  # English speech is 3-5 tokens a second; more is a decoder repeating itself
MIN_TOKENS = 16
WINDOWS = ("audio", "full")


def mel_frames(audio: np.ndarray, pad_seconds: float = PAD_SECONDS) -> np.ndarray:
    """Whisper's log-mel ``[80, frames]`` of ``audio`` (16 kHz float) plus ``pad_seconds`` of silence, with
    Whisper's own per-input clamp, centred frames, an even frame count, at most 30 s."""
    pad = np.zeros(int(round(pad_seconds * SAMPLE_RATE)), np.float32)
    x = np.concatenate([np.asarray(audio, np.float32).reshape(-1), pad])
    if len(x) <= whisper_mel.N_FFT // 2:
        x = np.concatenate([x, np.zeros(whisper_mel.N_FFT, np.float32)])
    mel = whisper_mel.log_mel(x, floor=None, center=True)
    n = min(len(mel), int(WINDOW_SECONDS * SAMPLE_RATE) // whisper_mel.HOP)
    n -= n % 2
    return np.ascontiguousarray(mel[:n].T)


def encoder_inputs(audio: np.ndarray, window: str = "audio", positions: int = 1500) -> dict[str, np.ndarray]:
    """The encoder's ``mel`` ``[1, 80, frames]`` and ``position_ids`` for ``audio`` (at most 30 s) in
    ``window`` ``"audio"`` (the audio, its padding, and a tail of silence at the table's last rows) or
    ``"full"`` (padded to 30 s, Whisper's own layout); ``positions`` is the table's length."""
    seconds = len(audio) / SAMPLE_RATE
    if window == "full":
        mel = mel_frames(audio, max(PAD_SECONDS, WINDOW_SECONDS - seconds))
        return {"mel": mel[None], "position_ids": np.arange(mel.shape[1] // 2, dtype=np.int64)}
    mel = mel_frames(audio, PAD_SECONDS)
    head = mel.shape[1] // 2
    tail = max(0, min(int(TAIL_SECONDS * 50), positions - head)) if seconds >= TAIL_FROM_SECONDS else 0
    # Silence in Whisper's log-mel is its clamp floor, the smallest value the input has.
    mel = np.concatenate([mel, np.full((mel.shape[0], 2 * tail), mel.min(), np.float32)], axis=1)
    ids = np.concatenate([np.arange(head), np.arange(positions - tail, positions)]).astype(np.int64)
    return {"mel": mel[None], "position_ids": ids}


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: ``beam`` 1 is greedy; ``language`` is a code such as ``"en"`` (multilingual models
    only; None is English); ``window`` ``"audio"`` encodes only the audio there is, ``"full"`` a 30 s
    window as Whisper was trained (slower, more accurate; see the module docstring)."""

    beam: int = 1
    language: str | None = None
    tokens_per_second: float = TOKENS_PER_SECOND
    window: str = "audio"

    def __post_init__(self) -> None:
        if isinstance(self.beam, bool) or not isinstance(self.beam, int) or self.beam < 1:
            raise BadInputError(f"beam must be an int >= 1, not {self.beam!r}")
        if self.window not in WINDOWS:
            raise BadInputError(f"window must be one of {', '.join(WINDOWS)}, not {self.window!r}")


@dataclass
class Transcription:
    """What one stretch of audio said: ``text``, its ``tokens`` (ids and strings), the mean log
    probability of the tokens, the seconds of audio it covers, and where the model gives them (CTC,
    transducers) each token's time in seconds from the start; Whisper without timestamps gives none."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    avg_logprob: float = 0.0
    duration: float = 0.0
    times: list[float] = field(default_factory=list)


def looping(tokens: list[int]) -> int:
    """How many trailing tokens are a decoder stuck in a loop (0 if none): the last n-gram said for the
    4th time running when n <= 2 tokens, the 3rd when n < 6, the 2nd when longer (a whole phrase said
    twice back to back). Digit strings repeat a word three times ("oh oh oh") in real speech, so single
    tokens need a fourth."""
    for n in range(1, 65):
        times = 4 if n <= 2 else 3 if n < 6 else 2
        if len(tokens) < n * times:
            continue
        tail = tokens[-n:]
        if all(tokens[-(k + 1) * n : len(tokens) - k * n] == tail for k in range(1, times)):
            return n * (times - 1)
    return 0


class WhisperDecoder:
    """The encoder and decoder sessions of one built Whisper folder with its tokenizer and settings."""

    def __init__(self, folder: Path, encoder: Any, decoder: Any, settings: dict[str, Any]) -> None:
        self.folder = folder
        self.encoder, self.decoder, self.settings = encoder, decoder, settings
        self.tokenizer = WhisperTokenizer.from_folder(folder)
        vocab = len(self.tokenizer.tokens)
        blocked = np.zeros(vocab, bool)
        blocked[sorted(self.tokenizer.special)] = True  # control and timestamp tokens
        blocked[[t for t in settings.get("suppress", []) if 0 <= t < vocab]] = True
        blocked[settings["eot"]] = False
        self._blocked = blocked
        self._blocked_first = blocked.copy()
        self._blocked_first[[t for t in settings.get("suppress_begin", []) if 0 <= t < vocab]] = True
        self.max_tokens = int(settings.get("max_tokens", 448))

    def languages(self) -> list[str]:
        """The language codes a multilingual model takes (empty for an English-only one)."""
        return sorted(self.settings.get("languages", {}))

    def prompt(self, language: str | None) -> list[int]:
        s = self.settings
        if not s.get("multilingual"):
            if language not in (None, "en"):
                raise BadInputError(
                    f"this Whisper model is English-only; language {language!r} is not supported (use 'en' "
                    "or a multilingual model such as whisper-base)"
                )
            return [s["sot"], s["no_timestamps"]]
        langs = s["languages"]
        code = language or "en"
        if code not in langs:
            raise BadInputError(
                f"unsupported language {code!r}; this model takes: {', '.join(sorted(langs))}"
            )
        return [s["sot"], langs[code], s["transcribe"], s["no_timestamps"]]

    def encode(self, audio: np.ndarray, window: str = "audio") -> tuple[np.ndarray, np.ndarray]:
        """Cross-attention keys and values of ``audio`` (at most 30 s) in ``window`` (see
        :func:`encoder_inputs`)."""
        out = self.encoder.run(encoder_inputs(audio, window, int(self.settings.get("max_positions", 1500))))
        return out["cross_k"], out["cross_v"]

    def _step(
        self, tokens: np.ndarray, past: tuple[np.ndarray, np.ndarray], cross: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        out = self.decoder.run(
            {"tokens": tokens, "past_k": past[0], "past_v": past[1], "cross_k": cross[0], "cross_v": cross[1]}
        )
        return log_softmax(out["logits"].astype(np.float64)), (out["present_k"], out["present_v"])

    def _mask(self, logprobs: np.ndarray, first: bool) -> np.ndarray:
        return np.where(self._blocked_first if first else self._blocked, -np.inf, logprobs)

    def decode(
        self, cross: tuple[np.ndarray, np.ndarray], seconds: float, options: DecodeOptions
    ) -> list[int]:
        """The best token sequence (without prompt and end of text) for one encoded window."""
        prompt = self.prompt(options.language)
        limit = min(self.max_tokens - len(prompt) - 1, int(MIN_TOKENS + seconds * options.tokens_per_second))
        k, v = cross
        empty = np.zeros((*k.shape[:3], 0, k.shape[4]), np.float32)
        if options.beam == 1:
            return self._greedy(prompt, (k, v), (empty, empty), limit)
        return self._beam(prompt, (k, v), (empty, empty), limit, options.beam)

    def _greedy(
        self, prompt: list[int], cross: tuple[np.ndarray, np.ndarray], past: Any, limit: int
    ) -> list[int]:
        eot, out = self.settings["eot"], []
        feed = np.array([prompt], np.int64)
        for _ in range(limit):
            logprobs, past = self._step(feed, past, cross)
            token = int(np.argmax(self._mask(logprobs[0], not out)))
            if token == eot:
                break
            out.append(token)
            loop = looping(out)
            if loop:
                return out[:-loop]
            feed = np.array([[token]], np.int64)
        return out

    def _beam(
        self, prompt: list[int], cross: tuple[np.ndarray, np.ndarray], past: Any, limit: int, beam: int
    ) -> list[int]:
        """Beam search over ``beam`` hypotheses decoded as one batch; finished ones are ranked by mean
        log probability per token (Whisper's default length normalisation)."""
        eot = self.settings["eot"]
        logprobs, past = self._step(np.array([prompt], np.int64), past, cross)
        first = self._mask(logprobs[0], True)
        top = np.argsort(-first)[:beam]
        seqs: list[list[int]] = [[int(t)] for t in top]
        scores = np.array([first[t] for t in top])
        finished: list[tuple[float, list[int]]] = []
        past = tuple(np.repeat(p, len(seqs), axis=1) for p in past)
        cross = (np.repeat(cross[0], len(seqs), axis=1), np.repeat(cross[1], len(seqs), axis=1))
        for _ in range(limit - 1):
            live = [i for i, s in enumerate(seqs) if s[-1] != eot]
            if not live or len(finished) >= beam:
                break
            feed = np.array([[seqs[i][-1]] for i in live], np.int64)
            pick = np.array(live)
            step_past = (past[0][:, pick], past[1][:, pick])
            step_cross = (cross[0][:, pick], cross[1][:, pick])
            logprobs, step_past = self._step(feed, step_past, step_cross)
            candidates = []
            for row, i in enumerate(live):
                lp = self._mask(logprobs[row], False)
                for t in np.argsort(-lp)[: beam + 1]:
                    candidates.append((scores[i] + lp[t], row, int(t)))
            candidates.sort(key=lambda c: -c[0])
            new_seqs, new_scores, rows = [], [], []
            for score, row, t in candidates:
                seq = seqs[live[row]] + [t]
                if t == eot:
                    finished.append((score / len(seq), seq[:-1]))
                    continue
                loop = looping(seq)
                if loop:  # a hypothesis caught in a loop ends there, without its repeats
                    finished.append((score / len(seq), seq[:-loop]))
                    continue
                new_seqs.append(seq)
                new_scores.append(score)
                rows.append(row)
                if len(new_seqs) == beam:
                    break
            if not new_seqs:
                break
            index = np.array(rows)
            past = (step_past[0][:, index], step_past[1][:, index])
            cross = (step_cross[0][:, index], step_cross[1][:, index])
            seqs, scores = new_seqs, np.array(new_scores)
        if not finished:  # ran out of tokens: take the best open hypothesis
            finished = [(float(s) / len(q), q) for s, q in zip(scores, seqs, strict=True)]
        return max(finished, key=lambda f: f[0])[1]

    def transcribe(self, audio: np.ndarray, options: DecodeOptions | None = None) -> Transcription:
        """Text of ``audio`` (16 kHz mono float in [-1, 1]), window by window for audio over 30 s."""
        options = options or DecodeOptions()
        audio = np.asarray(audio, np.float32).reshape(-1)
        window = int(WINDOW_SECONDS * SAMPLE_RATE)
        ids: list[int] = []
        for start in range(0, max(len(audio), 1), window):
            piece = audio[start : start + window]
            seconds = len(piece) / SAMPLE_RATE
            ids += self.decode(self.encode(piece, options.window), seconds, options)
        text = self.tokenizer.decode(ids).strip()
        return Transcription(
            text=text,
            token_ids=ids,
            tokens=[self.tokenizer.decode([i]) for i in ids],
            duration=len(audio) / SAMPLE_RATE,
        )


def open_whisper(
    model: str | os.PathLike[str],
    *,
    target: str = "onnx:int8-dynamic",
    device: str = "auto",
    backend: str = "auto",
    threads: int | None = 1,
    cache_dir: str | os.PathLike[str] | None = None,
) -> WhisperDecoder:
    """A :class:`WhisperDecoder` over ``model`` (a built folder, a CTranslate2 Whisper folder or
    ``zoo:NAME``) using the artifacts of ``target`` on the backend the device selects."""
    from edge_sdk import load
    from edge_sdk.asr.whisper_build import DEFAULT_TARGETS, MODEL_FILE, whisper_model

    targets = sorted({*DEFAULT_TARGETS, target})
    folder = whisper_model(model, targets, cache_dir=cache_dir)
    settings = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    artifacts = settings.get("artifacts", {})
    if target not in artifacts:
        raise BadInputError(
            f"{model}: no {target} artifacts in {folder}; it has: {', '.join(sorted(artifacts)) or 'none'}"
            + (f" (failed: {settings['failed']})" if settings.get("failed") else "")
        )
    parts = artifacts[target]
    sessions = {
        part: load(folder / parts[part], device=device, backend=backend, threads=threads)
        for part in ("encoder", "decoder")
    }
    return WhisperDecoder(folder, sessions["encoder"], sessions["decoder"], settings)
