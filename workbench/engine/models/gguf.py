"""A small, defensive reader for GGUF headers, metadata and tensor infos.

The format is described at https://github.com/ggml-org/ggml/blob/master/docs/gguf.md.
Versions 2 and 3 in little-endian byte order are supported.

Files come from the internet and may be truncated downloads, HTML error pages,
Git LFS pointers or deliberately malformed. Every count and length read from
the file is checked against the bytes that remain before it is used, so a bad
file produces a ``GGUFError`` with a readable reason instead of a huge
allocation, a hang or a crash. Large arrays (the vocabulary of a model can hold
hundreds of thousands of strings) are stepped over rather than decoded, which
keeps reading the metadata of a model in the low milliseconds.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from workbench.engine.errors import WorkbenchError
from workbench.engine.models.gguf_reader import Reader, Truncated

__all__ = [
    "GGML_TYPE_NAMES",
    "ArrayInfo",
    "GGUFError",
    "GGUFFile",
    "TensorInfo",
    "ggml_type_name",
    "read_gguf",
    "tensor_nbytes",
]

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 8
# Arrays may nest (an array of arrays); real files never go beyond one level,
# and the limit keeps recursion bounded on crafted input.
MAX_ARRAY_DEPTH = 8
# No real GGUF has four billion metadata keys, tensors or array items, nor a
# 4 GiB string. Counts at or above this are reported as corrupt ("absurd")
# rather than as a truncated download.
ABSURD_COUNT = 2**32

# Metadata value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32 = 0, 1, 2, 3, 4, 5
T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 6, 7, 8, 9, 10, 11, 12

_SCALAR_FORMATS: dict[int, str] = {
    T_UINT8: "B",
    T_INT8: "b",
    T_UINT16: "H",
    T_INT16: "h",
    T_UINT32: "I",
    T_INT32: "i",
    T_FLOAT32: "f",
    T_BOOL: "B",
    T_UINT64: "Q",
    T_INT64: "q",
    T_FLOAT64: "d",
}
_SCALAR_STRUCTS: dict[int, struct.Struct] = {
    t: struct.Struct("<" + f) for t, f in _SCALAR_FORMATS.items()
}
# Smallest encoding of a value of each type; used to bound counts before reading.
_MIN_VALUE_SIZE: dict[int, int] = {t: s.size for t, s in _SCALAR_STRUCTS.items()}
_MIN_VALUE_SIZE[T_STRING] = 8  # the length prefix of an empty string
_MIN_VALUE_SIZE[T_ARRAY] = 12  # item type and length of an empty array

_MIN_KV_SIZE = 8 + 4 + 1  # key length prefix, value type, a one-byte value
_MIN_TENSOR_INFO_SIZE = 8 + 4 + 8 + 4 + 8  # name prefix, n_dims, one dim, type, offset
_HEADER = struct.Struct("<4sIQQ")

# ggml tensor types: name, elements per block, bytes per block. Values from
# ggml.h / gguf-py; ids 31-33 and 36-38 are retired repacked layouts that old
# files may still contain.
_GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    31: ("Q4_0_4_4", 32, 18),
    32: ("Q4_0_4_8", 32, 18),
    33: ("Q4_0_8_8", 32, 18),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    36: ("IQ4_NL_4_4", 32, 18),
    37: ("IQ4_NL_4_8", 32, 18),
    38: ("IQ4_NL_8_8", 32, 18),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

#: ggml type id -> name, e.g. 12 -> "Q4_K".
GGML_TYPE_NAMES: dict[int, str] = {k: v[0] for k, v in _GGML_TYPES.items()}


class GGUFError(WorkbenchError):
    """A file that cannot be read as GGUF; ``str(err)`` is the human-readable reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ArrayInfo:
    """Stands in for a metadata array too long to decode (see ``max_array_items``)."""

    item_type: int
    length: int

    def __len__(self) -> int:
        return self.length


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's description from the header; ``shape`` is in GGUF order (ne[0] first)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int

    @property
    def n_elements(self) -> int:
        """Number of elements (the product of the dimensions)."""
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def type_name(self) -> str:
        """Name of the ggml type, e.g. "Q4_K", or "type N" when unknown."""
        return ggml_type_name(self.ggml_type)


