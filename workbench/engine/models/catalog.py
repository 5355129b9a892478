"""Finds models: the defaults in ``models/``, folders named in the settings,
and GGUF files in the Hugging Face cache. Each gets a short id to type."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.engine import paths
from workbench.engine.config import Settings
from workbench.engine.models import bundled
from workbench.engine.models.gguf import GGUFError
from workbench.engine.models.infocache import InfoCache
from workbench.engine.models.modelinfo import ModelInfo, describe
from workbench.engine.sanitize import clean


@dataclass(frozen=True)
class Entry:
    """A model the catalog found: described, or broken with a reason."""

    id: str
    path: Path
    source: str
    info: ModelInfo | None = None
    error: str | None = None
    note: str = ""
    title: str = ""

    @property
    def ok(self) -> bool:
        return self.info is not None

    @property
    def display_name(self) -> str:
        """The catalog's name for a default model, else the file's own name."""
        return self.title or (self.info.name if self.info else self.path.name)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "path": str(self.path),
            "source": self.source,
            "error": self.error,
        }
        if self.info:
            data.update(self.info.to_dict())
            data.pop("chat_template", None)  # long, and not for display
            data["path"] = str(self.path)
        data["name"] = self.display_name
        if self.note:
            data["note"] = self.note
        return data


def slug(text: str) -> str:
    """A short lower-case id from a file name: letters, digits, ``.``, ``_`` and ``-``."""
    text = text.removesuffix(".gguf")
    text = re.sub(r"[^A-Za-z0-9_]+", "-", text).strip("-").lower()
    return text or "model"


class Catalog:
    """All models the workbench can see, in a stable order."""

    def __init__(self, entries: list[Entry], missing_defaults: list[str] | None = None) -> None:
        self.entries = entries
        self.missing_defaults = missing_defaults or []
        self._by_id = {e.id: e for e in entries}

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, ref: str) -> Entry:
        """An entry by id, unique id prefix, or path to a .gguf file.

        Raises KeyError with a message that lists close ids.
        """
        if ref in self._by_id:
            return self._by_id[ref]
        path = Path(ref).expanduser()
        if ref.endswith(".gguf") or path.is_file():
            if not path.exists():
                raise KeyError(f"no such file: {clean(ref)}")
            resolved = path.resolve()
            for entry in self.entries:
                if entry.path.resolve() == resolved:
                    return entry
            return make_entry(slug(path.name), resolved, "file")
        matches = [e for e in self.entries if e.id.startswith(ref.lower())]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise KeyError(
                f"{clean(ref)!r} matches several models: {', '.join(e.id for e in matches)}"
            )
        known = ", ".join(e.id for e in self.entries) or "none installed (run `make models`)"
        raise KeyError(f"no model {clean(ref)!r}; known ids: {known}")


def make_entry(
    entry_id: str,
    path: Path,
    source: str,
    note: str = "",
    title: str = "",
    cache: InfoCache | None = None,
) -> Entry:
    try:
        info = cache.describe(path) if cache else describe(path)
        return Entry(entry_id, path, source, info=info, note=note, title=title)
    except GGUFError as exc:
        return Entry(entry_id, path, source, error=str(exc), note=note, title=title)


def build_catalog(settings: Settings | None = None) -> Catalog:
    """Scan every place models live. Reads only the GGUF headers of files
    that are new or changed since the last scan (see ``infocache``)."""
    settings = settings or Settings()
    cache = InfoCache.load()
    entries: list[Entry] = []
    seen: set[Path] = set()
    taken: set[str] = set()

    def add(entry_id: str, path: Path, source: str, note: str = "", title: str = "") -> None:
        real = path.resolve()
        if real in seen:
            return
        seen.add(real)
        base, n = entry_id, 2
        while entry_id in taken:
            entry_id, n = f"{base}-{n}", n + 1
        taken.add(entry_id)
        entries.append(make_entry(entry_id, path, source, note, title, cache))

    folder = paths.bundled_models_dir()
    missing = []
    try:
        defaults = bundled.load_catalog()
    except (OSError, ValueError):
        defaults = []
    for model in defaults:
        path = folder / model.file
        if path.is_file():
            add(model.id, path, "default", model.note, model.name)
        else:
            missing.append(model.id)
    for directory in (folder, *settings.model_dirs):
        for path in sorted(directory.glob("*.gguf")) if directory.is_dir() else []:
            add(slug(path.name), path, "default" if directory == folder else "dir")
    if settings.scan_hf_cache:
        for repo, path in _hf_cache_ggufs():
            add(slug(path.name), path, f"hf:{repo}")
    cache.save()
    return Catalog(entries, missing)


def _hf_cache_ggufs() -> list[tuple[str, Path]]:
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        try:
            info = scan_cache_dir()
        except CacheNotFound:
            return []
    except Exception:  # a damaged cache must not break the listing
        return []
    found = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        for revision in repo.revisions:
            for file in revision.files:
                name = file.file_name
                # Later shards of a split model are loaded through the first one.
                if name.endswith(".gguf") and not re.search(
                    r"-0000[2-9]-of-|-000[1-9]\d-of-", name
                ):
                    found.append((repo.repo_id, Path(file.file_path)))
    return found
