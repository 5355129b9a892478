"""Generation parameters: shared defaults with per-panel overrides."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.engine.errors import WorkbenchError

MAX_LOGPROBS = 10
"""Most alternatives shown per generated token."""


class ParamError(WorkbenchError, ValueError):
    """A generation setting with a value it cannot take; the message says which."""


@dataclass(frozen=True)
class GenParams:
    """How a model generates.

    ``temperature`` 0 means greedy decoding: always the most likely token, so
    the same prompt gives the same text. Above 0 the model samples, and
    ``top_k``, ``top_p`` and ``min_p`` limit which tokens it samples from;
    ``seed`` makes a sampled run repeatable. ``n_ctx`` 0 means "choose for
    me": the trained context length, capped (see ``default_ctx``).
    ``logprobs`` above 0 asks for each generated token's probability and that
    many likeliest alternatives (at most ``MAX_LOGPROBS``); 0 is off and
    costs nothing.
    """

    max_tokens: int = 256
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int = 42
    stop: tuple[str, ...] = field(default_factory=tuple)
    n_ctx: int = 0
    logprobs: int = 0

    def __post_init__(self) -> None:
        _check(self.max_tokens >= 1, "max_tokens", self.max_tokens, "a whole number of at least 1")
        _check(0.0 <= self.temperature <= 5.0, "temperature", self.temperature, "between 0 and 5")
        _check(self.top_k >= 0, "top_k", self.top_k, "0 (off) or more")
        _check(0.0 < self.top_p <= 1.0, "top_p", self.top_p, "above 0 and at most 1")
        _check(0.0 <= self.min_p <= 1.0, "min_p", self.min_p, "between 0 and 1")
        _check(
            0.5 <= self.repeat_penalty <= 2.0,
            "repeat_penalty",
            self.repeat_penalty,
            "between 0.5 and 2 (1 is off)",
        )
        _check(0 <= self.seed < 2**32, "seed", self.seed, "between 0 and 4294967295")
        _check(
            self.n_ctx == 0 or 64 <= self.n_ctx <= 1 << 24, "n_ctx", self.n_ctx, "0 or 64 to 16M"
        )
        _check(
            0 <= self.logprobs <= MAX_LOGPROBS,
            "logprobs",
            self.logprobs,
            f"0 (off) to {MAX_LOGPROBS}",
        )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def with_overrides(self, overrides: Mapping[str, Any]) -> GenParams:
        """A copy with some values replaced; unknown names and bad values raise ParamError."""
        if not overrides:
            return self
        return from_mapping(overrides, base=self)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stop"] = list(self.stop)
        return data


FIELDS: dict[str, type] = {
    "max_tokens": int,
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "repeat_penalty": float,
    "seed": int,
    "stop": tuple,
    "n_ctx": int,
    "logprobs": int,
}

HELP: dict[str, str] = {
    "max_tokens": "most new tokens a model may generate",
    "temperature": "0 = greedy (always the likeliest token); higher = more varied",
    "top_k": "sample only from the k likeliest tokens (0 = off)",
    "top_p": "sample from the smallest set of tokens whose probability adds up to p",
    "min_p": "drop tokens less likely than min_p times the likeliest one",
    "repeat_penalty": "discourage repeating recent tokens (1 = off)",
    "seed": "random seed: the same seed gives the same sampled text",
    "stop": "stop generating when one of these strings appears",
    "n_ctx": "context window in tokens (0 = trained length, capped)",
    "logprobs": f"show each token's probability and the k likeliest alternatives "
    f"(0 = off, at most {MAX_LOGPROBS})",
}


def _check(ok: bool, name: str, value: object, wanted: str) -> None:
    if not ok:
        raise ParamError(f"{name} must be {wanted}, not {value!r}")


def coerce(name: str, value: Any) -> Any:
    """Turn a setting given as text or a loose type into its real type."""
    kind = FIELDS.get(name)
    if kind is None:
        raise ParamError(f"unknown setting {name!r} (known: {', '.join(FIELDS)})")
    try:
        if kind is tuple:
            if isinstance(value, str):
                return tuple(s for s in (p.strip() for p in value.split(",")) if s)
            if isinstance(value, list | tuple) and all(isinstance(s, str) for s in value):
                return tuple(value)
            raise TypeError
        if isinstance(value, bool):
            raise TypeError
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        wanted = "a list of strings" if kind is tuple else f"a {kind.__name__}"
        raise ParamError(f"{name} must be {wanted}, not {value!r}") from None


def from_mapping(values: Mapping[str, Any], base: GenParams | None = None) -> GenParams:
    """Build parameters from a mapping (a TOML table, CLI options, a form)."""
    base = base or GenParams()
    changes = {name: coerce(name, value) for name, value in values.items()}
    try:
        return dataclasses.replace(base, **changes)
    except ParamError:
        raise
    except TypeError as exc:  # pragma: no cover - coerce() names every field
        raise ParamError(str(exc)) from None
