"""Progress bars on stderr for the CLI's long steps: installing the default
models and ``workbench pull``.

rich draws them, one step at a time: a live bar while the step runs on a
terminal, left on screen when it is done, with log lines between the bars.
When stderr is not a terminal (a log file, CI), rich draws nothing while a
step runs and prints its bar once, finished, as one line with no control
codes. A bar runs only while its step does, so nothing redraws over what a
subprocess (pip, in an install) writes between two steps.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from workbench.engine.sanitize import clean


class Bars:
    """A bar per step, named by its label; use as a context manager."""

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False)
        self._live: Progress | None = None
        self._task: TaskID | None = None
        self._label: str | None = None

    def update(self, label: str, done: int, total: int) -> None:
        """Step ``label`` is at ``done`` of ``total`` bytes. A new label ends
        the step before it and starts a bar; reaching the total ends it."""
        if label != self._label:
            self._finish()
            self._label = label
            self._live = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                DownloadColumn(binary_units=True),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._task = self._live.add_task(clean(label, max_len=200), total=total)
            self._live.start()
        if self._live is None or self._task is None:
            return  # more news of a step already done
        self._live.update(self._task, completed=done, total=total)
        if done >= total:
            self._finish()

    def log(self, message: str) -> None:
        """A line of its own (above the bar, while one runs)."""
        self.console.print(Text(clean(message, max_len=2000)))

    def _finish(self) -> None:
        if self._live is not None:
            self._live.stop()
        self._live, self._task = None, None

    def __enter__(self) -> Bars:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish()
