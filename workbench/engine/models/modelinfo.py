"""A model's description, derived from the header of its GGUF file.

Everything meant for display is passed through ``sanitize.clean``: the metadata
comes from whoever made the file. The chat template is the one exception; it is
kept raw because the template engine needs it verbatim, and it is never shown.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.engine.models.gguf import ArrayInfo, GGUFFile, ggml_type_name, read_gguf
from workbench.engine.sanitize import clean

__all__ = ["FILE_TYPE_NAMES", "ModelInfo", "describe", "format_bytes", "format_count"]

#: llama.cpp's ``llama_ftype`` (stored as ``general.file_type``) -> quantization name.
FILE_TYPE_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    5: "Q4_2",
    6: "Q4_3",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    33: "Q4_0_4_4",
    34: "Q4_0_4_8",
    35: "Q4_0_8_8",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}
# llama.cpp ORs this into the file type when it had to guess it.
_FTYPE_GUESSED = 1024

# Words in a name that mark a chat-tuned model: "Instruct", "Chat", and "it" as
# a separate word (Gemma's "-it" suffix) but not inside words like "bit".
_INSTRUCT_WORDS = re.compile(r"instruct|chat|(?<![a-z0-9])it(?![a-z0-9])")


def format_count(n: int | None) -> str:
    """Format a parameter count: 134515008 -> "134.5M", 1.2e9 -> "1.2B", None -> "?"."""
    if n is None or n < 0:
        return "?"
    for divisor, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        # Pick the unit by the rounded value, so 999.96M shows as "1.0B".
        if round(n / divisor, 1) >= 1:
            return f"{n / divisor:.1f}{suffix}"
    return str(n)


def format_bytes(n: int) -> str:
    """Format a size in binary units: 98362432 -> "93.8 MiB"."""
    if n < 1024:
        return f"{n} B"
    for power, unit in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        divisor = 1024**power
        if round(n / divisor, 1) >= 1 or power == 1:
            return f"{n / divisor:.1f} {unit}"
    raise AssertionError("unreachable")


def _int(value: object) -> int | None:
    """An integer metadata value; per-layer arrays give their largest entry."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, list) and value:
        ints = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        if len(ints) == len(value):
            return max(ints) if max(ints) >= 0 else None
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _quant_label(gguf: GGUFFile) -> str:
    file_type = _int(gguf.metadata.get("general.file_type"))
    if file_type is not None:
        name = FILE_TYPE_NAMES.get(file_type & ~_FTYPE_GUESSED)
        if name is not None:
            return name
    # Without a usable file type, name the type that holds most of the weights.
    # Norms and biases (one-dimensional) stay in F32 and would skew the count.
    weights: Counter[int] = Counter()
    for tensor in gguf.tensors:
        if len(tensor.shape) >= 2:
            weights[tensor.ggml_type] += tensor.n_elements
    if not weights:
        for tensor in gguf.tensors:
            weights[tensor.ggml_type] += tensor.n_elements
    if not weights:
        return "unknown"
    return ggml_type_name(weights.most_common(1)[0][0])


def _looks_instruct(gguf: GGUFFile) -> bool:
    meta = gguf.metadata
    texts = [gguf.path.name]
    for key in ("general.name", "general.finetune", "general.basename"):
        text = _str(meta.get(key))
        if text:
            texts.append(text)
    tags = meta.get("general.tags")
    if isinstance(tags, list):
        texts.extend(tag for tag in tags if isinstance(tag, str))
    return any(_INSTRUCT_WORDS.search(text.lower()) for text in texts)


