"""How talking to the Hub fails, in words for the user: ``HubError`` and the
translation of huggingface_hub's and the transport's exceptions into it,
with what is already in the cache when the Hub cannot be reached."""

from __future__ import annotations

from workbench.engine.errors import WorkbenchError
from workbench.engine.models.hf_cache import cached_files
from workbench.engine.sanitize import clean

LOGIN_HINT = (
    "run `hf auth login` or set HF_TOKEN; gated models also need you to accept "
    "their licence on the Hub"
)


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


def endpoint() -> str:
    """The Hub's address (``HF_ENDPOINT``, read by huggingface_hub at import)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: no request may leave the machine."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def offline_error(repo_id: str, why: str) -> HubError:
    """The Hub cannot be reached: say so, and what the cache already holds."""
    have = cached_files(repo_id)
    text = f"{why}. Models already downloaded keep working (`workbench models`)."
    if have:
        names = ", ".join(clean(p.name, max_len=120) for _, p in have[:8])
        text += f" Already in the cache from {clean(repo_id)}: {names}."
    return HubError(text, "offline" if "offline" in why else "network")


_OFFLINE = "offline mode is on (HF_HUB_OFFLINE=1): cannot reach the Hub"


def check_online(repo_id: str) -> None:
    if is_offline():
        raise offline_error(repo_id, _OFFLINE)


def translate(exc: BaseException, repo_id: str, what: str = "") -> HubError:
    """A huggingface_hub or transport exception as a message for the user."""
    import httpx2
    from huggingface_hub import errors, get_token

    repo = clean(repo_id, max_len=120)
    where = endpoint()
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return offline_error(repo_id, _OFFLINE)
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
        return offline_error(repo_id, f"cannot reach the Hub at {where}: {reason}")
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
