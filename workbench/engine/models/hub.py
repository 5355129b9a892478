"""GGUF models from the Hugging Face Hub: list a repository's files, download one.

The files land in the Hugging Face cache, where the catalog already looks, so
a pulled model shows up in ``workbench models`` and keeps working offline.

Everything here blocks and may run in a thread. A download takes a progress
callback and a cancel ``threading.Event``; it stops within one network read
of the event being set.

Why not a bare ``hf_hub_download``: it writes to a temporary file of its own
and deletes it when the transfer fails, so an interrupted multi-gigabyte
download starts again from zero. Here the partial file is kept as
``blobs/<etag>.incomplete`` (the name the cache tools recognise as an
interrupted download) and the next attempt continues it with a Range request.
The finished file is checked against the sha256 the Hub lists for it before
it is moved into place, and ``hf_hub_download`` then links it into the
snapshot exactly as it would its own download. A file that fails the check is
deleted: nothing that looks valid is left behind.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.engine.errors import WorkbenchError
from workbench.engine.models.gguf import GGUFError
from workbench.engine.models.modelinfo import FILE_TYPE_NAMES, ModelInfo, describe, format_bytes
from workbench.engine.sanitize import clean

__all__ = [
    "DownloadCancelled",
    "HubError",
    "HubFile",
    "HubGGUF",
    "Progress",
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

LOGIN_HINT = (
    "run `hf auth login` or set HF_TOKEN; gated models also need you to accept "
    "their licence on the Hub"
)
# Retries of a transfer that broke after receiving data, within one pull. A
# pull that still fails keeps its partial file for the next one.
_RETRIES = 2
_RETRY_WAIT_S = 1.0
# Progress callbacks at most this often (a UI cannot draw faster anyway).
_REPORT_EVERY_S = 0.1
_HASH_BLOCK = 1 << 20

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
_SPLIT_RE = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")


def quant_from_name(name: str) -> str:
    """The quantization a file name states (``Q4_K_M``, ``IQ4_XS``, ``BF16``), or "?".

    The last one wins: names put the quantization at the end
    ("Llama-3.2-1B-Instruct-Q4_K_M.gguf").
    """
    stem = Path(name).name
    stem = _SPLIT_RE.sub(r"\g<base>", stem)
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


class HubError(WorkbenchError):
    """Listing or downloading failed; the message is for the user.

    ``kind`` says what went wrong: "offline", "network", "auth", "not_found",
    "choice" (no file or several files match), "checksum", "disk",
    "interrupted" (a partial file is kept for the next try) or "cancelled".
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class DownloadCancelled(HubError):
    """The cancel event was set; the partial file is kept for the next pull."""

    def __init__(self, message: str = "download cancelled") -> None:
        super().__init__(message, "cancelled")


@dataclass(frozen=True)
class Progress:
    """How far a download is: bytes over all parts of the model.

    ``phase`` is "download" while bytes arrive (resumed bytes count as done)
    and "verify" while the finished file is hashed.
    """

    phase: Literal["download", "verify"]
    file: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Pulled:
    """A model now in the cache."""

    repo_id: str
    commit: str
    model: HubGGUF
    paths: tuple[Path, ...]
    info: ModelInfo | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    downloaded_bytes: int = 0  # 0 when everything was already in the cache

    @property
    def path(self) -> Path:
        """The file to load (the first part of a split model)."""
        return self.paths[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "commit": self.commit,
            "file": self.model.to_dict(),
            "path": str(self.path),
            "paths": [str(p) for p in self.paths],
            "header_quant": self.info.quant if self.info else None,
            "downloaded_bytes": self.downloaded_bytes,
            "notes": list(self.notes),
        }


# -- environment ------------------------------------------------------------------


def endpoint() -> str:
    """The Hub's address (``HF_ENDPOINT``, read by huggingface_hub at import)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: no request may leave the machine."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def cached_files(repo_id: str | None = None) -> list[tuple[str, Path]]:
    """GGUF files already in the Hugging Face cache: (repository, path), sorted."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache yet, or a damaged one: nothing to offer
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model" or (repo_id and repo.repo_id != repo_id):
            continue
        for revision in repo.revisions:
            for file in revision.files:
                if file.file_name.lower().endswith(".gguf"):
                    found.append((repo.repo_id, Path(file.file_path)))
    return sorted(set(found))


