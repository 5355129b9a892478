"""Make untrusted text safe to show in a terminal.

Model files are downloaded from strangers, and their metadata (names, licences,
tokenizer names) ends up on screen. A string holding terminal escape sequences
could clear the screen, rewrite the window title, or write to the clipboard
(OSC 52); bidi overrides and invisible format characters can make one name look
like another. ``clean`` strips all of that while leaving ordinary text, accents,
CJK and emoji alone.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean"]

ELLIPSIS = "…"
_ZWJ = 0x200D  # zero-width joiner

# Whole escape sequences, in both the 7-bit (ESC-prefixed) and 8-bit (C1) forms.
# The sequence is removed with its parameters: leaving "52;c;..." or "2J" behind
# would still be noise, and partial removal is how filters get bypassed.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?
        # CSI: parameters, intermediates, one final byte (if present at all)
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) .*? (?:\x07|\x1b\\|\x9c|\Z)
        # OSC, DCS, SOS, PM, APC: a string up to BEL or ST. Unterminated strings
        # run to the end, because a terminal would swallow the rest as well.
    | \x1b [\x20-\x2f]* [\x30-\x7e]?
        # Any other escape: optional intermediates and a final byte
    """,
    re.VERBOSE | re.DOTALL,
)

_C0_AND_C1 = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
# Line and paragraph separators act as line breaks in some terminals.
_LINE_SEPARATORS = (0x2028, 0x2029)
# Distinct characters remembered per table; past this, lookups still work but
# are not cached, so hostile input cannot grow the tables without bound.
_CACHE_LIMIT = 1 << 16

_Mapped = int | str | None


class _CharTable(dict[int, _Mapped]):
    """A ``str.translate`` table that classifies each character once, on first sight.

    ``translate`` looks every character up in C; only characters not seen
    before reach ``__missing__``, so long texts cost little more than a copy.
    """

    def __init__(self, keep_newlines: bool) -> None:
        super().__init__(dict.fromkeys(_C0_AND_C1))
        newline: str = "\n" if keep_newlines else " "
        self[ord("\n")] = newline
        self[ord("\t")] = "\t" if keep_newlines else " "
        for cp in _LINE_SEPARATORS:
            self[cp] = newline

    def __missing__(self, cp: int) -> _Mapped:
        value = _classify(cp)
        if len(self) < _CACHE_LIMIT:
            self[cp] = value
        return value


def _classify(cp: int) -> _Mapped:
    """Keep ``cp`` (return it), drop it (None) or replace it (a string)."""
    category = unicodedata.category(chr(cp))
    if category == "Cf":
        # Format characters (bidi overrides and isolates, zero-width spaces,
        # tag characters, BOM) change how text renders without being visible.
        # The zero-width joiner is kept because emoji sequences depend on it.
        return cp if cp == _ZWJ else None
    if category == "Cs":
        # Lone surrogates cannot be encoded for output and would crash a write.
        return "\ufffd"
    if category == "Cc":
        return None
    return cp


_TABLE_ONE_LINE = _CharTable(keep_newlines=False)
_TABLE_MULTI_LINE = _CharTable(keep_newlines=True)


def clean(text: str | bytes, *, max_len: int = 200, keep_newlines: bool = False) -> str:
    """Return ``text`` in a form that is safe to print to a terminal.

    Bytes are decoded as UTF-8, replacing invalid sequences. Escape sequences
    are removed whole (including their parameters); C0 and C1 control
    characters, DEL, bidi controls and other invisible format characters are
    dropped, except the zero-width joiner used by emoji. Newlines and tabs are
    kept only when ``keep_newlines`` is true and otherwise become spaces.

    The result is at most ``max_len`` characters; if the text had to be cut,
    its last character is "…".
    """
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", errors="replace")
    if max_len <= 0:
        return ""
    if "\x1b" in text or not text.isascii():
        text = _ESCAPE_SEQUENCE.sub("", text)
    text = text.translate(_TABLE_MULTI_LINE if keep_newlines else _TABLE_ONE_LINE)
    if len(text) > max_len:
        text = text[: max_len - 1] + ELLIPSIS
    return text
