"""Bounded, sequential reads of a file's bytes, for the GGUF reader.

A window of the file is kept in memory and grows while reading stays
sequential; large skips seek. Every read is checked against the file's
size first: a file that ends before the data it announced raises
``Truncated``, never a short read. Skipping the strings of a vocabulary (up
to hundreds of thousands of them) is done in C by a regular expression,
not one string at a time.
"""

from __future__ import annotations

import functools
import re
import struct
from typing import BinaryIO

# Reads start small after every seek (the next item is often a few bytes) and
# double while reading stays sequential, so a vocabulary is read in big chunks.
_MIN_CHUNK = 64 << 10
_MAX_CHUNK = 1 << 20

# Skipping a vocabulary means following a chain of length prefixes, which is
# slow as a Python loop (the Gemma 3 vocabulary has 262,144 strings). A regular
# expression walks the chain in C instead: each alternative matches one string
# of a given short length (one length byte, seven zero bytes, then exactly that
# many bytes), and the pattern takes a whole block of such strings. The zero
# bytes are matched, so a block only succeeds where the prefixes really say so.
# The repeat is possessive (no backtracking state is kept per string), and the
# alternatives come in the order of how common each length is in real
# vocabularies (counted in the SmolLM2 and Gemma 3 ones, byte-level BPE and
# SentencePiece), since the engine tries them in turn. Against plain order
# 1, 2, 3, ... without the possessive repeat, a whole read_gguf took 11% (Gemma)
# and 14% (SmolLM2) fewer instructions under callgrind; the regex engine still
# spends about 400 instructions on each string.
_STRING_BLOCK = 128
_BLOCK_LENGTHS = (
    6, 9, 7, 8, 4, 5, 3, 10, 12, 11, 13, 15, 2, 14, 18, 21, 16, 17, 24, 27, 19, 30,
    1, 33, 23, 36, 25, 39, 20, 42, 22, 26, 29, 48, 34, 32, 50, 28, 31, 45, 38, 40,
    46, 44, 58, 41, 56, 52, 54, 62, 60, 47, 35, 37, 43, 49, 51, 53, 55, 57, 59, 61,
    63, 0,
)  # fmt: skip
# How much of the file to keep buffered ahead while skipping strings: more
# than a big block of the longest strings it takes, so a block never fails
# only because the window ends. Below it the window grows by a whole read
# chunk, so refills stay rare however often a block fails.
_SKIP_AHEAD = 128 << 10
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@functools.cache
def _string_block_pattern() -> re.Pattern[bytes]:
    # Compiled on first use: it costs a few milliseconds, and only readers of
    # files with large string arrays need it.
    one = b"|".join(
        re.escape(bytes([n])) + b"\\x00" * 7 + (b".{%d}" % n if n else b"") for n in _BLOCK_LENGTHS
    )
    return re.compile(b"(?:%s){%d}+" % (one, _STRING_BLOCK), re.DOTALL)


class Truncated(Exception):
    """Raised inside the reader when the file ends before the data it announced."""


class Reader:
    """Sequential reads from a window of the file, with seeks for large skips.

    Invariant: the file position is ``_base + len(_buf)``, so refilling appends.
    """

    __slots__ = ("_base", "_buf", "_chunk", "_f", "_pos", "size")

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self.size = size
        self._buf = b""
        self._base = 0
        self._pos = 0
        self._chunk = _MIN_CHUNK

    @property
    def offset(self) -> int:
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        return self.size - self.offset

    def _need(self, n: int) -> None:
        avail = len(self._buf) - self._pos
        if avail >= n:
            return
        if self.offset + n > self.size:
            raise Truncated
        end = self._base + len(self._buf)
        want = min(max(n - avail, self._chunk), self.size - end)
        self._chunk = min(self._chunk * 2, _MAX_CHUNK)
        data = self._f.read(want)
        self._buf = self._buf[self._pos :] + data
        self._base += self._pos
        self._pos = 0
        if len(self._buf) < n:
            # The file shrank after it was measured.
            raise Truncated

    def _seek_to(self, offset: int) -> None:
        if offset > self.size:
            raise Truncated
        rel = offset - self._base
        if 0 <= rel <= len(self._buf):
            self._pos = rel
            return
        self._f.seek(offset)
        self._buf = b""
        self._base = offset
        self._pos = 0
        self._chunk = _MIN_CHUNK

    def read(self, n: int) -> bytes:
        self._need(n)
        start = self._pos
        self._pos = start + n
        return self._buf[start : start + n]

    def unpack(self, st: struct.Struct) -> tuple[object, ...]:
        self._need(st.size)
        values = st.unpack_from(self._buf, self._pos)
        self._pos += st.size
        return values

    def u32(self) -> int:
        self._need(4)
        (value,) = _U32.unpack_from(self._buf, self._pos)
        self._pos += 4
        return int(value)

    def u64(self) -> int:
        self._need(8)
        (value,) = _U64.unpack_from(self._buf, self._pos)
        self._pos += 8
        return int(value)

    def skip(self, n: int) -> None:
        self._seek_to(self.offset + n)

    def skip_strings(self, count: int) -> None:
        """Step over ``count`` length-prefixed strings without decoding them."""
        block = _string_block_pattern().match
        unpack = _U64.unpack_from
        while count:
            # At least one prefix: a file that ends here is truncated.
            self._need(max(8, min(self.remaining, _SKIP_AHEAD)))
            buf = self._buf
            pos = self._pos
            last = len(buf) - 8
            while count >= _STRING_BLOCK and (m := block(buf, pos)) is not None:
                pos = m.end()
                count -= _STRING_BLOCK
            # What the block pattern cannot take (a long string, the tail of the
            # array) is stepped one prefix at a time. Every pass of the outer
            # loop consumes at least one string, so it runs at most ``count``
            # times.
            steps = min(count, _STRING_BLOCK)
            while steps and pos <= last:
                pos += 8 + unpack(buf, pos)[0]
                count -= 1
                steps -= 1
            if pos > len(buf):
                self._seek_to(self._base + pos)
            else:
                self._pos = pos
