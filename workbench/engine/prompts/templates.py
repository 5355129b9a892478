"""Prompt templates, and few-shot prompts built from worked examples.

A template is a named prompt with variables such as ``{input}``,
``{context}`` or ``{question}``, filled in by ``render``; ``{{`` and ``}}``
are literal braces. It may carry a system prompt and a mode. A template with
``examples`` is a few-shot task: ``render(values, shots=n)`` puts the first
``n`` examples before the new input (see ``FewShot`` for the exact layout),
so the zero-, one- and few-shot versions of one task can run side by side.
The text side (variables, filling in, the few-shot layout) is in
``template_text.py``; its names are importable from here too.

Built-in templates ship in ``builtin_templates.toml`` beside this module and
are read-only. The user's own live in ``templates/`` in the data folder, one
``NAME.toml`` each, in the same format as one table of the built-in file.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from workbench.engine import paths
from workbench.engine.prompts.template_text import (
    NAME_RE,
    VARIABLE_RE,
    FewShot,
    TemplateError,
    check_name,
    default_shots,
    fill,
    missing_message,
    shot_label,
    variables_of,
    variants,
)
from workbench.engine.running.protocol import Mode, Prompt

BUILTIN_FILE = "builtin_templates.toml"
_MODES = ("chat", "raw")


# -- templates ------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A named prompt with variables.

    ``text`` is the prompt (for a few-shot template, the new input);
    ``system`` an optional system prompt (chat mode); ``mode`` the mode it
    is meant for, or None to leave the choice to the user. ``defaults`` gives
    values to variables the user does not set, so a template runs as it is.
    With ``examples`` the template is a few-shot task: ``instruction`` comes
    first, then the examples and ``text`` labelled with ``input_label`` and
    ``output_label`` (see ``FewShot``). Built-in templates are read-only.
    """

    name: str
    text: str
    system: str = ""
    mode: Mode | None = None
    description: str = ""
    instruction: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    input_label: str = "Input"
    output_label: str = "Output"
    defaults: Mapping[str, str] = field(default_factory=dict)
    builtin: bool = False

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.mode is not None and self.mode not in _MODES:
            raise TemplateError(f"template {self.name!r}: mode must be 'chat' or 'raw'")
        object.__setattr__(self, "examples", tuple((str(i), str(o)) for i, o in self.examples))
        object.__setattr__(self, "defaults", dict(self.defaults))
        for part in (self.instruction, self.text, self.system):
            try:
                variables_of(part)
            except TemplateError as exc:
                raise TemplateError(f"template {self.name!r}: {exc}") from None

    @property
    def variables(self) -> list[str]:
        """Every variable the template uses, in order of first use."""
        names: list[str] = []
        for part in (self.instruction, self.text, self.system):
            names += [n for n in variables_of(part) if n not in names]
        return names

    @property
    def is_fewshot(self) -> bool:
        return bool(self.examples)

    def values(self, given: Mapping[str, str] | None = None) -> dict[str, str]:
        """The defaults with ``given`` over them; TemplateError for a name the
        template does not use, or a variable left without a value."""
        given = dict(given or {})
        wanted = self.variables
        unknown = [k for k in given if k not in wanted]
        if unknown:
            known = ", ".join("{" + v + "}" for v in wanted) or "none"
            raise TemplateError(
                f"template {self.name!r} has no variable "
                + ", ".join("{" + k + "}" for k in unknown)
                + f" (its variables: {known})"
            )
        merged = {**{k: v for k, v in self.defaults.items() if k in wanted}, **given}
        missing = [name for name in wanted if name not in merged]
        if missing:
            raise TemplateError(f"template {self.name!r}: {missing_message(missing)}")
        return merged

    def fewshot(self, given: Mapping[str, str] | None = None) -> FewShot:
        """The few-shot task with its variables filled in."""
        if not self.examples:
            raise TemplateError(f"template {self.name!r} has no examples to show")
        values = self.values(given)
        return FewShot(
            fill(self.instruction, values),
            self.examples,
            fill(self.text, values),
            self.input_label,
            self.output_label,
        )

    def render(self, given: Mapping[str, str] | None = None, shots: int | None = None) -> str:
        """The prompt text; ``shots`` examples for a few-shot template (all
        when None). A template without examples takes only 0 or None."""
        if self.examples:
            return self.fewshot(given).render(shots)
        if shots:
            raise TemplateError(f"template {self.name!r} has no examples: it takes no shots")
        return fill(self.text, self.values(given))

    def prompt(
        self,
        given: Mapping[str, str] | None = None,
        shots: int | None = None,
        *,
        mode: Mode | None = None,
        system: str | None = None,
    ) -> Prompt:
        """A prompt to run. ``mode`` and ``system`` (the user's own choices)
        win over the template's; chat mode when neither says."""
        text = self.render(given, shots)
        own_system = fill(self.system, self.values(given)) if self.system else ""
        return Prompt(text, own_system if system is None else system, mode or self.mode or "chat")

    def variants(
        self,
        given: Mapping[str, str] | None = None,
        shots: Sequence[int] | None = None,
        *,
        mode: Mode | None = None,
        system: str | None = None,
    ) -> list[tuple[str, Prompt]]:
        """(label, prompt) for each number of shots: zero-, one- and few-shot
        by default. A template without examples has one variant, "as is"."""
        if not self.examples:
            if shots and any(shots):
                raise TemplateError(f"template {self.name!r} has no examples: it takes no shots")
            return [(self.name, self.prompt(given, mode=mode, system=system))]
        counts = list(shots) if shots is not None else default_shots(len(self.examples))
        return [(shot_label(n), self.prompt(given, n, mode=mode, system=system)) for n in counts]

    # -- files ---------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, name: str, data: object, *, builtin: bool = False) -> Template:
        """A template from one TOML table; TemplateError names the bad key."""
        where = f"template {name!r}"
        if not isinstance(data, dict):
            raise TemplateError(f"{where} must be a table")
        known = {"text", "system", "mode", "description", "instruction", "examples",
                 "input_label", "output_label", "defaults"}  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise TemplateError(f"{where}: unknown key {unknown[0]!r}")
        if "text" not in data:
            raise TemplateError(f"{where}: no 'text'")
        kwargs: dict[str, Any] = {}
        for key in ("text", "system", "description", "instruction", "input_label",
                    "output_label", "mode"):  # fmt: skip
            if key in data:
                if not isinstance(data[key], str):
                    raise TemplateError(f"{where}: {key!r} must be a string")
                kwargs[key] = data[key]
        examples = data.get("examples", [])
        if not (
            isinstance(examples, list)
            and all(
                isinstance(e, list) and len(e) == 2 and all(isinstance(s, str) for s in e)
                for e in examples
            )
        ):
            raise TemplateError(f"{where}: 'examples' must be a list of [input, output] pairs")
        kwargs["examples"] = tuple((e[0], e[1]) for e in examples)
        defaults = data.get("defaults", {})
        if not (isinstance(defaults, dict) and all(isinstance(v, str) for v in defaults.values())):
            raise TemplateError(f"{where}: 'defaults' must be a table of strings")
        kwargs["defaults"] = defaults
        return cls(name=name, builtin=builtin, **kwargs)

    def to_toml(self) -> str:
        """This template as a TOML document; ``from_mapping`` reads it back equal."""
        data: dict[str, Any] = {}
        defaults = {"input_label": "Input", "output_label": "Output"}
        for key in ("description", "mode", "system", "instruction", "input_label",
                    "output_label", "text"):  # fmt: skip
            value = getattr(self, key)
            if key == "text" or (value and value != defaults.get(key)):
                data[key] = value
        if self.examples:
            data["examples"] = [list(pair) for pair in self.examples]
        if self.defaults:
            data["defaults"] = dict(self.defaults)
        _check_encodable(data)
        return tomli_w.dumps(data, multiline_strings=True)


