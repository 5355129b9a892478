"""What the Hub lists: a repository's files, grouped into GGUF models, and
the quantization each file name states. No network here."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.engine.models.modelinfo import FILE_TYPE_NAMES, format_bytes
from workbench.engine.sanitize import clean

# -- quantization names -----------------------------------------------------------

# Names seen in GGUF file names beyond llama.cpp's own file types: the "large"
# and "extra large" K-quant mixes, and the usual spellings of float types.
_EXTRA_QUANTS = ("Q2_K_L", "Q3_K_XL", "Q4_K_L", "Q4_K_XL", "Q5_K_L", "Q5_K_XL", "Q6_K_L",
                 "Q6_K_XL", "Q8_K_XL", "Q8_K", "MXFP4", "FP16", "FP32", "FP8")  # fmt: skip
_QUANTS = sorted(
    {n for n in FILE_TYPE_NAMES.values() if "SOME" not in n} | set(_EXTRA_QUANTS),
    key=len,
    reverse=True,
)
# A quant name standing alone: not inside a longer word ("BF16" holds "F16").
_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(re.escape(q) for q in _QUANTS) + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# Anything shaped like a quant, for names newer than the list above.
_QUANT_SHAPE_RE = re.compile(
    r"(?<![A-Za-z0-9])(I?Q[1-8](?:_[A-Z0-9]{1,3}){1,3})(?![A-Za-z0-9])", re.IGNORECASE
)
# One part of a split model: NAME-00001-of-00003.gguf.
SPLIT_RE = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
HEX64 = re.compile(r"[0-9a-f]{64}")  # a sha256, as LFS and the Hub's ETags give it
HEX40 = re.compile(r"[0-9a-f]{40}")  # a git commit or blob id


def quant_from_name(name: str) -> str:
    """The quantization a file name states (``Q4_K_M``, ``IQ4_XS``, ``BF16``), or "?".

    The last one wins: names put the quantization at the end
    ("Llama-3.2-1B-Instruct-Q4_K_M.gguf").
    """
    stem = Path(name).name
    stem = SPLIT_RE.sub(r"\g<base>", stem)
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    found = _QUANT_RE.findall(stem) or _QUANT_SHAPE_RE.findall(stem)
    if not found:
        return "?"
    quant = found[-1].upper()
    return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)


# -- what the Hub lists -------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    """One file in a repository, as the Hub lists it."""

    path: str
    size: int
    sha256: str | None = None  # the LFS object id; None for files not in LFS
    blob_id: str | None = None  # the git blob id


@dataclass(frozen=True)
class HubGGUF:
    """One model in a repository: a GGUF file, or all parts of a split one."""

    name: str
    parts: tuple[HubFile, ...]
    quant: str
    n_parts: int = 1  # parts the names announce; more than ``len(parts)`` if some are missing

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def split(self) -> bool:
        return self.n_parts > 1

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.n_parts

    @property
    def label(self) -> str:
        """The name for display, with the number of parts of a split file."""
        text = clean(self.name, max_len=160)
        if self.split and self.complete:
            text += f" ({self.n_parts} parts)"
        elif self.split:
            text += f" ({len(self.parts)} of {self.n_parts} parts)"
        return text

    def matches(self, pattern: str) -> bool:
        """``pattern`` (fnmatch, any case) matches the name, a part, or their base names."""
        pattern = pattern.lower()
        names = [self.name, *(p.path for p in self.parts)]
        names += [n.rsplit("/", 1)[-1] for n in names]
        return any(fnmatch.fnmatchcase(n.lower(), pattern) for n in names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quant": self.quant,
            "size": self.size,
            "size_label": format_bytes(self.size),
            "parts": [{"path": p.path, "size": p.size, "sha256": p.sha256} for p in self.parts],
            "n_parts": self.n_parts,
            "complete": self.complete,
        }


@dataclass(frozen=True)
class RepoListing:
    """The GGUF models in one repository at one commit."""

    repo_id: str
    revision: str
    commit: str
    files: tuple[HubGGUF, ...]
    n_files: int = 0  # every file in the repository, GGUF or not
    gated: bool = False
    private: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "gated": self.gated,
            "private": self.private,
            "files": [f.to_dict() for f in self.files],
        }
