"""Panels from models, template variants and sweeps (``engine/prompts/plan.py``)."""

from __future__ import annotations

import pytest

from workbench.engine.prompts import plan
from workbench.engine.running.params import GenParams, ParamError
from workbench.engine.running.protocol import Prompt

ZERO = Prompt("Q: hi\nA:", "", "raw")
ONE = Prompt("Q: 2+2\nA: 4\nQ: hi\nA:", "", "raw")


def test_a_plain_model_is_one_plain_panel() -> None:
    assert plan.expand(["smol"]) == [plan.PanelSpec("smol")]
    assert plan.expand(["smol", "gemma"], [], []) == [
        plan.PanelSpec("smol"),
        plan.PanelSpec("gemma"),
    ]


def test_every_model_gets_every_combination_in_order() -> None:
    prompts = plan.template_variants([("zero-shot", ZERO), ("one-shot", ONE)])
    values = plan.sweep_variants(GenParams(), "temperature=0,0.7")
    specs = plan.expand(["smol", "gemma"], prompts, values, overrides={"seed": 3})
    assert [(s.ref, s.label) for s in specs] == [
        ("smol", "zero-shot · temperature=0"),
        ("smol", "zero-shot · temperature=0.7"),
        ("smol", "one-shot · temperature=0"),
        ("smol", "one-shot · temperature=0.7"),
        ("gemma", "zero-shot · temperature=0"),
        ("gemma", "zero-shot · temperature=0.7"),
        ("gemma", "one-shot · temperature=0"),
        ("gemma", "one-shot · temperature=0.7"),
    ]
    assert [s.prompt for s in specs[:4]] == [ZERO, ZERO, ONE, ONE]
    assert specs[1].overrides == {"seed": 3, "temperature": 0.7}


def test_a_panel_runs_its_overrides_over_the_shared_settings() -> None:
    base = GenParams(temperature=0.2, seed=1, max_tokens=64)
    spec = plan.expand(["smol"], plan.sweep_variants(base, "top-p=0.5"), overrides={"seed": 9})[0]
    assert spec.params(base) == GenParams(temperature=0.2, seed=9, max_tokens=64, top_p=0.5)
    assert plan.PanelSpec("smol").params(base) is base


def test_a_variant_keeps_its_prompt_and_label_under_a_sweep() -> None:
    # What the app does when a template-variant panel is swept.
    base = [plan.Variant("one-shot", ONE)]
    specs = plan.expand(["smol"], base, plan.sweep_variants(GenParams(), "seed=1,2"))
    assert [(s.label, s.prompt, dict(s.overrides)) for s in specs] == [
        ("one-shot · seed=1", ONE, {"seed": 1}),
        ("one-shot · seed=2", ONE, {"seed": 2}),
    ]


def test_sweep_values_are_checked_against_the_setting() -> None:
    with pytest.raises(ParamError, match="temperature"):
        plan.sweep_variants(GenParams(), "temperature=0,-1")
    with pytest.raises(ParamError, match="NAME=V1,V2"):
        plan.sweep_variants(GenParams(), "temperature")


def test_joined_skips_empty_labels() -> None:
    assert plan.joined("", "one-shot", "", "seed=2") == "one-shot · seed=2"
    assert plan.joined() == ""
