"""Whisper's tokens as text: a byte-level BPE vocabulary (GPT-2's byte-to-character map) read from the
files a CTranslate2 or Hugging Face Whisper folder carries, and the special tokens decoding needs.

Only decoding is needed to transcribe (token ids → text), so no BPE merges are applied here. The
vocabulary comes from ``vocabulary.txt`` (one token per line, CTranslate2), ``vocabulary.json`` (a JSON
list) or ``tokenizer.json`` (Hugging Face: ``model.vocab`` plus ``added_tokens``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import BadInputError

VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json", "tokenizer.json")
_SPECIAL = re.compile(r"^<\|[^|]*\|>$")
_TIMESTAMP = re.compile(r"^<\|\d+\.\d+\|>$")


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's map from the printable character standing for each byte back to the byte."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, shifted = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + shifted)
            shifted += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def read_vocabulary(folder: str | os.PathLike[str]) -> list[str]:
    """The token strings of a Whisper model folder, indexed by id (see the module docstring for the files)."""
    root = Path(folder)
    for name in VOCABULARY_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if name.endswith(".txt"):
                return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
            data = json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise BadInputError(f"{path}: not a readable vocabulary ({e})") from None
        if isinstance(data, list) and all(isinstance(t, str) for t in data):
            return list(data)
        if isinstance(data, dict) and isinstance(data.get("model", {}).get("vocab"), dict):
            ids = dict(data["model"]["vocab"])
            ids.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})
            tokens = [""] * (max(ids.values()) + 1)
            for token, i in ids.items():
                tokens[i] = token
            return tokens
        raise BadInputError(f"{path}: expected a list of tokens or a Hugging Face tokenizer.json")
    raise BadInputError(f"{root}: no Whisper vocabulary (looked for {', '.join(VOCABULARY_FILES)})")


@dataclass(frozen=True)
class WhisperTokenizer:
    """Token ids ↔ text for one Whisper vocabulary, with the ids of its special tokens."""

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"):
            if name not in self._ids:
                raise BadInputError(f"not a Whisper vocabulary: it has no {name} token")

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def id(self, token: str) -> int:
        """The id of ``token`` (e.g. ``"<|en|>"``)."""
        try:
            return self._ids[token]
        except KeyError:
            raise BadInputError(f"this Whisper vocabulary has no token {token!r}") from None

    @property
    def eot(self) -> int:
        return self._ids["<|endoftext|>"]

    @property
    def sot(self) -> int:
        return self._ids["<|startoftranscript|>"]

    @property
    def no_timestamps(self) -> int:
        return self._ids["<|notimestamps|>"]

    @functools.cached_property
    def languages(self) -> dict[str, int]:
        """Language code → token id; empty for an English-only model, whose vocabulary still lists them
        but whose prompt has no language token."""
        if not self.multilingual:
            return {}
        out = {}
        for i in range(self.sot + 1, len(self.tokens)):
            t = self.tokens[i]
            if t in ("<|translate|>", "<|transcribe|>"):
                break
            out[t[2:-2]] = i
        return out

    @property
    def multilingual(self) -> bool:
        """A multilingual vocabulary has one more token (51865) than an English-only one (51864)."""
        return len(self.tokens) > 51864

    @functools.cached_property
    def special(self) -> frozenset[int]:
        """Ids of every ``<|...|>`` token (control tokens and timestamps)."""
        return frozenset(i for i, t in enumerate(self.tokens) if _SPECIAL.match(t))

    def is_timestamp(self, token: int) -> bool:
        return bool(_TIMESTAMP.match(self.tokens[token]))

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; special tokens are dropped, broken UTF-8 sequences replaced."""
        byte_of = _byte_decoder()
        pieces = "".join(self.tokens[i] for i in ids if i not in self.special and 0 <= i < len(self.tokens))
        return bytes(byte_of[c] for c in pieces if c in byte_of).decode("utf-8", errors="replace")

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> WhisperTokenizer:
        """The tokenizer of a Whisper model folder."""
        return cls(tuple(read_vocabulary(folder)))
