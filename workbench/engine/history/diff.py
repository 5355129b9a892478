"""A word-level diff of two completions, for people.

Texts are split into words, runs of punctuation and runs of whitespace, and
``difflib.SequenceMatcher`` lines the two token lists up. Whitespace is kept
as tokens of its own, so joining the chunks of one side gives back that text
exactly, and a changed word does not drag the space before it along.

``autojunk`` is off: with it on, SequenceMatcher treats any token that
makes up more than 1% of a text over 200 tokens as junk, and a single
space is always such a token, so long completions would diff badly.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

ChunkKind = Literal["same", "removed", "added"]

# A word (letters, digits, underscore), a run of other visible characters, or
# a run of whitespace.
_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")

REMOVED_OPEN, REMOVED_CLOSE = "[-", "-]"
ADDED_OPEN, ADDED_CLOSE = "{+", "+}"


@dataclass(frozen=True)
class Chunk:
    """A stretch of text that both sides share, or that only one side has."""

    kind: ChunkKind
    text: str


@dataclass(frozen=True)
class WordDiff:
    """How the second text differs from the first, chunk by chunk."""

    chunks: tuple[Chunk, ...]

    def side(self, which: Literal["old", "new"]) -> str:
        """One side's text, rebuilt from the chunks (equal to the input)."""
        skip = "added" if which == "old" else "removed"
        return "".join(c.text for c in self.chunks if c.kind != skip)

    def words(self, kind: ChunkKind) -> int:
        """How many words (not whitespace) are in chunks of this kind."""
        return sum(len(_words(c.text)) for c in self.chunks if c.kind == kind)

    @property
    def identical(self) -> bool:
        return all(c.kind == "same" for c in self.chunks)

    def summary(self) -> str:
        """In words: "identical", "12 words the same, 3 removed, 5 added"...

        Punctuation runs count as words; whitespace does not.
        """
        if self.identical:
            return "identical"
        if not self.words("removed") and not self.words("added"):
            return "only whitespace differs"
        same = self.words("same")
        return (
            f"{same:,} word{'s' if same != 1 else ''} the same, "
            f"{self.words('removed'):,} removed, {self.words('added'):,} added"
        )

    def marked(self) -> str:
        """Plain text with ``[-removed-]`` and ``{+added+}`` markers, readable
        without colour (the format of ``git diff --word-diff``)."""
        out = []
        for chunk in self.chunks:
            if chunk.kind == "removed":
                out.append(f"{REMOVED_OPEN}{chunk.text}{REMOVED_CLOSE}")
            elif chunk.kind == "added":
                out.append(f"{ADDED_OPEN}{chunk.text}{ADDED_CLOSE}")
            else:
                out.append(chunk.text)
        return "".join(out)


def tokens(text: str) -> list[str]:
    """Words, punctuation runs and whitespace runs; they join back into ``text``."""
    return _TOKEN.findall(text)


def _words(text: str) -> list[str]:
    return [t for t in tokens(text) if not t.isspace()]


def word_diff(old: str, new: str) -> WordDiff:
    """The chunks that turn ``old`` into ``new``: a replaced stretch is its
    removed part followed by its added part; neighbours of one kind merge."""
    a, b = tokens(old), tokens(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    chunks: list[Chunk] = []

    def add(kind: ChunkKind, parts: list[str]) -> None:
        text = "".join(parts)
        if not text:
            return
        if chunks and chunks[-1].kind == kind:
            chunks[-1] = Chunk(kind, chunks[-1].text + text)
        else:
            chunks.append(Chunk(kind, text))

    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            add("same", a[i1:i2])
        else:  # "replace", "delete" or "insert"
            add("removed", a[i1:i2])
            add("added", b[j1:j2])
    return WordDiff(tuple(chunks))