@dataclass(frozen=True)
class GGUFFile:
    """The parsed header of a GGUF file: metadata and tensor infos, no tensor data.

    Metadata values are ``int``, ``float``, ``bool``, ``str``, ``list`` (arrays up
    to ``max_array_items`` long) or ``ArrayInfo`` (longer arrays, not decoded).
    """

    path: Path
    version: int
    file_size: int
    metadata: dict[str, object]
    tensors: tuple[TensorInfo, ...]


def ggml_type_name(ggml_type: int) -> str:
    """Return the ggml name of a tensor type id, or "type N" if it is not known."""
    known = _GGML_TYPES.get(ggml_type)
    return known[0] if known else f"type {ggml_type}"


def tensor_nbytes(shape: tuple[int, ...], ggml_type: int) -> int | None:
    """Bytes a tensor of this shape and type occupies, or None for an unknown type."""
    known = _GGML_TYPES.get(ggml_type)
    if known is None:
        return None
    _, block, size = known
    n = 1
    for dim in shape:
        n *= dim
    # Rows are stored as whole blocks; ne[0] is a multiple of the block size in
    # valid files (checked by the reader), so this equals ggml_nbytes.
    return (n // block) * size


def _human_size(n: int) -> str:
    if n < 1000:
        return f"{n}-byte"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _quote(name: str, limit: int = 60) -> str:
    # Names come from the file: repr() escapes control and format characters,
    # and the cut keeps a hostile multi-megabyte name out of error messages.
    return repr(name if len(name) <= limit else name[:limit] + "…")


class _Parser:
    def __init__(self, reader: Reader, max_array_items: int) -> None:
        self.r = reader
        self.max_array_items = max_array_items
        # Describes what is being read, for truncation messages.
        self.where = "header"

    def fail_count(self, what: str, count: int, item_size: int, *, in_where: bool = True) -> None:
        """Raise unless ``count`` items of at least ``item_size`` bytes can fit."""
        need = count * item_size
        remaining = self.r.remaining
        if need <= remaining:
            return
        where = f" (in {self.where})" if in_where else ""
        if count >= ABSURD_COUNT:
            raise GGUFError(
                f"{what} {count} is absurd for a {_human_size(self.r.size)} file{where}"
            )
        raise GGUFError(
            f"file is truncated: {what} {count} needs at least {need} bytes, "
            f"only {remaining} remain{where}"
        )

    def string(self) -> str:
        n = self.r.u64()
        self.fail_count("string length", n, 1)
        return self.r.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, depth: int = 0) -> object:
        st = _SCALAR_STRUCTS.get(vtype)
        if st is not None:
            (v,) = self.r.unpack(st)
            return bool(v) if vtype == T_BOOL else v
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            return self.array(depth + 1)
        raise GGUFError(f"unknown metadata value type {vtype} (in {self.where})")

    def array(self, depth: int) -> object:
        if depth > MAX_ARRAY_DEPTH:
            raise GGUFError(f"arrays nested more than {MAX_ARRAY_DEPTH} deep (in {self.where})")
        item_type = self.r.u32()
        min_size = _MIN_VALUE_SIZE.get(item_type)
        if min_size is None:
            raise GGUFError(f"unknown metadata value type {item_type} in array (in {self.where})")
        length = self.r.u64()
        self.fail_count("array length", length, min_size)
        if length > self.max_array_items:
            self.skip_array_items(item_type, length, depth)
            return ArrayInfo(item_type=item_type, length=length)
        st = _SCALAR_STRUCTS.get(item_type)
        if st is not None:
            raw = self.r.read(length * st.size)
            items = list(struct.unpack(f"<{length}{_SCALAR_FORMATS[item_type]}", raw))
            return [bool(x) for x in items] if item_type == T_BOOL else items
        return [self.value(item_type, depth) for _ in range(length)]

    def skip_array_items(self, item_type: int, length: int, depth: int) -> None:
        st = _SCALAR_STRUCTS.get(item_type)
        if st is not None:
            self.r.skip(length * st.size)
        elif item_type == T_STRING:
            self.r.skip_strings(length)
        else:
            # Arrays of arrays: each element is bounded by the check its own
            # length gets, and the element count was bounded by the caller.
            for _ in range(length):
                if depth + 1 > MAX_ARRAY_DEPTH:
                    raise GGUFError(
                        f"arrays nested more than {MAX_ARRAY_DEPTH} deep (in {self.where})"
                    )
                inner_type = self.r.u32()
                inner_min = _MIN_VALUE_SIZE.get(inner_type)
                if inner_min is None:
                    raise GGUFError(
                        f"unknown metadata value type {inner_type} in array (in {self.where})"
                    )
                inner_len = self.r.u64()
                self.fail_count("array length", inner_len, inner_min)
                self.skip_array_items(inner_type, inner_len, depth + 1)


