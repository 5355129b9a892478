"""GGUF header reading, model descriptions and terminal-safe text.

The broken-file corpus is built in ``tmp_path``: crafted files are written with
the ``struct`` helpers below, truncated files are prefixes of a real model.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import struct
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workbench.engine.models import gguf as gguf_module
from workbench.engine.models.gguf import (
    ArrayInfo,
    GGUFError,
    GGUFFile,
    TensorInfo,
    read_gguf,
    tensor_nbytes,
)
from workbench.engine.models.modelinfo import describe, format_bytes, format_count
from workbench.engine.sanitize import clean

# --------------------------------------------------------------------------
# Writing GGUF files
# --------------------------------------------------------------------------

T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32 = 0, 1, 2, 3, 4, 5
T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 6, 7, 8, 9, 10, 11, 12
GGML_F32 = 0


def gstr(text: str | bytes) -> bytes:
    """A GGUF string: u64 length, then the bytes."""
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def encode_value(value: object) -> tuple[int, bytes]:
    """Value type and payload for a Python value (ints become u32, floats f32)."""
    if isinstance(value, bool):
        return T_BOOL, struct.pack("<B", value)
    if isinstance(value, int):
        return T_UINT32, struct.pack("<I", value)
    if isinstance(value, float):
        return T_FLOAT32, struct.pack("<f", value)
    if isinstance(value, str | bytes):
        return T_STRING, gstr(value)
    if isinstance(value, list):
        if all(isinstance(v, str | bytes) for v in value):
            items = b"".join(gstr(v) for v in value)
            return T_ARRAY, struct.pack("<IQ", T_STRING, len(value)) + items
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            items = struct.pack(f"<{len(value)}i", *value)
            return T_ARRAY, struct.pack("<IQ", T_INT32, len(value)) + items
    raise TypeError(f"cannot encode {value!r}")


def kv(key: str | bytes, value: object) -> bytes:
    """One metadata entry."""
    vtype, payload = encode_value(value)
    return gstr(key) + struct.pack("<I", vtype) + payload


def kv_raw(key: str | bytes, vtype: int, payload: bytes) -> bytes:
    """One metadata entry with an explicit type and payload (for malformed values)."""
    return gstr(key) + struct.pack("<I", vtype) + payload


def tensor_info(
    name: str, shape: tuple[int, ...], ggml_type: int = GGML_F32, offset: int = 0
) -> bytes:
    """One tensor info record."""
    return (
        gstr(name)
        + struct.pack("<I", len(shape))
        + struct.pack(f"<{len(shape)}Q", *shape)
        + struct.pack("<IQ", ggml_type, offset)
    )


def build_gguf(
    kvs: list[bytes],
    tensors: list[bytes] | None = None,
    data: bytes = b"",
    *,
    version: int = 3,
    n_kv: int | None = None,
    n_tensors: int | None = None,
    alignment: int = 32,
) -> bytes:
    """Assemble a GGUF file; ``n_kv``/``n_tensors`` override the header counts."""
    tensors = tensors or []
    header = b"GGUF" + struct.pack(
        "<IQQ",
        version,
        len(tensors) if n_tensors is None else n_tensors,
        len(kvs) if n_kv is None else n_kv,
    )
    body = header + b"".join(kvs) + b"".join(tensors)
    if tensors:
        body += b"\x00" * (-len(body) % alignment)
    return body + data


def minimal_gguf(metadata: dict[str, object] | None = None, *, with_tensor: bool = True) -> bytes:
    """A small valid v3 file: the given metadata and at most one F32 tensor of 4 floats."""
    meta: dict[str, object] = {"general.architecture": "llama", "general.name": "tiny"}
    meta.update(metadata or {})
    kvs = [kv(k, v) for k, v in meta.items()]
    if not with_tensor:
        return build_gguf(kvs)
    data = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
    return build_gguf(kvs, [tensor_info("t.weight", (4,))], data)


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def copy_prefix(src: Path, dst: Path, n: int) -> Path:
    """Write the first ``n`` bytes of ``src`` to ``dst`` (a truncated download)."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        left = n
        while left:
            chunk = fin.read(min(left, 1 << 22))
            if not chunk:
                break
            fout.write(chunk)
            left -= len(chunk)
    return dst


