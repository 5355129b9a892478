"""The engine's errors for the user share one base, and the CLI reports them
in one place."""

from __future__ import annotations

import pytest

from workbench import cli
from workbench.engine.errors import WorkbenchError
from workbench.engine.history.store import StoreError
from workbench.engine.models.bundled import InstallError
from workbench.engine.models.gguf import GGUFError
from workbench.engine.models.hub import DownloadCancelled, HubError
from workbench.engine.prompts.chat import TemplateError as ChatTemplateError
from workbench.engine.prompts.templates import TemplateError
from workbench.engine.running.backends.base import RunnerError
from workbench.engine.running.backends.remote_spec import SpecError
from workbench.engine.running.params import ParamError
from workbench.engine.running.runners import UnknownModel
from workbench.engine.running.worker import WorkerDied

# Each error, and the built-in class that callers also catch it by.
ERRORS: list[tuple[type[Exception], type[Exception]]] = [
    (ParamError, ValueError),
    (TemplateError, ValueError),
    (ChatTemplateError, ValueError),
    (SpecError, ValueError),
    (UnknownModel, KeyError),
    (RunnerError, RuntimeError),
    (StoreError, RuntimeError),
    (InstallError, RuntimeError),
    (WorkerDied, RuntimeError),
    (GGUFError, Exception),
    (HubError, Exception),
    (DownloadCancelled, HubError),
]


@pytest.mark.parametrize(("error", "builtin"), ERRORS, ids=lambda e: e.__name__)
def test_every_error_for_the_user_is_a_workbench_error(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, WorkbenchError)
    assert issubclass(error, builtin)


def test_the_message_is_the_text_without_quotes() -> None:
    # str() of a KeyError is the repr of its text; the message is the text.
    assert UnknownModel("no model 'x'").message == "no model 'x'"
    assert ParamError("temperature must be >= 0").message == "temperature must be >= 0"


def test_the_workers_model_error_is_one_too() -> None:
    llama_load = pytest.importorskip("workbench.engine.running.backends.llama_load")
    assert issubclass(llama_load.ModelError, WorkbenchError)
    assert issubclass(llama_load.ModelError, RuntimeError)


def _fail_with(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def handler(_args: object) -> int:
        raise error

    monkeypatch.setitem(cli.cli_templates.HANDLERS, "templates", handler)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ParamError("top_p must be in 0..1"), 2),
        (HubError("no GGUF file matches --quant Q9", "choice"), 2),
        (HubError("the Hub answered 500", "network"), 1),
        (UnknownModel("no model 'nope' (known: smol)"), 1),
        (StoreError("history.sqlite is locked"), 1),
    ],
)
def test_the_cli_reports_an_engine_error_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: WorkbenchError,
    status: int,
) -> None:
    _fail_with(monkeypatch, error)
    assert cli.main(["templates", "list"]) == status
    out = capsys.readouterr()
    assert out.err == f"workbench: {error.message}\n"
    assert out.out == ""


def test_front_ends_word_an_engine_error_by_its_message_alone() -> None:
    from workbench.engine.errors import describe
    from workbench.engine.running.backends.base import RunnerError

    assert describe(RunnerError("the model worker stopped")) == "the model worker stopped"
    assert describe(ValueError("disk on fire")) == "ValueError: disk on fire"