def _open_checked(path: Path) -> tuple[BinaryIO, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise GGUFError("no such file") from None
    except PermissionError:
        raise GGUFError("permission denied") from None
    except OSError as exc:
        raise GGUFError(f"cannot read file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise GGUFError("is a directory, not a GGUF file")
    if not stat.S_ISREG(st.st_mode):
        # Opening a FIFO would block and a device could be endless.
        raise GGUFError("not a regular file")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except PermissionError:
        raise GGUFError("permission denied") from None
    except OSError as exc:
        raise GGUFError(f"cannot read file: {exc.strerror or exc}") from None
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        f.close()
        raise GGUFError(f"cannot read file: {exc.strerror or exc}") from None
    return f, size


def _describe_magic(head: bytes) -> str:
    if head.startswith(b"version https://git-lfs"):
        return "not a GGUF file: it is a Git LFS pointer, not the model data"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype", b"<html")):
        return "not a GGUF file: it is an HTML page (a failed download?)"
    text = head[:32]
    if text and all(32 <= b < 127 or b in b"\t\r\n" for b in text):
        return f"not a GGUF file: it looks like text (starts with {text[:20]!r})"
    return f"not a GGUF file (magic {head[:4]!r})"


def read_gguf(
    path: str | os.PathLike[str],
    *,
    max_array_items: int = 64,
    read_tensors: bool = True,
) -> GGUFFile:
    """Read the header, metadata and (optionally) tensor infos of a GGUF file.

    Arrays longer than ``max_array_items`` are not decoded: their value in
    ``metadata`` is an ``ArrayInfo``. With ``read_tensors=False`` the tensor
    infos are not read, ``tensors`` is empty, and the check that the tensor data
    fits in the file is skipped.

    Raises ``GGUFError`` for anything that is not a well-formed GGUF file of a
    supported version, including truncated files and unreadable paths.
    """
    p = Path(path)
    f, size = _open_checked(p)
    with f:
        try:
            return _read(p, f, size, max_array_items, read_tensors)
        except OSError as exc:
            raise GGUFError(f"cannot read file: {exc.strerror or exc}") from None


def _read(path: Path, f: BinaryIO, size: int, max_array_items: int, read_tensors: bool) -> GGUFFile:
    if size == 0:
        raise GGUFError("empty file")
    head = f.read(min(size, 64))
    f.seek(0)
    if head[:4] != GGUF_MAGIC:
        raise GGUFError(_describe_magic(head))
    if size < _HEADER.size:
        raise GGUFError(f"file is truncated: {size} bytes is too short for a GGUF header")

    r = Reader(f, size)
    parser = _Parser(r, max_array_items)
    try:
        return _parse(path, r, parser, read_tensors)
    except Truncated:
        raise GGUFError(f"file is truncated: {parser.where} runs past end of file") from None


def _parse(path: Path, r: Reader, parser: _Parser, read_tensors: bool) -> GGUFFile:
    _, version, n_tensors, n_kv = r.unpack(_HEADER)
    assert isinstance(version, int) and isinstance(n_tensors, int) and isinstance(n_kv, int)
    if version not in SUPPORTED_VERSIONS:
        # Big-endian files keep the magic bytes but store the version swapped.
        if version in (0x02000000, 0x03000000):
            raise GGUFError("big-endian byte order is not supported")
        raise GGUFError(f"unsupported GGUF version {version} (supported: 2 and 3)")

    parser.where = "metadata"
    parser.fail_count("metadata count", n_kv, _MIN_KV_SIZE, in_where=False)
    metadata: dict[str, object] = {}
    for i in range(n_kv):
        parser.where = f"metadata key {i}"
        key = parser.string()
        parser.where = f"metadata key {i} ({_quote(key)})"
        if key in metadata:
            raise GGUFError(f"duplicate metadata key {_quote(key)}")
        vtype = r.u32()
        metadata[key] = parser.value(vtype)

    if not read_tensors:
        return GGUFFile(path, version, r.size, metadata, ())

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool):
        raise GGUFError(f"invalid general.alignment of type {type(alignment).__name__}")
    if alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"invalid general.alignment {alignment} (must be a power of two)")

    parser.where = "tensor infos"
    parser.fail_count("tensor count", n_tensors, _MIN_TENSOR_INFO_SIZE, in_where=False)
    tensors: list[TensorInfo] = []
    offsets: list[int] = []
    names: set[str] = set()
    for i in range(n_tensors):
        parser.where = f"tensor info {i}"
        name = parser.string()
        parser.where = f"tensor info {i} ({_quote(name)})"
        if name in names:
            raise GGUFError(f"duplicate tensor name {_quote(name)}")
        names.add(name)
        n_dims = r.u32()
        if n_dims > MAX_DIMS:
            raise GGUFError(
                f"tensor {_quote(name)} has {n_dims} dimensions (at most {MAX_DIMS} are allowed)"
            )
        dims = struct.unpack_from(f"<{n_dims}Q", r.read(8 * n_dims))
        if any(d >= 2**63 for d in dims):
            raise GGUFError(f"tensor {_quote(name)} has an absurd dimension in {dims}")
        ggml_type = r.u32()
        offset = r.u64()
        tensors.append(TensorInfo(name=name, shape=tuple(dims), ggml_type=ggml_type))
        offsets.append(offset)

    parser.where = "tensor data"
    data_start = -(-r.offset // alignment) * alignment
    _check_tensor_data(tensors, offsets, data_start, alignment, r.size)
    return GGUFFile(path, version, r.size, metadata, tuple(tensors))


def _check_tensor_data(
    tensors: list[TensorInfo], offsets: list[int], data_start: int, alignment: int, size: int
) -> None:
    # A download cut off inside the tensor data leaves a perfectly valid header;
    # only the declared data extent reveals it.
    needed = data_start if tensors else 0
    for tensor, offset in zip(tensors, offsets, strict=True):
        if offset % alignment:
            raise GGUFError(
                f"tensor {_quote(tensor.name)} data offset {offset} is not a multiple of the "
                f"alignment {alignment}"
            )
        known = _GGML_TYPES.get(tensor.ggml_type)
        if known is None:
            needed = max(needed, data_start + offset)
            continue
        type_name, block, _ = known
        if tensor.shape and tensor.shape[0] % block:
            raise GGUFError(
                f"tensor {_quote(tensor.name)} has rows of {tensor.shape[0]} elements, not a "
                f"multiple of the {type_name} block size {block}"
            )
        nbytes = tensor_nbytes(tensor.shape, tensor.ggml_type)
        assert nbytes is not None
        needed = max(needed, data_start + offset + nbytes)
    if needed > size:
        raise GGUFError(f"file is truncated: tensor data needs {needed} bytes, file has {size}")
