"""What the app and a model worker say to each other, and what any backend
yields while it generates.

Requests go to a worker as one JSON object per line on its stdin; events
come back the same way on a pipe of their own. The dataclasses below are
the whole vocabulary; ``encode`` / ``decode`` turn them into lines.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["chat", "raw"]
StopReason = Literal["eos", "max_tokens", "stop", "cancelled", "context"]

STOP_LABELS: dict[str, str] = {
    "eos": "end of text",
    "max_tokens": "max tokens",
    "stop": "stop string",
    "cancelled": "cancelled",
    "context": "context full",
}
"""How each stop reason reads in tables and panels."""


@dataclass(frozen=True)
class Prompt:
    """What the user wrote: the prompt, an optional system prompt, and the mode.

    In ``chat`` mode the model's own chat template wraps the text; in ``raw``
    mode the model sees the text as it is and continues it.
    """

    text: str
    system: str = ""
    mode: Mode = "chat"


# -- requests (app -> worker) -------------------------------------------------


@dataclass(frozen=True)
class Load:
    """Load a model. ``repack`` is llama.cpp's ``use_extra_bufts``: whether
    weights are copied into CPU-specific layouts at load. The app decides it
    (``engine.running.cpu``); left out, it is off, which runs on every CPU."""

    path: str
    n_ctx: int
    n_threads: int
    n_batch: int = 512
    repack: bool = False


@dataclass(frozen=True)
class Count:
    id: int
    prompt: Prompt


@dataclass(frozen=True)
class Tokenize:
    """The prompt as the model reads it, token by token (answered with
    ``Tokenized``, on the same thread as ``Count``)."""

    id: int
    prompt: Prompt


@dataclass(frozen=True)
class Generate:
    id: int
    prompt: Prompt
    params: dict[str, Any]
    n_threads: int


@dataclass(frozen=True)
class SetThreads:
    """Takes effect between two decode calls, also in the middle of a run."""

    n_threads: int


@dataclass(frozen=True)
class Cancel:
    """Stops run ``id`` (0: whatever runs): between tokens, or inside a
    prompt evaluation. A cancel that arrives before its run starts still
    applies to it."""

    id: int = 0


@dataclass(frozen=True)
class Quit:
    pass


Request = Load | Count | Tokenize | Generate | SetThreads | Cancel | Quit


# -- events (worker -> app; also what every backend yields) ------------------


@dataclass(frozen=True)
class Loaded:
    """A model is loaded and has decoded its first batch.

    ``buffers`` are the weight buffers llama.cpp made, as its load log names
    them (``CPU_Mapped``; ``CPU_REPACK`` or ``AMX`` when it repacked), so what
    ``repack`` asked for can be seen to have happened. ``note`` says anything
    the user should know about how it was loaded (a retry, a choice).
    """

    load_s: float
    rss_bytes: int
    n_ctx: int
    n_ctx_train: int
    n_vocab: int
    has_chat_template: bool
    repack: bool = False
    buffers: list[str] = field(default_factory=list)
    system_info: str = ""
    note: str = ""


@dataclass(frozen=True)
class Counted:
    id: int
    n_tokens: int
    note: str = ""


@dataclass(frozen=True)
class Tokenized:
    """A prompt's tokens: ``ids[i]`` reads as ``pieces[i]``.

    The pieces are the token texts with special tokens spelled out (``<bos>``,
    ``<|im_start|>``), so joined they give back the text the model reads,
    including a BOS token the tokenizer adds. The one exception is a
    character whose UTF-8 bytes are split over several tokens: no token holds
    it whole, so each of its bytes shows as ``<0xNN>`` in the token that holds
    that byte (SentencePiece's notation for byte tokens). Bytes that form no
    valid character at all show the same way. See ``tokens.pieces_from_bytes``.
    """

    id: int
    ids: list[int]
    pieces: list[str]
    note: str = ""


@dataclass(frozen=True)
class PromptStarted:
    """The model began reading the prompt (``n_cached`` tokens were reused)."""

    id: int
    n_prompt: int
    n_cached: int
    max_tokens: int
    note: str = ""


@dataclass(frozen=True)
class Token:
    """Generated text, as soon as it forms whole characters.

    With ``logprobs`` on (``GenParams.logprobs`` > 0), ``logprob`` is the
    natural log of the probability the model gave this text, and ``top`` the
    likeliest tokens it could have chosen instead, most likely first, as
    (text, logprob) pairs; both come from the model's own distribution
    (log-softmax of the logits), before temperature, penalties or top-k/p cut
    it. An event that merges several tokens (a character spelled in byte
    tokens, or text held back while it could still become a stop string)
    carries the sum of their logprobs, the joint probability of its text, and
    the alternatives at the first of them, where the choice was made. With
    stop strings set, text is held back, so an event's text can lag the
    tokens its probabilities describe by up to the length of a stop string.
    Off, both are None and cost nothing: not even a key on the wire.
    """

    id: int
    text: str
    top: list[tuple[str, float]] | None = None
    logprob: float | None = None


@dataclass(frozen=True)
class Stats:
    """Figures for one run. Times in seconds; rates in tokens per second."""

    load_s: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    ttft_s: float = 0.0
    prompt_tps: float = 0.0
    gen_tps: float = 0.0
    completion_tokens: int = 0
    total_s: float = 0.0
    peak_rss_bytes: int = 0
    n_ctx: int = 0
    max_tokens: int = 0
    n_threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Done:
    id: int
    stop_reason: StopReason
    stats: Stats = field(default_factory=Stats)


@dataclass(frozen=True)
class Error:
    """A failure in one model; ``id`` is -1 when no request caused it."""

    id: int
    message: str
    kind: str = "error"


Event = Loaded | Counted | Tokenized | PromptStarted | Token | Done | Error

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Load, Count, Tokenize, Generate, SetThreads, Cancel, Quit,
        Loaded, Counted, Tokenized, PromptStarted, Token, Done, Error,
    )
}  # fmt: skip


def encode(msg: Request | Event) -> bytes:
    """One message as one line of JSON."""
    if type(msg) is Token:
        # The message sent most often: no asdict, and no keys for what is off.
        data: dict[str, Any] = {"id": msg.id, "text": msg.text}
        if msg.logprob is not None:
            data["logprob"] = msg.logprob
        if msg.top is not None:
            data["top"] = msg.top
    else:
        data = dataclasses.asdict(msg)
    data["t"] = type(msg).__name__
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes | str) -> Request | Event:
    """Parse one line; raises ValueError on anything that is not a message."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("message is not an object")
    cls = _TYPES.get(data.pop("t", None))
    if cls is None:
        raise ValueError("unknown message type")
    if "prompt" in data and isinstance(data["prompt"], dict):
        data["prompt"] = Prompt(**data["prompt"])
    if cls is Done and isinstance(data.get("stats"), dict):
        data["stats"] = Stats(**data["stats"])
    if cls is Token and isinstance(data.get("top"), list):
        data["top"] = [(str(text), float(lp)) for text, lp in data["top"]]
    return cls(**data)
