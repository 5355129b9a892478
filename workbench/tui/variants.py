"""Panels that run a variant of a model: a sweep value, or a few-shot prompt.

Each such panel runs its own runner of the model (runners run one
generation at a time), wrapped in a ``VariantRunner`` for its label and, for
a template variant, its own prompt. Nothing here touches a widget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.engine.prompts import plan
from workbench.engine.running.params import GenParams, ParamError
from workbench.engine.running.protocol import Prompt

REPLACE, ADD = "replace", "add"
PLACEMENTS: list[tuple[str, str]] = [
    ("replace the current panels", REPLACE),
    ("add to the current panels", ADD),
]
"""Where new variant panels go, as the dialogs offer it."""

SWEEP_SETTINGS: tuple[str, ...] = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "max_tokens",
    "repeat_penalty",
)
"""The settings the sweep dialog offers, most used first."""

SWEEP_EXAMPLES: dict[str, str] = {
    "temperature": "0, 0.7, 1.2",
    "top_p": "0.5, 0.9, 1",
    "top_k": "1, 40, 200",
    "min_p": "0, 0.05, 0.2",
    "seed": "1, 2, 3",
    "max_tokens": "16, 64, 256",
    "repeat_penalty": "1, 1.1, 1.3",
}


@dataclass(frozen=True)
class Variant:
    """What makes a panel a variant: its label (shown after the model's
    title) and, when not None, the prompt it runs instead of the editor's."""

    label: str
    prompt: Prompt | None = None


@dataclass(frozen=True)
class PanelSpec:
    """One panel to create: a model, its variant, and its setting overrides."""

    ref: str
    variant: Variant
    overrides: Mapping[str, Any] = field(default_factory=dict)


def sweep_specs(
    ref: str,
    params: GenParams,
    overrides: Mapping[str, Any],
    setting: str,
    values: str,
    *,
    base: Variant | None = None,
) -> list[PanelSpec]:
    """One panel per value of ``setting`` (typed as ``"0, 0.7, 1.2"``) for the
    model ``ref`` whose panel has ``overrides`` and effective ``params``.
    ParamError says what is wrong with the values. A panel that already is a
    variant keeps its prompt and label, followed by the value. Planned by
    ``engine.prompts.plan``, as the CLI plans its panels."""
    if not values.strip():
        raise ParamError(f"type the values of {setting}, such as {SWEEP_EXAMPLES.get(setting)}")
    axis = [plan.Variant(base.label, base.prompt)] if base else []
    values_axis = plan.sweep_variants(params, f"{setting}={values}")
    return _panels(plan.expand([ref], axis, values_axis, overrides=overrides))


def template_specs(
    ref: str, overrides: Mapping[str, Any], prompts: Sequence[tuple[str, Prompt]]
) -> list[PanelSpec]:
    """One panel per (label, prompt) on the model ``ref``, with its overrides."""
    if not prompts:  # an empty axis would mean "no variation": one plain panel
        return []
    return _panels(plan.expand([ref], plan.template_variants(prompts), overrides=overrides))


def _panels(specs: Sequence[plan.PanelSpec]) -> list[PanelSpec]:
    return [PanelSpec(s.ref, Variant(s.label, s.prompt), dict(s.overrides)) for s in specs]