def offset_of(path: Path, needle: bytes, limit: int = 8 << 20) -> int:
    """Where ``needle`` first occurs in the first ``limit`` bytes of ``path``."""
    with path.open("rb") as f:
        pos = f.read(limit).find(needle)
    assert pos > 0, needle
    return pos


# --------------------------------------------------------------------------
# The two real default models
# --------------------------------------------------------------------------

EXPECTED: dict[str, dict[str, Any]] = {
    "smollm2": {
        "architecture": "llama",
        "params_label": "134.5M",
        "n_params": 134_515_008,
        "quant": "Q4_1",
        "context_length": 8192,
        "n_layer": 30,
        "n_embd": 576,
        "n_head": 9,
        "n_head_kv": 3,
        "key_length": 64,
        "tokenizer": "gpt2",
        "n_vocab": 49152,
        "has_chat_template": True,
        "base_or_instruct": "instruct",
        "size_label": "93.8 MiB",
        "file_type": 3,
        "n_tensors": 272,
    },
    "gemma": {
        "architecture": "gemma3",
        "params_label": "268.1M",
        "n_params": 268_098_176,
        "quant": "Q4_K_M",
        "context_length": 32768,
        "n_layer": 18,
        "n_embd": 640,
        "n_head": 4,
        "n_head_kv": 1,
        "key_length": 256,
        "tokenizer": "llama",
        "n_vocab": 262144,
        # This build of the base model ships no tokenizer.chat_template.
        "has_chat_template": False,
        "base_or_instruct": "base",
        "size_label": "241.4 MiB",
        "file_type": 15,
        "n_tensors": 236,
    },
}


@pytest.mark.parametrize("which", sorted(EXPECTED))
def test_real_model_header(default_model_paths: dict[str, Path], which: str) -> None:
    path = default_model_paths[which]
    expected = EXPECTED[which]
    gguf = read_gguf(path)
    assert gguf.version == 3
    assert gguf.file_size == path.stat().st_size
    assert gguf.metadata["general.architecture"] == expected["architecture"]
    assert gguf.metadata["general.file_type"] == expected["file_type"]
    assert len(gguf.tensors) == expected["n_tensors"]
    assert all(isinstance(t, TensorInfo) for t in gguf.tensors)

    # The vocabulary is stepped over, not decoded.
    tokens = gguf.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, ArrayInfo)
    assert tokens == ArrayInfo(item_type=T_STRING, length=expected["n_vocab"])
    assert isinstance(gguf.metadata["tokenizer.ggml.token_type"], ArrayInfo)

    # Keys stored after the big arrays are still read correctly.
    assert isinstance(gguf.metadata["general.quantization_version"], int)
    assert isinstance(gguf.metadata["tokenizer.ggml.bos_token_id"], int)


@pytest.mark.parametrize("which", sorted(EXPECTED))
def test_real_model_description(default_model_paths: dict[str, Path], which: str) -> None:
    info = describe(default_model_paths[which])
    expected = EXPECTED[which]
    for field in (
        "architecture",
        "n_params",
        "quant",
        "context_length",
        "n_layer",
        "n_embd",
        "n_head",
        "n_head_kv",
        "key_length",
        "tokenizer",
        "n_vocab",
        "has_chat_template",
        "base_or_instruct",
    ):
        assert getattr(info, field) == expected[field], field
    assert info.params_label == expected["params_label"]
    assert info.size_label == expected["size_label"]
    assert info.value_length == info.key_length
    assert info.has_chat_template == (info.chat_template is not None)
    n_layer, n_head_kv, key_length = info.n_layer, info.n_head_kv, info.key_length
    assert n_layer is not None and n_head_kv is not None and key_length is not None
    assert info.kv_bytes_per_token() == n_layer * n_head_kv * 2 * key_length * 2
    json.dumps(info.to_dict())


def test_smollm2_chat_template_is_raw(default_model_paths: dict[str, Path]) -> None:
    info = describe(default_model_paths["smollm2"])
    assert info.chat_template is not None
    assert "<|im_start|>" in info.chat_template
    assert "\n" in info.chat_template  # not flattened by sanitizing


