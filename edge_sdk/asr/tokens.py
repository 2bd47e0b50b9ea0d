"""The token table of a CTC or transducer model: sherpa-onnx's ``tokens.txt`` read, ids turned into text, and
the rule that groups tokens into words (a delimiter token such as ``|``, or sentencepiece's ``▁`` prefix)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge_sdk.errors import BadInputError

PIECE_MARK = "▁"
# Symbols in angle brackets (<blk>, <unk>, <sos/eos>) are control symbols, not text; <0xNN> is sentencepiece's
# byte fallback, whose bytes are joined and decoded as UTF-8.
_CONTROL = re.compile(r"^<[^<>\s]+>$")
_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_DELIMITERS = ("|", " ")


@dataclass(frozen=True)
class TokenTable:
    """Id → symbol for a model's output layer, and how its tokens make words.

    ``delimiter`` names the symbol that separates words (``|`` in wav2vec2 tables); left ``None`` it is
    found: ``|`` or a space symbol when the table has one, else words start at tokens carrying ``▁``."""

    symbols: tuple[str, ...]
    blank: int = 0
    delimiter: str | None = None
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.symbols:
            raise BadInputError("a token table needs at least one symbol")
        if not 0 <= self.blank < len(self.symbols):
            raise BadInputError(
                f"blank id {self.blank} is outside the token table (size {len(self.symbols)})"
            )
        ids = {s: i for i, s in enumerate(self.symbols)}
        object.__setattr__(self, "_ids", ids)
        if self.delimiter is None:
            found = next((d for d in _DELIMITERS if d in ids), None)
            object.__setattr__(self, "delimiter", found)
        elif self.delimiter not in ids:
            raise BadInputError(f"word delimiter {self.delimiter!r} is not a symbol of the token table")

    @classmethod
    def from_file(
        cls, path: str | Path, blank: int | None = None, delimiter: str | None = None
    ) -> TokenTable:
        """Read a sherpa-onnx ``tokens.txt``: one ``<symbol> <id>`` per line (a line holding only an id is the
        space symbol). The blank is ``<blk>``/``<blank>``/``<pad>`` when present, else id 0."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise BadInputError(f"cannot read token table {path}: {e}") from e
        by_id: dict[int, str] = {}
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.rsplit(maxsplit=1)
            symbol, raw_id = (" ", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
            try:
                token_id = int(raw_id)
            except ValueError:
                raise BadInputError(f"{path}:{number}: expected '<symbol> <id>', got {line!r}") from None
            if token_id in by_id:
                raise BadInputError(f"{path}:{number}: id {token_id} given twice")
            by_id[token_id] = symbol
        if sorted(by_id) != list(range(len(by_id))):
            raise BadInputError(f"{path}: ids must run 0..{len(by_id) - 1} without gaps")
        symbols = tuple(by_id[i] for i in range(len(by_id)))
        if blank is None:
            blank = next((symbols.index(s) for s in ("<blk>", "<blank>", "<pad>") if s in symbols), 0)
        return cls(symbols, blank=blank, delimiter=delimiter)

    def __len__(self) -> int:
        return len(self.symbols)

    def id_of(self, symbol: str) -> int:
        """The id of ``symbol``."""
        try:
            return self._ids[symbol]
        except KeyError:
            raise BadInputError(f"symbol {symbol!r} is not in the token table") from None

    @property
    def has_words(self) -> bool:
        """Whether word boundaries can be told from the tokens (needed by a word language model)."""
        return self.delimiter is not None or any(s.startswith(PIECE_MARK) for s in self.symbols)

    def is_delimiter(self, token: int) -> bool:
        """Whether ``token`` is the word delimiter (it belongs to no word)."""
        return self.delimiter is not None and self.symbols[token] == self.delimiter

    def starts_word(self, token: int) -> bool:
        """Whether ``token`` opens a new word in a sentencepiece table (its symbol carries ``▁``)."""
        return self.delimiter is None and self.symbols[token].startswith(PIECE_MARK)

    def word(self, tokens: Sequence[int]) -> str:
        """The text of the tokens of one word, without markers."""
        return self.text(tokens).replace(" ", "")

    def text(self, tokens: Iterable[int]) -> str:
        """Ids → text: control symbols and the blank dropped, delimiters and ``▁`` become single spaces."""
        out: list[str] = []
        pending = bytearray()  # byte-fallback pieces are decoded together: one character may span several
        for token in tokens:
            if token == self.blank:
                continue
            symbol = self.symbols[token]
            byte = _BYTE.match(symbol)
            if byte:
                pending.append(int(byte.group(1), 16))
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            if symbol == self.delimiter:
                out.append(" ")
            elif not _CONTROL.match(symbol):
                out.append(symbol.replace(PIECE_MARK, " "))
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return " ".join("".join(out).split())

    def encode(self, text: str) -> list[int]:
        """Text → ids, for hotwords: characters (with the delimiter between words) or, in a sentencepiece
        table, the longest matching pieces of ``▁word``. Not the model's own tokenizer: pass ids where the
        exact segmentation matters."""
        words = text.split()
        if not words:
            raise BadInputError("cannot encode empty text into tokens")
        ids: list[int] = []
        piece_table = self.delimiter is None and self.has_words
        for n, word in enumerate(words):
            if piece_table:
                ids += self._longest_pieces(PIECE_MARK + word)
                continue
            if n and self.delimiter is not None:
                ids.append(self._ids[self.delimiter])
            ids += self._longest_pieces(word)
        return ids

    def _longest_pieces(self, text: str) -> list[int]:
        ids, start = [], 0
        longest = max(len(s) for s in self.symbols)
        while start < len(text):
            for end in range(min(len(text), start + longest), start, -1):
                if text[start:end] in self._ids:
                    ids.append(self._ids[text[start:end]])
                    start = end
                    break
            else:
                raise BadInputError(
                    f"cannot spell {text!r} with the token table: no symbol for {text[start]!r}"
                )
        return ids
