"""GGUF models from the Hugging Face Hub: list a repository's files, download one.

The files land in the Hugging Face cache, where the catalog already looks, so
a pulled model shows up in ``workbench models`` and keeps working offline.

This module is the Hub as the CLI and the app use it: listing and choosing a
file are here; the names of the modules beside it are re-exported, so
``hub.list_gguf`` and ``hub.download`` sit on one object (the app's pull
dialog takes this module as a parameter, and a test passes a stand-in).
Beside it: ``hub_files`` (what the Hub lists), ``hub_errors`` (how it fails),
``download`` (resumable, verified downloads) and ``hf_cache`` (the cache).

Everything here blocks and may run in a thread.
"""

from __future__ import annotations

from collections.abc import Iterable

from workbench.engine.models.download import Progress, ProgressFn, Pulled, download
from workbench.engine.models.hf_cache import cached_files
from workbench.engine.models.hub_errors import (
    DownloadCancelled,
    HubError,
    check_online,
    endpoint,
    is_offline,
    translate,
)
from workbench.engine.models.hub_files import (
    HEX40,
    SPLIT_RE,
    HubFile,
    HubGGUF,
    RepoListing,
    quant_from_name,
)
from workbench.engine.sanitize import clean

__all__ = [
    "DownloadCancelled",
    "HubError",
    "HubFile",
    "HubGGUF",
    "Progress",
    "ProgressFn",
    "Pulled",
    "RepoListing",
    "cached_files",
    "choose",
    "download",
    "endpoint",
    "is_offline",
    "list_gguf",
    "quant_from_name",
]


def _group(files: Iterable[HubFile]) -> list[HubGGUF]:
    singles: list[HubGGUF] = []
    splits: dict[tuple[str, int], dict[int, HubFile]] = {}
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        m = SPLIT_RE.match(f.path)
        if m:
            key = (m["base"], int(m["count"]))
            splits.setdefault(key, {})[int(m["index"])] = f
        else:
            singles.append(HubGGUF(f.path, (f,), quant_from_name(f.path)))
    for (base, count), parts in splits.items():
        ordered = tuple(parts[i] for i in sorted(parts))
        first = parts.get(1)
        name = first.path if first else f"{base}-00001-of-{count:05d}.gguf"
        singles.append(HubGGUF(name, ordered, quant_from_name(name), n_parts=max(count, 1)))
    return sorted(singles, key=lambda g: g.name.lower())


def _safe_path(path: object) -> bool:
    """A relative path inside the repository: listed names become file names here."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def list_gguf(repo_id: str, revision: str | None = None) -> RepoListing:
    """The GGUF models in a repository (default branch unless ``revision``).

    Uses the token from ``HF_TOKEN`` or ``hf auth login``. Raises HubError.
    """
    check_online(repo_id)
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi()
    try:
        info = api.model_info(repo_id, revision=revision)
        commit = str(info.sha or "").lower()
        if not HEX40.fullmatch(commit):
            raise HubError(f"the Hub sent no valid commit id for {clean(repo_id)}", "network")
        files = [
            HubFile(
                path=item.path,
                size=int(item.size or 0),
                sha256=item.lfs.sha256.lower() if item.lfs and item.lfs.sha256 else None,
                blob_id=item.blob_id,
            )
            for item in api.list_repo_tree(repo_id, revision=commit, recursive=True)
            if isinstance(item, RepoFile) and _safe_path(item.path)
        ]
    except Exception as exc:
        raise translate(exc, repo_id) from None
    return RepoListing(
        repo_id=repo_id,
        revision=revision or "main",
        commit=commit,
        files=tuple(_group(files)),
        n_files=len(files),
        gated=bool(info.gated),
        private=bool(info.private),
    )


def choose(listing: RepoListing, *, file: str | None = None, quant: str | None = None) -> HubGGUF:
    """The one model matching a file name pattern or a quantization; HubError otherwise."""
    repo = clean(listing.repo_id, max_len=120)
    candidates = list(listing.files)
    if not candidates:
        raise HubError(f"{repo} has no GGUF files ({listing.n_files} files in all)", "not_found")
    wanted = ""
    if file:
        candidates = [g for g in candidates if g.matches(file)]
        wanted = f"--file {clean(file, max_len=120)!r}"
    if quant:
        candidates = [g for g in candidates if g.quant.upper() == quant.strip().upper()]
        wanted = (wanted + " and " if wanted else "") + f"--quant {clean(quant, max_len=40)}"
    if not wanted:
        if len(candidates) == 1:
            return candidates[0]
        raise HubError(f"{repo} has {len(candidates)} GGUF files: choose one with --quant or "
                       "--file", "choice")  # fmt: skip
    if not candidates:
        available = ", ".join(f"{g.label} [{g.quant}]" for g in listing.files[:20])
        raise HubError(f"no GGUF file in {repo} matches {wanted}; it has: {available}", "choice")
    if len(candidates) > 1:
        names = ", ".join(f"{g.label} [{g.quant}]" for g in candidates[:20])
        raise HubError(f"{wanted} matches several files in {repo}: {names}; pick one with "
                       "--file", "choice")  # fmt: skip
    chosen = candidates[0]
    if not chosen.complete:
        raise HubError(
            f"{chosen.label} is split into {chosen.n_parts} parts, but {repo} has only "
            f"{len(chosen.parts)} of them",
            "not_found",
        )
    return chosen
