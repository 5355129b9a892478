"""The one interface every backend implements."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from workbench.engine.errors import WorkbenchError
from workbench.engine.running.params import GenParams
from workbench.engine.running.protocol import Counted, Event, Prompt, Tokenized

_ids = itertools.count(1)


def next_id() -> int:
    """A process-wide unique request id."""
    return next(_ids)


@dataclass(frozen=True)
class Header:
    """What a panel header shows about a model."""

    title: str
    arch: str = "?"
    params: str = "?"
    quant: str = "?"
    size: str = "?"
    n_ctx_train: int | None = None
    kind: str = ""


class Runner(ABC):
    """A model the user can run: local (in a worker process) or remote.

    All methods block and may be called from any thread; ``cancel`` and
    ``set_threads`` may be called while ``generate`` is being iterated in
    another thread.
    """

    id: str
    header: Header

    @abstractmethod
    def n_ctx_for(self, params: GenParams) -> int:
        """The context size a run with these parameters will use."""

    @abstractmethod
    def count(self, prompt: Prompt, params: GenParams) -> Counted:
        """This model's token count of the prompt, as the model will read it.

        Raises ``RunnerError`` when the model cannot count (not loadable).
        """

    def tokenize(self, prompt: Prompt, params: GenParams) -> Tokenized:
        """The prompt as this model reads it: token ids and their text pieces.

        ``len(ids)`` equals ``count(...).n_tokens`` for the same prompt. Raises
        ``RunnerError`` when the backend cannot show its tokens.
        """
        raise RunnerError("this backend cannot show its tokens")

    @abstractmethod
    def generate(self, prompt: Prompt, params: GenParams, n_threads: int) -> Iterator[Event]:
        """Load if needed, then stream: [Loaded], PromptStarted, Token..., Done.

        Failures are yielded as a final ``Error`` event, never raised.
        Closing the iterator early cancels the run.
        """

    @abstractmethod
    def cancel(self) -> None:
        """Stop the current run soon (within a token)."""

    def set_threads(self, n_threads: int) -> None:  # noqa: B027 - optional for remote backends
        """Change the thread count of a run in progress."""

    @property
    def uses_local_cpu(self) -> bool:
        return True

    @abstractmethod
    def close(self) -> None:
        """Free the model (end its worker)."""


class RunnerError(WorkbenchError, RuntimeError):
    """A model cannot be loaded or asked; the message is for the user."""