@dataclass(frozen=True)
class ModelInfo:
    """What the workbench shows and needs to know about a GGUF model file.

    Display strings (``name``, ``architecture``, ``tokenizer``, ``license``) are
    sanitized. ``chat_template`` is raw and must never be printed as is.
    """

    path: Path
    file_size: int
    name: str
    architecture: str
    n_params: int | None
    quant: str
    context_length: int | None
    n_layer: int | None
    n_embd: int | None
    n_head: int | None
    n_head_kv: int | None
    key_length: int | None
    value_length: int | None
    has_chat_template: bool
    chat_template: str | None
    tokenizer: str
    license: str | None
    base_or_instruct: str
    n_vocab: int | None

    @classmethod
    def from_gguf(cls, gguf: GGUFFile) -> ModelInfo:
        """Build the description from an already parsed file."""
        meta = gguf.metadata
        raw_arch = _str(meta.get("general.architecture")) or ""

        def arch_int(suffix: str) -> int | None:
            return _int(meta.get(f"{raw_arch}.{suffix}")) if raw_arch else None

        name = clean(_str(meta.get("general.name")) or "").strip()
        if not name:
            name = clean(gguf.path.stem).strip() or "unnamed"

        n_params: int | None = None
        if gguf.tensors:
            n_params = sum(t.n_elements for t in gguf.tensors)
        else:
            n_params = _int(meta.get("general.parameter_count"))

        n_embd = arch_int("embedding_length")
        n_head = arch_int("attention.head_count")
        n_head_kv = arch_int("attention.head_count_kv")
        if n_head_kv is None:
            n_head_kv = n_head
        head_dim = n_embd // n_head if n_embd is not None and n_head else None
        key_length = arch_int("attention.key_length")
        value_length = arch_int("attention.value_length")

        template = _str(meta.get("tokenizer.chat_template"))
        has_template = bool(template and template.strip())

        tokens = meta.get("tokenizer.ggml.tokens")
        n_vocab = len(tokens) if isinstance(tokens, ArrayInfo | list) else arch_int("vocab_size")

        license_raw = _str(meta.get("general.license"))
        license_ = clean(license_raw).strip() if license_raw else None

        return cls(
            path=gguf.path,
            file_size=gguf.file_size,
            name=name,
            architecture=clean(raw_arch).strip() or "unknown",
            n_params=n_params,
            quant=_quant_label(gguf),
            context_length=arch_int("context_length"),
            n_layer=arch_int("block_count"),
            n_embd=n_embd,
            n_head=n_head,
            n_head_kv=n_head_kv,
            key_length=key_length if key_length is not None else head_dim,
            value_length=value_length if value_length is not None else head_dim,
            has_chat_template=has_template,
            chat_template=template if has_template else None,
            tokenizer=clean(_str(meta.get("tokenizer.ggml.model")) or "").strip() or "unknown",
            license=license_ or None,
            base_or_instruct="instruct" if has_template and _looks_instruct(gguf) else "base",
            n_vocab=n_vocab,
        )

    @property
    def params_label(self) -> str:
        """Parameter count for display, e.g. "134.5M", "1.2B", or "?" if unknown."""
        return format_count(self.n_params)

    @property
    def size_label(self) -> str:
        """File size for display, e.g. "93.8 MiB"."""
        return format_bytes(self.file_size)

    def kv_bytes_per_token(self, cache_type_bytes: int = 2) -> int | None:
        """Bytes of KV cache one token of context takes (f16 cache by default).

        This is the full-attention figure; models with sliding-window layers
        (Gemma 3) need less once the context outgrows the window.
        """
        if (
            self.n_layer is None
            or self.n_head_kv is None
            or self.key_length is None
            or self.value_length is None
        ):
            return None
        per_layer = self.n_head_kv * (self.key_length + self.value_length) * cache_type_bytes
        return self.n_layer * per_layer

    def to_dict(self, *, include_template: bool = False) -> dict[str, object]:
        """A JSON-serialisable dict of all fields plus the display labels.

        The raw chat template is left out unless asked for: it is long, and it
        is the one unsanitized string, so a dict meant for printing must not
        carry it.
        """
        data = asdict(self)
        if not include_template:
            del data["chat_template"]
        data["path"] = str(self.path)
        data["params_label"] = self.params_label
        data["size_label"] = self.size_label
        data["kv_bytes_per_token"] = self.kv_bytes_per_token()
        return data


def describe(path: str | os.PathLike[str]) -> ModelInfo:
    """Read a GGUF file's header and describe the model; raises ``GGUFError``."""
    return ModelInfo.from_gguf(read_gguf(path))
