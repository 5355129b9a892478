"""Model descriptions kept between runs, so a catalog scan reads each GGUF
header once rather than at every start.

Reading a header means stepping over the model's whole vocabulary (Gemma 3:
262,144 strings, 20-30 ms in pure Python), yet the description of a file
that has not changed never changes. Entries are keyed by the file's resolved
path and checked against its size, modification and change times, inode and
device, so a file that is replaced, grown or touched is read again. Only
files that read cleanly are kept: a broken one is read (and refused) again
each time. A cache that cannot be read or written is ignored; it only ever
saves time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from workbench.engine import paths
from workbench.engine.models.modelinfo import ModelInfo, describe

VERSION = 1
FILE_NAME = "model-info.json"

# Checks for each field's declared type (``ModelInfo`` annotations, as text):
# a stored value must have the type the field has now, or the entry is read
# again. A field of any other type never comes from the cache.
_CHECKS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "int | None": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "str": lambda v: isinstance(v, str),
    "str | None": lambda v: v is None or isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
}


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _to_dict(info: ModelInfo) -> dict[str, Any]:
    data = dataclasses.asdict(info)
    del data["path"]  # the key says where it is
    return data


def _from_dict(data: Any, path: Path) -> ModelInfo | None:
    """The stored description, or None if it is not one this version wrote."""
    if not isinstance(data, dict):
        return None
    values: dict[str, Any] = {"path": path}
    for field in dataclasses.fields(ModelInfo):
        if field.name == "path":
            continue
        check = _CHECKS.get(str(field.type))
        if field.name not in data or check is None or not check(data[field.name]):
            return None
        values[field.name] = data[field.name]
    return ModelInfo(**values)


class InfoCache:
    """Descriptions by file, loaded once per catalog scan and saved after it."""

    def __init__(self, path: Path, entries: dict[str, Any]) -> None:
        self.path = path
        self._entries = entries
        self._dirty = False
        self.hits = 0
        self.reads = 0

    @classmethod
    def load(cls, path: Path | None = None) -> InfoCache:
        path = path or paths.cache_dir() / FILE_NAME
        entries: Any = None
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == VERSION:
                entries = data.get("models")
        return cls(path, entries if isinstance(entries, dict) else {})

    def describe(self, path: Path) -> ModelInfo:
        """As ``modelinfo.describe`` (raising ``GGUFError`` the same way), from
        the cache when the file is unchanged since it was read."""
        try:
            real = path.resolve()
            stamp = _stamp(real.stat())
        except OSError:
            return describe(path)  # says why the file cannot be read
        key = str(real)
        kept = self._entries.get(key)
        if isinstance(kept, dict) and kept.get("stamp") == stamp:
            info = _from_dict(kept.get("info"), path)
            if info is not None:
                self.hits += 1
                return info
        self.reads += 1
        try:
            info = describe(path)
        except Exception:
            if self._entries.pop(key, None) is not None:
                self._dirty = True
            raise
        self._entries[key] = {"stamp": stamp, "info": _to_dict(info)}
        self._dirty = True
        return info

    def save(self) -> None:
        """Write the cache if anything changed; files that are gone are dropped."""
        if not self._dirty:
            return
        kept = {key: value for key, value in self._entries.items() if os.path.exists(key)}
        doc = json.dumps({"version": VERSION, "models": kept}, ensure_ascii=False)
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".model-info-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(doc)
                os.replace(tmp, self.path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        self._dirty = False
