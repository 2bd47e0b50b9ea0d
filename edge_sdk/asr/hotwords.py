"""Hotword boosting (contextual biasing): a bonus for every token of a listed phrase as a hypothesis grows,
taken back when the partial match breaks, kept once the phrase is complete. An Aho-Corasick trie over token
ids, so that a broken match can fall back to a shorter one that is still running (as sherpa-onnx's context
graph does)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_sdk.asr.tokens import TokenTable
from edge_sdk.errors import BadInputError


@dataclass(eq=False)
class HotwordState:
    """A node of the trie: how much bonus the phrase matched so far has earned."""

    score: float = 0.0
    complete: bool = False
    children: dict[int, HotwordState] = field(default_factory=dict)
    fail: HotwordState | None = None
    # The nearest phrase end among this node and the nodes its fail links lead to.
    match: HotwordState | None = None


class Hotwords:
    """Phrases (token-id sequences) to boost: ``bonus`` per matched token (``bonuses``: one per phrase)."""

    def __init__(
        self, phrases: Sequence[Sequence[int]], bonus: float = 1.5, bonuses: Sequence[float] | None = None
    ) -> None:
        if bonuses is not None and len(bonuses) != len(phrases):
            raise BadInputError(f"{len(bonuses)} hotword bonuses given for {len(phrases)} phrases")
        self.root = HotwordState()
        for n, phrase in enumerate(phrases):
            if not phrase:
                raise BadInputError(f"hotword {n} is empty")
            self._add([int(t) for t in phrase], bonus if bonuses is None else bonuses[n])
        self._link()

    @classmethod
    def from_text(cls, phrases: Sequence[str], tokens: TokenTable, bonus: float = 1.5) -> Hotwords:
        """Phrases given as text, spelled with ``tokens.encode``."""
        return cls([tokens.encode(p) for p in phrases], bonus=bonus)

    def _add(self, phrase: list[int], bonus: float) -> None:
        node = self.root
        for token in phrase:
            child = node.children.setdefault(token, HotwordState())
            # Phrases sharing a prefix share nodes; the larger bonus wins there.
            child.score = max(child.score, node.score + bonus)
            node = child
        node.complete = True

    def _link(self) -> None:
        queue: deque[HotwordState] = deque()
        for child in self.root.children.values():
            child.fail = self.root
            child.match = child if child.complete else None
            queue.append(child)
        while queue:
            node = queue.popleft()
            for token, child in node.children.items():
                child.fail = self._step(node.fail, token)
                child.match = child if child.complete else child.fail.match
                queue.append(child)

    def _step(self, node: HotwordState | None, token: int) -> HotwordState:
        while node is not None and token not in node.children:
            node = node.fail
        return self.root.children.get(token, self.root) if node is None else node.children[token]

    def advance(self, state: HotwordState, token: int) -> tuple[float, HotwordState]:
        """The bonus change for appending ``token`` (negative when a partial match breaks), the new state."""
        node = self._step(state, token)
        if node.match is not None:
            # A phrase is complete: its bonus is kept and matching starts afresh (sherpa's non-strict mode).
            return node.match.score - state.score, self.root
        return node.score - state.score, node

    def finish(self, state: HotwordState) -> float:
        """At the end of the utterance a phrase still half matched earns nothing: take its bonus back."""
        return -state.score
