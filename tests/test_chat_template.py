"""Chat templates are untrusted: a template that reaches for Python's
internals is refused by the sandbox, and nothing of its payload runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.engine.models.catalog import make_entry
from workbench.engine.prompts.chat import TemplateError, render
from workbench.engine.running import protocol as p
from workbench.engine.running.backends.local import LocalRunner
from workbench.engine.running.params import GenParams

PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
    "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch {marker}') }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ messages.append({{'role': 'x'}}) }}",
    "{{ lipsum.__globals__['os'].system('touch {marker}') }}",
]


def _payload(template: str, marker: Path) -> str:
    return template.replace("{marker}", str(marker)).replace("{{'", "{'").replace("'}}", "'}")


@pytest.mark.parametrize("template", PAYLOADS)
def test_sandbox_refuses_escapes(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    with pytest.raises(TemplateError):
        render(_payload(template, marker), p.Prompt("hi"))
    assert not marker.exists()


def test_ordinary_templates_render() -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}"
        "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    out = render(template, p.Prompt("hello", system="be brief"), bos="<s>")
    assert out == "<s><system>be brief<user>hello<assistant>"


def test_template_refusing_system_role_gets_it_folded_into_the_user_turn() -> None:
    template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "[{{ m['role'] }}] {{ m['content'] }}{% endfor %}"
    )
    out = render(template, p.Prompt("question", system="rules"))
    assert out == "[user] rules\n\nquestion"


def _with_template(model: Path, template: str, dest: Path) -> Path:
    """A copy of a real model whose chat template is replaced in place.

    The new template is padded to the old one's byte length with a Jinja
    comment, so no offset in the file moves.
    """
    data = model.read_bytes()
    key = b"tokenizer.chat_template"
    at = data.index(key) + len(key)
    assert int.from_bytes(data[at : at + 4], "little") == 8  # GGUF string type
    length = int.from_bytes(data[at + 4 : at + 12], "little")
    new = template.encode()
    pad = length - len(new) - 4
    assert pad >= 0, "payload longer than the original template"
    new += b"{#" + b" " * pad + b"#}"
    dest.write_bytes(data[: at + 12] + new + data[at + 12 + length :])
    return dest


@pytest.mark.slow
def test_a_model_with_a_hostile_template_is_refused_and_nothing_runs(
    tmp_path: Path, default_model_paths: dict[str, Path]
) -> None:
    marker = tmp_path / "escaped"
    template = _payload(PAYLOADS[2], marker)
    path = _with_template(default_model_paths["smollm2"], template, tmp_path / "hostile.gguf")
    runner = LocalRunner(make_entry("hostile", path, "file"))
    try:
        events = list(runner.generate(p.Prompt("hi"), GenParams(max_tokens=4), 1))
        assert isinstance(events[-1], p.Error)
        assert "sandbox" in events[-1].message
        # The model itself is fine: raw mode, which uses no template, runs.
        raw = list(runner.generate(p.Prompt("hi", mode="raw"), GenParams(max_tokens=4), 1))
        assert isinstance(raw[-1], p.Done)
    finally:
        runner.close()
    assert not marker.exists()