class _CountingFile:
    """A file that counts the bytes read through it."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.read_bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)

    def __enter__(self) -> _CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


@pytest.mark.parametrize("which", sorted(EXPECTED))
def test_real_model_reads_only_its_header(
    default_model_paths: dict[str, Path], which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What kept reading a model's metadata in milliseconds (timed in the
    # benchmarks, figure 8): the vocabulary is stepped over, not decoded,
    # and no tensor data is read.
    opened: list[_CountingFile] = []
    open_checked = gguf_module._open_checked

    def counting(path: Path) -> tuple[Any, int]:
        f, size = open_checked(path)
        opened.append(_CountingFile(f))
        return opened[-1], size

    monkeypatch.setattr(gguf_module, "_open_checked", counting)
    gguf = read_gguf(default_model_paths[which])
    assert isinstance(gguf.metadata["tokenizer.ggml.tokens"], ArrayInfo)
    tensor_bytes = sum(tensor_nbytes(t.shape, t.ggml_type) or 0 for t in gguf.tensors)
    header_bytes = gguf.file_size - tensor_bytes
    # The reader may read ahead by one chunk past the last header byte it needs.
    assert opened[0].read_bytes <= header_bytes + (1 << 20)
    assert opened[0].read_bytes < gguf.file_size // 4


def test_read_without_tensors(default_model_paths: dict[str, Path]) -> None:
    path = default_model_paths["smollm2"]
    full = read_gguf(path)
    header_only = read_gguf(path, read_tensors=False)
    assert header_only.tensors == ()
    assert header_only.metadata == full.metadata


def test_large_max_array_items_decodes_vocabulary(default_model_paths: dict[str, Path]) -> None:
    gguf = read_gguf(default_model_paths["smollm2"], max_array_items=100_000, read_tensors=False)
    tokens = gguf.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, list)
    assert len(tokens) == 49152
    assert all(isinstance(t, str) for t in tokens)


# --------------------------------------------------------------------------
# Crafted valid files
# --------------------------------------------------------------------------


def test_minimal_file_round_trip(tmp_path: Path) -> None:
    meta: dict[str, object] = {
        "general.architecture": "llama",
        "general.name": "tiny",
        "general.flag": True,
        "general.ratio": 0.5,
        "general.tags": ["a", "b"],
        "llama.layer_sizes": [1, -2, 3],
    }
    path = write(tmp_path / "tiny.gguf", minimal_gguf(meta))
    gguf = read_gguf(path)
    assert isinstance(gguf, GGUFFile)
    assert gguf.path == path
    assert gguf.metadata == meta
    assert gguf.tensors == (TensorInfo(name="t.weight", shape=(4,), ggml_type=GGML_F32),)
    info = describe(path)
    assert info.n_params == 4
    assert info.quant == "F32"  # inferred: no general.file_type, F32 weights only
    assert info.params_label == "4"
    assert info.base_or_instruct == "base"
    assert info.context_length is None
    assert info.kv_bytes_per_token() is None


def test_all_scalar_types(tmp_path: Path) -> None:
    scalars = [
        (T_UINT8, "<B", 200),
        (T_INT8, "<b", -5),
        (T_UINT16, "<H", 60000),
        (T_INT16, "<h", -300),
        (T_UINT32, "<I", 4_000_000_000),
        (T_INT32, "<i", -7),
        (T_UINT64, "<Q", 2**63),
        (T_INT64, "<q", -(2**40)),
        (T_FLOAT64, "<d", 1.25),
    ]
    kvs = [kv_raw(f"k{i}", t, struct.pack(fmt, v)) for i, (t, fmt, v) in enumerate(scalars)]
    gguf = read_gguf(write(tmp_path / "s.gguf", build_gguf(kvs)))
    assert [gguf.metadata[f"k{i}"] for i in range(len(scalars))] == [v for *_, v in scalars]


def test_long_string_arrays_are_skipped_exactly(tmp_path: Path) -> None:
    # Lengths from empty to long, spanning more than one read window, so both
    # the bulk skip and the one-at-a-time path run, and cross window edges.
    rng = random.Random(7)
    strings = []
    for i in range(150_000):
        n = rng.choice((0, 1, 3, 8, 12, 40, 63, 64, 65, 200, 255, 256, 300)) if i % 97 == 0 else 9
        strings.append(bytes(rng.randrange(256) for _ in range(n)) if n > 100 else b"x" * n)
    kvs = [
        kv("general.architecture", "llama"),
        kv("tokenizer.ggml.tokens", strings),
        kv("after", "still here"),
        kv("tokenizer.ggml.small", [b"a", b"b"]),
    ]
    path = write(tmp_path / "vocab.gguf", build_gguf(kvs, [tensor_info("t", (4,))], b"\0" * 16))
    gguf = read_gguf(path)
    assert gguf.metadata["tokenizer.ggml.tokens"] == ArrayInfo(T_STRING, len(strings))
    assert gguf.metadata["after"] == "still here"
    assert gguf.metadata["tokenizer.ggml.small"] == ["a", "b"]
    assert gguf.tensors[0].name == "t"
    decoded = read_gguf(path, max_array_items=len(strings)).metadata["tokenizer.ggml.tokens"]
    assert decoded == [s.decode("utf-8", errors="replace") for s in strings]


def test_long_arrays_of_arrays_are_skipped(tmp_path: Path) -> None:
    inner = struct.pack("<IQ", T_STRING, 2) + gstr("ab") + gstr("c")
    payload = struct.pack("<IQ", T_ARRAY, 100) + inner * 100
    kvs = [kv_raw("nested", T_ARRAY, payload), kv("after", 1)]
    gguf = read_gguf(write(tmp_path / "n.gguf", build_gguf(kvs)))
    assert gguf.metadata["nested"] == ArrayInfo(T_ARRAY, 100)
    assert gguf.metadata["after"] == 1
    small = read_gguf(tmp_path / "n.gguf", max_array_items=100).metadata["nested"]
    assert small == [["ab", "c"]] * 100


def test_fixed_size_array_boundary(tmp_path: Path) -> None:
    kvs = [kv("a", list(range(64))), kv("b", list(range(65))), kv("after", "x")]
    gguf = read_gguf(write(tmp_path / "a.gguf", build_gguf(kvs)))
    assert gguf.metadata["a"] == list(range(64))
    assert gguf.metadata["b"] == ArrayInfo(T_INT32, 65)
    assert gguf.metadata["after"] == "x"


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    path = write(tmp_path / "u.gguf", minimal_gguf({"general.name": b"ok\xff\xfeok"}))
    assert read_gguf(path).metadata["general.name"] == "ok\ufffd\ufffdok"


def test_quant_inferred_from_tensors(tmp_path: Path) -> None:
    q8 = 8  # GGML_TYPE_Q8_0: 34 bytes per 32 elements
    tensors = [tensor_info("w", (32, 2), q8, 0), tensor_info("norm", (32,), GGML_F32, 96)]
    content = build_gguf([kv("general.architecture", "llama")], tensors, b"\0" * (96 + 128))
    info = describe(write(tmp_path / "q.gguf", content))
    assert info.quant == "Q8_0"
    assert info.n_params == 96


def test_unknown_file_type_falls_back(tmp_path: Path) -> None:
    path = write(tmp_path / "f.gguf", minimal_gguf({"general.file_type": 999}))
    assert describe(path).quant == "F32"
    path = write(tmp_path / "g.gguf", minimal_gguf({"general.file_type": 999}, with_tensor=False))
    assert describe(path).quant == "unknown"


def test_file_type_table() -> None:
    from workbench.engine.models.modelinfo import FILE_TYPE_NAMES

    assert FILE_TYPE_NAMES[0] == "F32"
    assert FILE_TYPE_NAMES[1] == "F16"
    assert FILE_TYPE_NAMES[3] == "Q4_1"
    assert FILE_TYPE_NAMES[7] == "Q8_0"
    assert FILE_TYPE_NAMES[15] == "Q4_K_M"
    assert FILE_TYPE_NAMES[18] == "Q6_K"
    assert FILE_TYPE_NAMES[32] == "BF16"


def test_instruct_heuristics(tmp_path: Path) -> None:
    template = "{{ messages }}"
    cases = [
        ("Gemma 3 270m It", template, "instruct"),
        ("Qwen2.5 0.5B Instruct", template, "instruct"),
        ("TinyLlama Chat", template, "instruct"),
        ("Gemma 3 270m", template, "base"),
        ("Llama 2bit", template, "base"),
        ("Model Instruct", None, "base"),  # no template, nothing to chat with
    ]
    for i, (name, tmpl, expected) in enumerate(cases):
        meta: dict[str, object] = {"general.name": name}
        if tmpl is not None:
            meta["tokenizer.chat_template"] = tmpl
        info = describe(write(tmp_path / f"m{i}.gguf", minimal_gguf(meta)))
        assert info.base_or_instruct == expected, name


def test_labels() -> None:
    assert format_count(134_515_008) == "134.5M"
    assert format_count(268_098_176) == "268.1M"
    assert format_count(1_235_814_400) == "1.2B"
    assert format_count(999_960_000) == "1.0B"
    assert format_count(12_345) == "12.3K"
    assert format_count(None) == "?"
    assert format_bytes(98_362_432) == "93.8 MiB"
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"


def test_head_dim_defaults(tmp_path: Path) -> None:
    meta: dict[str, object] = {
        "llama.block_count": 2,
        "llama.embedding_length": 64,
        "llama.attention.head_count": 4,
    }
    info = describe(write(tmp_path / "h.gguf", minimal_gguf(meta)))
    assert info.n_head_kv == 4  # defaults to n_head
    assert info.key_length == info.value_length == 16  # n_embd // n_head
    assert info.kv_bytes_per_token() == 2 * 4 * 32 * 2
    assert info.kv_bytes_per_token(cache_type_bytes=1) == 2 * 4 * 32


# --------------------------------------------------------------------------
# The broken-file corpus
# --------------------------------------------------------------------------

Maker = Callable[[Path, dict[str, Path]], Path]


def _truncated_at(where: str) -> Maker:
    def make(tmp: Path, models: dict[str, Path]) -> Path:
        src = models["smollm2"]
        size = src.stat().st_size
        offsets = {
            "header": 10,
            "header-counts": 20,
            "metadata": offset_of(src, b"general.name") + 5,
            "token-array": offset_of(src, b"tokenizer.ggml.tokens") + 50_000,
            "merges-array": offset_of(src, b"tokenizer.ggml.merges") + 400_000,
            "chat-template": offset_of(src, b"tokenizer.chat_template") + 100,
            "tensor-infos": offset_of(src, b"blk.0.attn_norm.weight") + 3,
            "tensor-data": 4_000_000,
            "last-byte": size - 1,
        }
        return copy_prefix(src, tmp / f"cut-{where}.gguf", offsets[where])

    return make


def _crafted(content: bytes, name: str = "crafted.gguf") -> Maker:
    def make(tmp: Path, models: dict[str, Path]) -> Path:
        return write(tmp / name, content)

    return make


def _random_bytes(tmp: Path, models: dict[str, Path]) -> Path:
    return write(tmp / "random.gguf", random.Random(1234).randbytes(64 * 1024))


def _directory(tmp: Path, models: dict[str, Path]) -> Path:
    path = tmp / "dir.gguf"
    path.mkdir()
    return path


def _missing(tmp: Path, models: dict[str, Path]) -> Path:
    return tmp / "nothing-here.gguf"


def _fifo(tmp: Path, models: dict[str, Path]) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    path = tmp / "pipe.gguf"
    os.mkfifo(path)
    return path


def _nested(depth: int) -> bytes:
    payload = struct.pack("<IQ", T_UINT8, 0)
    for _ in range(depth):
        payload = struct.pack("<IQ", T_ARRAY, 1) + payload
    return kv_raw("deep", T_ARRAY, payload)


_ONE_TENSOR = [tensor_info("t", (4,))]
_ARCH = kv("general.architecture", "llama")

CORPUS: dict[str, tuple[Maker, str]] = {
    "empty": (_crafted(b""), "empty file"),
    "random-bytes": (_random_bytes, "not a GGUF file"),
    "zip-magic": (_crafted(b"PK\x03\x04" + b"\0" * 100), "magic b'PK\\x03\\x04'"),
    "text-file": (_crafted(b"These are my notes about models.\n" * 10), "not a GGUF file"),
    "lfs-pointer": (
        _crafted(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 98362432\n"),
        "Git LFS pointer",
    ),
    "html-page": (_crafted(b"<!DOCTYPE html><html><body>404</body></html>"), "HTML"),
    "magic-only": (_crafted(b"GGUF"), "truncated"),
    "version-1": (_crafted(build_gguf([_ARCH], version=1)), "unsupported GGUF version 1"),
    "version-7": (_crafted(build_gguf([_ARCH], version=7)), "unsupported GGUF version 7"),
    "big-endian": (
        _crafted(b"GGUF" + struct.pack(">IQQ", 3, 0, 0)),
        "big-endian",
    ),
    "absurd-kv-count": (_crafted(build_gguf([_ARCH], n_kv=2**40)), "absurd"),
    "absurd-kv-count-2^32": (
        _crafted(build_gguf([_ARCH], n_kv=2**32)),
        "metadata count 4294967296 is absurd",
    ),
    "more-keys-than-present": (_crafted(build_gguf([_ARCH], n_kv=5)), "truncated"),
    "absurd-tensor-count": (_crafted(build_gguf([_ARCH], n_tensors=2**40)), "absurd"),
    "absurd-key-length": (
        _crafted(build_gguf([struct.pack("<Q", 2**60) + b"key" + b"\0" * 32])),
        "string length 1152921504606846976 is absurd",
    ),
    "absurd-string-value": (
        _crafted(build_gguf([kv_raw("general.name", T_STRING, struct.pack("<Q", 2**60))])),
        "absurd",
    ),
    "absurd-array-length": (
        _crafted(build_gguf([kv_raw("a", T_ARRAY, struct.pack("<IQ", T_UINT8, 2**40))])),
        "absurd",
    ),
    "absurd-string-array": (
        _crafted(build_gguf([kv_raw("a", T_ARRAY, struct.pack("<IQ", T_STRING, 2**33))])),
        "absurd",
    ),
    "lying-string-in-array": (
        _crafted(
            build_gguf(
                [
                    kv_raw("a", T_ARRAY, struct.pack("<IQ", T_STRING, 100) + gstr("x") * 99),
                    struct.pack("<Q", 2**62),  # the 100th string claims to be enormous
                ]
            )
        ),
        "truncated",
    ),
    "unknown-value-type": (
        _crafted(build_gguf([kv_raw("general.name", 13, b"\0" * 8)])),
        "unknown metadata value type 13",
    ),
    "unknown-array-item-type": (
        _crafted(build_gguf([kv_raw("a", T_ARRAY, struct.pack("<IQ", 99, 1))])),
        "unknown metadata value type 99",
    ),
    "arrays-nested-too-deep": (_crafted(build_gguf([_nested(50)])), "nested"),
    "duplicate-key": (_crafted(build_gguf([_ARCH, _ARCH])), "duplicate metadata key"),
    "n-dims-1000": (
        _crafted(
            build_gguf(
                [_ARCH],
                [gstr("t") + struct.pack("<I", 1000) + b"\0" * 8016],
            )
        ),
        "1000 dimensions",
    ),
    "absurd-dimension": (
        _crafted(build_gguf([_ARCH], [tensor_info("t", (2**64 - 1,))])),
        "absurd dimension",
    ),
    "huge-tensor": (
        _crafted(build_gguf([_ARCH], [tensor_info("t", (2**40, 2**20))], b"\0" * 64)),
        "file is truncated: tensor data needs",
    ),
    "tensor-past-end": (
        _crafted(build_gguf([_ARCH], [tensor_info("t", (4,), GGML_F32, 1024)], b"\0" * 16)),
        "file is truncated: tensor data needs",
    ),
    "misaligned-tensor": (
        _crafted(build_gguf([_ARCH], [tensor_info("t", (4,), GGML_F32, 3)], b"\0" * 64)),
        "alignment",
    ),
    "bad-alignment": (
        _crafted(build_gguf([_ARCH, kv("general.alignment", 3)], _ONE_TENSOR, b"\0" * 16)),
        "general.alignment",
    ),
    "partial-block": (
        _crafted(build_gguf([_ARCH], [tensor_info("t", (33,), 8)], b"\0" * 128)),
        "block size",
    ),
    "duplicate-tensor": (
        _crafted(build_gguf([_ARCH], _ONE_TENSOR * 2, b"\0" * 16)),
        "duplicate tensor",
    ),
    "directory": (_directory, "directory"),
    "missing": (_missing, "no such file"),
    "fifo": (_fifo, "not a regular file"),
    "truncated-in-header": (_truncated_at("header"), "truncated"),
    "truncated-in-header-counts": (_truncated_at("header-counts"), "truncated"),
    "truncated-in-metadata": (_truncated_at("metadata"), "truncated"),
    "truncated-in-token-array": (_truncated_at("token-array"), "truncated"),
    "truncated-in-merges-array": (_truncated_at("merges-array"), "truncated"),
    "truncated-in-chat-template": (_truncated_at("chat-template"), "truncated"),
    "truncated-in-tensor-infos": (_truncated_at("tensor-infos"), "truncated"),
    "truncated-in-tensor-data": (_truncated_at("tensor-data"), "tensor data needs"),
    "truncated-last-byte": (_truncated_at("last-byte"), "tensor data needs 98362432 bytes"),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_broken_files_are_refused(
    tmp_path: Path, default_model_paths: dict[str, Path], case: str
) -> None:
    make, reason = CORPUS[case]
    path = make(tmp_path, default_model_paths)
    with pytest.raises(GGUFError) as excinfo:
        read_gguf(path)
    assert reason in str(excinfo.value)
    assert excinfo.value.reason == str(excinfo.value)
    # describe() reports the same problem the same way.
    with pytest.raises(GGUFError):
        describe(path)


@pytest.mark.timeout(10)
def test_every_prefix_of_a_small_file_is_refused(tmp_path: Path) -> None:
    content = minimal_gguf(
        {"general.tags": ["x", "y"], "tokenizer.chat_template": "{{ x }}", "n": 3}
    )
    read_gguf(write(tmp_path / "whole.gguf", content))
    for n in range(len(content)):
        path = write(tmp_path / "prefix.gguf", content[:n])
        with pytest.raises(GGUFError):
            read_gguf(path)


@pytest.mark.timeout(10)
def test_random_corruption_never_crashes(tmp_path: Path) -> None:
    content = bytearray(
        minimal_gguf({"general.tags": ["x", "y"], "l": list(range(100)), "s": "text"})
    )
    rng = random.Random(99)
    for i in range(300):
        mutated = bytearray(content)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path = write(tmp_path / f"m{i % 2}.gguf", bytes(mutated))
        # Either a description or a GGUFError; anything else fails the test.
        with contextlib.suppress(GGUFError):
            describe(path)


# --------------------------------------------------------------------------
# Hostile metadata reaches the screen only sanitized
# --------------------------------------------------------------------------

OSC52 = "\x1b]52;c;ZXZpbA==\x07"
HOSTILE_NAME = (
    b"Evil"
    + OSC52.encode()
    + b"\x1b[2J"
    + b"\xff\xfe"  # invalid UTF-8
    + "\x9b".encode()  # C1 CSI as a character
    + b"\x9b"  # and as a lone byte
    + b"31m"
    + "\u202e".encode()  # right-to-left override
    + b"Model\r\n"
)


def _assert_terminal_safe(text: str) -> None:
    assert "\x1b" not in text
    assert "52;c" not in text
    assert "ZXZpbA" not in text
    assert "2J" not in text
    for ch in text:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs"), repr(ch)


def test_hostile_metadata_is_sanitized(tmp_path: Path) -> None:
    meta: dict[str, object] = {
        "general.name": HOSTILE_NAME,
        "general.architecture": b"llama\x1b]0;title\x07",
        "general.license": b"MIT\x1b[31m\xe2\x80\xae",
        "tokenizer.ggml.model": b"gpt2\x07\x08",
        "tokenizer.chat_template": "{{ '\x1b' }}\n{{ messages }}",
    }
    info = describe(write(tmp_path / "evil.gguf", minimal_gguf(meta)))
    for text in (info.name, info.architecture, info.license, info.tokenizer):
        assert text is not None
        _assert_terminal_safe(text)
    assert info.name.startswith("Evil")
    assert info.name.endswith("Model")
    assert info.architecture == "llama"
    assert info.license == "MIT"
    assert info.tokenizer == "gpt2"
    # The template is for the template engine and stays byte for byte, but it
    # stays out of the dict that gets printed unless asked for.
    assert info.chat_template == "{{ '\x1b' }}\n{{ messages }}"
    assert "chat_template" not in info.to_dict()
    assert info.to_dict(include_template=True)["chat_template"] == info.chat_template
    printed = json.dumps(info.to_dict(), ensure_ascii=False)
    assert "\x1b" not in printed
    assert "\u202e" not in printed


def test_name_falls_back_to_file_stem(tmp_path: Path) -> None:
    content = minimal_gguf({"general.name": "\x1b[2J\x07"})
    info = describe(write(tmp_path / "My-Model.Q4_0.gguf", content))
    assert info.name == "My-Model.Q4_0"


# --------------------------------------------------------------------------
# sanitize.clean
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain text", "plain text"),
        ("Ünïcödé 漢字 😀", "Ünïcödé 漢字 😀"),
        ("family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"),  # ZWJ survives
        ("a\x1b]52;c;ZXZpbA==\x07b", "ab"),  # OSC 52, BEL-terminated
        ("a\x1b]52;c;ZXZpbA==\x1b\\b", "ab"),  # OSC 52, ST-terminated
        ("a\x1b]0;title", "a"),  # unterminated OSC swallows the rest
        ("a\x9d0;title\x9cb", "ab"),  # 8-bit OSC and ST
        ("a\x1b[2Jb", "ab"),
        ("a\x1b[38;5;196mred\x1b[0m", "ared"),
        ("a\x1b[?1049hb", "ab"),
        ("a\x9b31mb", "ab"),  # 8-bit CSI
        ("a\x1bP1;2|data\x1b\\b", "ab"),  # DCS
        ("a\x1b_apc\x1b\\b\x1b^pm\x07c\x1bXsos\x1b\\d", "abcd"),
        ("a\x1bcb\x1b(Bc\x1b7d", "abcd"),  # single-character and nF escapes
        ("a\x1b", "a"),
        ("a\x00b\x07c\x08d\x7fe\x85f", "abcdef"),
        ("line1\nline2\tx\r", "line1 line2 x"),
        ("abc\u202edef\u2066g\u2069", "abcdefg"),  # bidi override and isolates
        ("zero\u200bwidth\ufeff\u2060", "zerowidth"),
        ("tag\U000e0041\U000e007f", "tag"),
        ("para\u2029graph", "para graph"),
        ("lone \udc80 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_clean(raw: str, expected: str) -> None:
    assert clean(raw) == expected


def test_clean_keep_newlines() -> None:
    assert clean("a\nb\tc\r\nd\x1b[2Je", keep_newlines=True) == "a\nb\tc\nde"
    assert clean("a\u2028b", keep_newlines=True) == "a\nb"


def test_clean_bytes() -> None:
    assert clean(b"ok \xff\xfe done") == "ok \ufffd\ufffd done"
    assert clean(b"\xc2\x9b31mred") == "red"
    # The lone 0x9b byte is invalid UTF-8, so the C1 character before it starts
    # a CSI with no parameters and "31m" is left as plain text.
    assert clean(HOSTILE_NAME) == "Evil\ufffd\ufffd\ufffd31mModel "


def test_clean_truncates() -> None:
    assert clean("x" * 300) == "x" * 199 + "…"
    assert len(clean("x" * 300, max_len=10)) == 10
    assert clean("x" * 10, max_len=10) == "x" * 10
    assert clean("abc", max_len=0) == ""
    # The limit applies after stripping, so escapes do not eat into it.
    assert clean("\x1b[31m" * 100 + "short", max_len=10) == "short"


def test_clean_output_is_printable() -> None:
    rng = random.Random(5)
    alphabet = [chr(c) for c in range(0, 0x250)] + ["\x1b", "\u202e", "\u200d", "😀"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        out = clean(text, max_len=1000)
        assert "\x1b" not in out
        assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in out)
        out.encode("utf-8")
