"""Sweeps: one model run with several values of one setting, a panel per value.

``sweep(params, "temperature=0,0.7,1.2")`` gives three copies of ``params``
that differ only in temperature. Each becomes a job of its own in a
comparison; jobs run at the same time, so each needs a runner of its own (for
a local model, a worker process holding its own copy of the model and KV
cache: N values cost N times the model's memory, checked by the memory guard
before each loads).
"""

from __future__ import annotations

from typing import Any

from workbench.engine.running.params import FIELDS, GenParams, ParamError, coerce, from_mapping

MAX_VALUES = 8
"""Most values in one sweep (each is a model process of its own)."""

SWEEPABLE: tuple[str, ...] = tuple(name for name in FIELDS if name != "stop")
"""The settings a sweep can vary: every one but the stop strings."""


def parse_sweep(spec: str) -> tuple[str, list[Any]]:
    """``"NAME=V1,V2,..."`` as the setting's name and its values, each of the
    setting's type; ParamError says what is wrong. ``top-p`` means ``top_p``."""
    name, sep, rest = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise ParamError(f"a sweep is NAME=V1,V2,... (such as temperature=0,0.7,1.2), not {spec!r}")
    if name == "stop":
        raise ParamError("stop strings cannot be swept (their values contain commas)")
    if name not in FIELDS:
        raise ParamError(f"cannot sweep {name!r}: not a setting (known: {', '.join(SWEEPABLE)})")
    raw = [v.strip() for v in rest.split(",")]
    if any(not v for v in raw):
        raise ParamError(f"sweep of {name}: an empty value in {rest.strip()!r}")
    if len(raw) > MAX_VALUES:
        raise ParamError(
            f"sweep of {name}: {len(raw)} values, at most {MAX_VALUES} (each runs a model)"
        )
    values = [coerce(name, v) for v in raw]
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise ParamError(f"sweep of {name}: the value {v!r} is given twice")
        seen.add(v)
    return name, values


def sweep(params: GenParams, spec: str) -> list[GenParams]:
    """A copy of ``params`` for each value of the sweep, in the order given.

    Values the setting cannot take raise ParamError naming the setting.
    """
    name, values = parse_sweep(spec)
    return [from_mapping({name: v}, base=params) for v in values]


def label(name: str, value: Any) -> str:
    """How one value of a sweep names its panel: ``temperature=0.7``."""
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
