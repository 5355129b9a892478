"""Chat templates: the model's own Jinja template, rendered in a sandbox.

A GGUF's template is untrusted input. It renders in Jinja's immutable
sandbox, which blocks attribute access such as ``__class__`` or
``__subclasses__`` and forbids mutating objects, so a template cannot reach
``os`` or run code; jinja2 >= 3.1.5 closes the known sandbox escapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workbench.engine.errors import WorkbenchError
from workbench.engine.running.protocol import Prompt


class TemplateError(WorkbenchError, ValueError):
    """The chat template could not be rendered; the message says why."""


def _raise(message: str) -> None:
    raise TemplateError(message)


def _env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def messages_for(prompt: Prompt, system_supported: bool = True) -> list[dict[str, str]]:
    if prompt.system and system_supported:
        return [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.text},
        ]
    text = f"{prompt.system}\n\n{prompt.text}" if prompt.system else prompt.text
    return [{"role": "user", "content": text}]


def render(template: str, prompt: Prompt, bos: str = "", eos: str = "") -> str:
    """The prompt as the model will read it in chat mode.

    A template that refuses a system message (some do, via
    ``raise_exception``) gets the system text folded into the user turn.
    """
    env = _env()
    try:
        compiled = env.from_string(template)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"chat template does not parse: {exc}") from None
    variables: dict[str, Any] = {
        "bos_token": bos,
        "eos_token": eos,
        "add_generation_prompt": True,
    }
    try:
        return compiled.render(messages=messages_for(prompt), **variables)
    except TemplateError:
        if not prompt.system:
            raise
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"chat template refused by the sandbox: {exc}") from None
    except Exception as exc:  # any error inside untrusted template code
        raise TemplateError(f"chat template failed: {type(exc).__name__}: {exc}") from None
    try:
        return compiled.render(messages=messages_for(prompt, system_supported=False), **variables)
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"chat template refused by the sandbox: {exc}") from None
    except Exception as exc:
        raise TemplateError(f"chat template failed: {type(exc).__name__}: {exc}") from None
