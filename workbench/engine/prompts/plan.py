"""Panels for one comparison: a model, or one variant of it, per panel.

A comparison can run one model in several panels: a sweep
(``temperature=0,0.7,1.2``) gives a panel per value of one setting, and a
template's few-shot variants a panel per number of shots. Each such axis is
a list of ``Variant``: a label, a prompt of its own or None (the
comparison's prompt), and setting overrides. ``expand`` crosses the model
refs with the axes, so every model gets every combination, labelled like
``one-shot · temperature=0.7``. The CLI (``workbench compare``) and the app
plan their panels with these functions, so both name and set up a panel the
same way. Nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.engine.prompts.sweep import label, parse_sweep, sweep
from workbench.engine.running.params import GenParams, from_mapping
from workbench.engine.running.protocol import Prompt

__all__ = [
    "PanelSpec",
    "Variant",
    "expand",
    "joined",
    "sweep_variants",
    "template_variants",
]


@dataclass(frozen=True)
class Variant:
    """One way a panel differs from the plain model: its label, the prompt it
    runs instead of the comparison's (None: the comparison's), and the
    settings it overrides."""

    label: str = ""
    prompt: Prompt | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PanelSpec:
    """One panel to open: the model ``ref`` (as typed after ``-m``), its
    label (empty for a plain panel), its own prompt or None, and the
    settings it overrides (the panel's own, then its variants')."""

    ref: str
    label: str = ""
    prompt: Prompt | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def params(self, base: GenParams) -> GenParams:
        """The settings the panel runs with: ``base`` with its overrides."""
        return from_mapping(dict(self.overrides), base=base) if self.overrides else base


def joined(*labels: str) -> str:
    """Labels of nested variants, such as ``one-shot · temperature=0.7``."""
    return " · ".join(part for part in labels if part)


def template_variants(prompts: Sequence[tuple[str, Prompt]]) -> list[Variant]:
    """A variant per (label, prompt), as ``Template.variants`` gives them."""
    return [Variant(name, prompt) for name, prompt in prompts]


def sweep_variants(params: GenParams, spec: str) -> list[Variant]:
    """A variant per value of a sweep, ``NAME=V1,V2,...`` (such as
    ``temperature=0,0.7,1.2``), in the order given. ParamError says what is
    wrong, including a value the setting cannot take with ``params``."""
    sweep(params, spec)  # checks every value against the setting's range
    name, values = parse_sweep(spec)
    return [Variant(label(name, value), None, {name: value}) for value in values]


def expand(
    refs: Sequence[str],
    *axes: Sequence[Variant],
    overrides: Mapping[str, Any] | None = None,
) -> list[PanelSpec]:
    """A panel for every model ref and every choice of one variant per axis.

    Panels come model by model, then in the order of the axes (the last
    axis varies fastest). An empty axis varies nothing. A panel's label joins
    its variants' labels in axis order; its prompt is the last variant's
    prompt that is not None; its overrides are ``overrides`` (the panel's
    own) with each variant's over them, in axis order.
    """
    combos: list[tuple[Variant, ...]] = [()]
    for axis in axes:
        if axis:
            combos = [(*combo, variant) for combo in combos for variant in axis]
    specs = []
    for ref in refs:
        for combo in combos:
            prompt = next((v.prompt for v in reversed(combo) if v.prompt is not None), None)
            merged = dict(overrides or {})
            for variant in combo:
                merged.update(variant.overrides)
            specs.append(PanelSpec(ref, joined(*(v.label for v in combo)), prompt, merged))
    return specs