def _check_encodable(value: object) -> None:
    # A lone surrogate can be typed or pasted into the app, but no file can
    # hold it: say so here rather than fail when the text is written.
    if isinstance(value, str):
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            raise TemplateError("a template cannot hold a lone surrogate character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_encodable(key)
            _check_encodable(item)
    elif isinstance(value, list):
        for item in value:
            _check_encodable(item)


# -- where templates live ---------------------------------------------------------


def templates_dir() -> Path:
    """The folder of the user's templates (``WORKBENCH_HOME`` moves it)."""
    return paths.data_dir() / "templates"


@functools.cache
def _builtins() -> dict[str, Template]:
    text = resources.files("workbench.engine.prompts").joinpath(BUILTIN_FILE).read_text("utf-8")
    data = tomllib.loads(text)
    return {name: Template.from_mapping(name, table, builtin=True) for name, table in data.items()}


def builtin_templates() -> dict[str, Template]:
    """The templates shipped with the workbench, by name."""
    return dict(_builtins())


def _read(path: Path) -> Template:
    name = path.stem
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise TemplateError(f"cannot read {path} ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path} is not valid TOML ({exc})") from None
    return Template.from_mapping(name, data)


def list_templates(warn: Callable[[str], None] | None = None) -> list[Template]:
    """Built-in templates, then the user's by name. A user file that cannot be
    read is left out, with ``warn(reason)``."""
    found = list(_builtins().values())
    folder = templates_dir()
    try:
        files = sorted(folder.glob("*.toml"))
    except OSError:
        files = []
    for path in files:
        if not NAME_RE.fullmatch(path.stem):
            continue
        if path.stem in _builtins():
            if warn:
                warn(f"{path}: a built-in template has this name; the file is ignored")
            continue
        try:
            found.append(_read(path))
        except TemplateError as exc:
            if warn:
                warn(str(exc))
    return found


def load_template(name: str) -> Template:
    """A template by name: built-in first, then the user's."""
    builtin = _builtins().get(name)
    if builtin is not None:
        return builtin
    path = templates_dir() / f"{check_name(name)}.toml"
    if not path.is_file():
        known = ", ".join(t.name for t in list_templates()) or "none"
        raise TemplateError(f"no template {name!r} (known: {known})")
    return _read(path)


def save_template(template: Template) -> Path:
    """Write a user template (replacing one of the same name); its path."""
    name = check_name(template.name)
    if name in _builtins():
        raise TemplateError(f"{name!r} is a built-in template (read-only): save under another name")
    folder = templates_dir()
    path = folder / f"{name}.toml"
    text = template.to_toml()
    tmp = folder / f".{name}.toml.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise TemplateError(f"cannot write {path} ({exc.strerror or exc})") from None
    return path


def delete_template(name: str) -> bool:
    """Delete a user template; False if there was none by that name."""
    if name in _builtins():
        raise TemplateError(f"{name!r} is a built-in template and cannot be deleted")
    path = templates_dir() / f"{check_name(name)}.toml"
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise TemplateError(f"cannot delete {path} ({exc.strerror or exc})") from None
    return True


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["input=text", "k=v"]`` (as given to ``--set``) as a dict."""
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not VARIABLE_RE.fullmatch(key):
            raise TemplateError(f"--set takes NAME=VALUE, such as input=hello, not {item!r}")
        values[key] = value
    return values


def parse_shots(spec: str) -> list[int]:
    """``"3"`` or ``"0,1,3"`` as numbers of shots."""
    try:
        shots = [int(s) for s in spec.split(",")]
    except ValueError:
        raise TemplateError(f"--shots takes numbers such as 3 or 0,1,3, not {spec!r}") from None
    if any(n < 0 for n in shots) or len(set(shots)) != len(shots):
        raise TemplateError(f"--shots takes different numbers of 0 or more, not {spec!r}")
    return shots


__all__ = [
    "FewShot",
    "Template",
    "TemplateError",
    "builtin_templates",
    "check_name",
    "default_shots",
    "delete_template",
    "fill",
    "list_templates",
    "load_template",
    "parse_assignments",
    "parse_shots",
    "save_template",
    "shot_label",
    "templates_dir",
    "variables_of",
    "variants",
]