def _offline_error(repo_id: str, why: str) -> HubError:
    have = cached_files(repo_id)
    text = f"{why}. Models already downloaded keep working (`workbench models`)."
    if have:
        names = ", ".join(clean(p.name, max_len=120) for _, p in have[:8])
        text += f" Already in the cache from {clean(repo_id)}: {names}."
    return HubError(text, "offline" if "offline" in why else "network")


_OFFLINE = "offline mode is on (HF_HUB_OFFLINE=1): cannot reach the Hub"


def _check_online(repo_id: str) -> None:
    if is_offline():
        raise _offline_error(repo_id, _OFFLINE)


def _translate(exc: BaseException, repo_id: str, what: str = "") -> HubError:
    """A huggingface_hub or transport exception as a message for the user."""
    import httpx2
    from huggingface_hub import errors, get_token

    repo = clean(repo_id, max_len=120)
    where = endpoint()
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return _offline_error(repo_id, _OFFLINE)
    if isinstance(exc, errors.HFValidationError):
        return HubError(f"not a repository id: {repo!r} (expected OWNER/NAME)", "choice")
    if isinstance(exc, errors.GatedRepoError):
        return HubError(
            f"{repo} is a gated model: accept its licence on the Hub ({where}/{repo}), "
            f"then use a token with access to it: {LOGIN_HINT}",
            "auth",
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        status = exc.response.status_code if exc.response is not None else 404
        if status == 401 or get_token() is None:
            return HubError(
                f"{repo} was not found on the Hub, or it is private or gated and this "
                f"repository needs a token: {LOGIN_HINT}",
                "auth" if status == 401 else "not_found",
            )
        return HubError(
            f"{repo} was not found on the Hub, or your token has no access to it "
            "(check the name: OWNER/NAME)",
            "not_found",
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return HubError(f"{repo} has no branch, tag or commit by that name", "not_found")
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return HubError(f"{repo} has no file {clean(what, max_len=160)!r}", "not_found")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        said = clean(exc.server_message or "", max_len=300).strip()
        said = f": {said}" if said else ""
        if status in (401, 403):
            return HubError(
                f"the Hub refused access to {repo} ({status}){said}. This repository needs "
                f"a token with access: {LOGIN_HINT}",
                "auth",
            )
        if status == 429:
            return HubError(f"the Hub is rate limiting requests (429){said}; try later", "network")
        return HubError(f"the Hub answered {status} for {repo}{said}", "network")
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout):
        reason = _reason(exc)
        return _offline_error(repo_id, f"cannot reach the Hub at {where}: {reason}")
    if isinstance(exc, httpx2.TimeoutException):
        return HubError(f"the Hub at {where} stopped answering (timeout)", "network")
    if isinstance(exc, httpx2.TransportError):
        return HubError(f"the connection to {where} failed: {_reason(exc)}", "network")
    if isinstance(exc, OSError):
        return HubError(f"{clean(str(exc), max_len=300)}", "error")
    return HubError(f"{type(exc).__name__}: {clean(str(exc), max_len=300)}", "error")


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "no DNS (no network?)"),
        ("network is unreachable", "network unreachable"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return reason
    return clean(str(exc), max_len=200) or type(exc).__name__


# -- listing ------------------------------------------------------------------------


def _group(files: Iterable[HubFile]) -> list[HubGGUF]:
    singles: list[HubGGUF] = []
    splits: dict[tuple[str, int], dict[int, HubFile]] = {}
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        m = _SPLIT_RE.match(f.path)
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
    _check_online(repo_id)
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi()
    try:
        info = api.model_info(repo_id, revision=revision)
        commit = str(info.sha or "").lower()
        if not _HEX40.fullmatch(commit):
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
        raise _translate(exc, repo_id) from None
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


# -- downloading --------------------------------------------------------------------


class _Reporter:
    """Calls the progress callback, at most every ``_REPORT_EVERY_S`` and at the end."""

    def __init__(self, fn: ProgressFn | None, total: int) -> None:
        self.fn = fn
        self.total = total
        self._last = 0.0

    def __call__(self, phase: Literal["download", "verify"], file: str, done: int) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if done >= self.total or now - self._last >= _REPORT_EVERY_S:
            self._last = now
            self.fn(Progress(phase, file, done, self.total))


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _storage_folder(repo_id: str) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    cache = Path(constants.HF_HUB_CACHE).expanduser().resolve()
    return cache / repo_folder_name(repo_id=repo_id, repo_type="model")


def _verify(
    path: Path,
    part: HubFile,
    expected_sha256: str | None,
    report: Callable[[int], None],
    cancel: threading.Event | None,
) -> None:
    """Hash the file; delete it and raise HubError("checksum") if it is not the Hub's."""
    digest = hashlib.sha256()
    git = None
    if expected_sha256 is None:
        # Not in LFS: the git blob id is the sha1 of a header and the content.
        git = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    done = 0
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            if _cancelled(cancel):
                raise DownloadCancelled()
            digest.update(block)
            if git is not None:
                git.update(block)
            done += len(block)
            report(done)
    if git is not None:
        got, want, algo = git.hexdigest(), part.blob_id or "", "git sha1"
    else:
        got, want, algo = digest.hexdigest(), expected_sha256 or "", "sha256"
    if got != want:
        path.unlink(missing_ok=True)
        raise HubError(
            f"checksum mismatch for {clean(part.path)}: the Hub lists {algo} {clean(want)[:64]}, "
            f"the downloaded file has {got}. The file was deleted; nothing was installed. Try "
            "again; if it happens again, the server (or a proxy) is sending a different file",
            "checksum",
        )


def _fetch(
    url: str,
    partial: Path,
    size: int,
    report: Callable[[int], None],
    cancel: threading.Event | None,
) -> None:
    """Bring ``partial`` up to ``size`` bytes, continuing what is already there."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = build_hf_headers()  # the token from HF_TOKEN or the login, if any
    headers["Accept-Encoding"] = "identity"
    timeout = httpx2.Timeout(float(constants.HF_HUB_DOWNLOAD_TIMEOUT), connect=10.0)
    retries = _RETRIES
    while True:
        have = partial.stat().st_size if partial.exists() else 0
        if have > size:
            partial.unlink()
            have = 0
        report(have)
        if have == size:
            return
        request_headers = dict(headers)
        if have:
            request_headers["Range"] = f"bytes={have}-"
        received = 0
        try:
            with get_session().stream("GET", url, headers=request_headers, timeout=timeout) as r:
                if r.status_code == 416 and have:  # what we hold is not a prefix: start over
                    partial.unlink()
                    continue
                hf_raise_for_status(r)
                start = have if r.status_code == 206 else 0
                content_range = r.headers.get("Content-Range", "")
                if r.status_code == 206 and not content_range.startswith(f"bytes {have}-"):
                    partial.unlink()  # a range we did not ask for: never splice it in
                    continue
                with partial.open("r+b" if start and partial.exists() else "wb") as f:
                    f.seek(start)
                    f.truncate()
                    done = start
                    for chunk in r.iter_bytes():
                        if _cancelled(cancel):
                            raise DownloadCancelled()
                        f.write(chunk)
                        done += len(chunk)
                        received += len(chunk)
                        if done > size:
                            raise HubError(
                                f"the server sent more than the {size:,} bytes the Hub lists",
                                "network",
                            )
                        report(done)
            if done != size:
                raise httpx2.RemoteProtocolError(
                    f"the transfer ended at {done:,} of {size:,} bytes"
                )
            return
        except (httpx2.TransportError, httpx2.StreamError) as exc:
            if _cancelled(cancel):
                raise DownloadCancelled() from None
            if received and retries > 0:
                retries -= 1
                (cancel or threading.Event()).wait(_RETRY_WAIT_S)
                continue
            raise exc


def _download_part(
    listing: RepoListing,
    part: HubFile,
    before: int,
    reporter: _Reporter,
    cancel: threading.Event | None,
) -> tuple[Path, int]:
    """One file into the cache; its path, and the bytes fetched this time."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.utils import WeakFileLock

    storage = _storage_folder(listing.repo_id)
    pointer = storage / "snapshots" / listing.commit / Path(*part.path.split("/"))
    if pointer.is_file():
        reporter("download", part.path, before + part.size)
        return pointer, 0
    url = hf_hub_url(listing.repo_id, part.path, revision=listing.commit)
    meta = get_hf_file_metadata(url)
    etag = meta.etag or ""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", etag):  # it names a file here
        raise HubError(f"the Hub sent no usable ETag for {clean(part.path)}", "network")
    size = meta.size if meta.size is not None else part.size
    expected = part.sha256
    linked = etag.lower() if _HEX64.fullmatch(etag.lower()) else None
    if expected and linked and linked != expected:
        raise HubError(
            f"the Hub's metadata for {clean(part.path)} disagree: the listing says sha256 "
            f"{expected}, the file's ETag says {linked}; refusing the download",
            "checksum",
        )
    expected = expected or linked
    if expected is None and not (part.blob_id and _HEX40.fullmatch(part.blob_id)):
        raise HubError(
            f"the Hub lists no checksum for {clean(part.path)}: refusing an unverified file",
            "checksum",
        )
    if size != part.size:
        raise HubError(
            f"the Hub lists {clean(part.path)} as {part.size:,} bytes but serves {size:,}",
            "checksum",
        )
    blob = storage / "blobs" / etag
    partial = blob.with_name(etag + ".incomplete")
    lock = storage.parent / ".locks" / storage.name / f"{etag}.lock"
    blob.parent.mkdir(parents=True, exist_ok=True)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fetched = 0
    with WeakFileLock(lock):
        if not blob.exists():
            free = shutil.disk_usage(blob.parent).free
            have = partial.stat().st_size if partial.exists() else 0
            if free < size - have:
                raise HubError(
                    f"not enough disk space for {clean(part.path)}: it needs "
                    f"{format_bytes(size - have)} more, {format_bytes(free)} is free in "
                    f"{blob.parent}",
                    "disk",
                )
            _fetch(url, partial, size, lambda d: reporter("download", part.path, before + d),
                   cancel)  # fmt: skip
            fetched = size - have
            src = partial
        else:
            src = blob  # put there by another tool: checked like our own
        _verify(src, part, expected, lambda d: reporter("verify", part.path, before + d), cancel)
        if src is partial:
            os.chmod(partial, 0o666 & ~_umask())
            os.replace(partial, blob)
    # The blob is in place: hf_hub_download only links it into the snapshot.
    path = Path(hf_hub_download(listing.repo_id, part.path, revision=listing.commit))
    _write_ref(storage, listing.revision, listing.commit)
    return path, fetched


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_ref(storage: Path, revision: str, commit: str) -> None:
    """Remember which commit a branch or tag pointed to, as hf_hub_download does."""
    if revision == commit or not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", revision):
        return
    if ".." in revision.split("/"):
        return
    ref = storage / "refs" / revision
    try:
        ref.parent.mkdir(parents=True, exist_ok=True)
        if not ref.exists() or ref.read_text().strip() != commit:
            ref.write_text(commit)
    except OSError:
        pass  # only a convenience for later offline look-ups


def download(
    listing: RepoListing,
    model: HubGGUF,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Pulled:
    """Download every part of ``model`` into the Hugging Face cache, verified.

    Blocks; call it from a thread. ``progress`` gets a Progress at most every
    0.1 s; setting ``cancel`` stops the download soon after (DownloadCancelled),
    keeping the partial file so the next call continues it. Raises HubError.
    """
    if not model.complete:
        raise HubError(f"{model.label} is missing parts on the Hub", "not_found")
    _check_online(listing.repo_id)
    reporter = _Reporter(progress, model.size)
    paths: list[Path] = []
    fetched = 0
    before = 0
    current = model.parts[0]
    try:
        for part in model.parts:
            current = part
            path, got = _download_part(listing, part, before, reporter, cancel)
            paths.append(path)
            fetched += got
            before += part.size
    except DownloadCancelled:
        raise DownloadCancelled(
            "download cancelled; the part already downloaded is kept and the next pull "
            "continues from there"
        ) from None
    except HubError:
        raise
    except Exception as exc:
        error = _translate(exc, listing.repo_id, current.path)
        kept = _partial_size(listing.repo_id)
        if kept and error.kind in ("network", "error"):
            error = HubError(
                f"download of {clean(current.path)} interrupted: {error.message}. "
                f"{format_bytes(kept)} is kept; run the same pull again to continue",
                "interrupted",
            )
        raise error from None
    notes = []
    info: ModelInfo | None = None
    try:
        info = describe(paths[0])
    except GGUFError as exc:
        notes.append(f"the file is what the Hub has, but its header cannot be read: {exc}")
    if info is not None and model.quant != "?" and info.quant.upper() != model.quant.upper():
        notes.append(f"the file name says {model.quant}; the header says {info.quant}")
    return Pulled(
        repo_id=listing.repo_id,
        commit=listing.commit,
        model=model,
        paths=tuple(paths),
        info=info,
        notes=tuple(notes),
        downloaded_bytes=fetched,
    )


def _partial_size(repo_id: str) -> int:
    blobs = _storage_folder(repo_id) / "blobs"
    try:
        return sum(p.stat().st_size for p in blobs.glob("*.incomplete"))
    except OSError:
        return 0
