"""Build progress output: one line per finished rule, a live spinner for running rules.

Two reporters share one interface. :class:`PlainReporter` writes plain lines (CI logs, pipes)
and never imports rich, which keeps the no-op rebuild fast. :class:`RichReporter` adds a live
status line per running rule when the console is a terminal.
"""

from __future__ import annotations

import sys
import threading

WORDS = {"ran": "ran", "cached": "cached", "cutoff": "cut off", "skipped": "skipped",
         "would-run": "would-run", "failed": "failed"}


def make_reporter(console=None, *, names: list[str] | None = None):
    """A rich reporter for ``console`` (or a terminal stderr), else a plain-text one."""
    width = max((len(n) for n in names or []), default=8)
    if console is None and not sys.stderr.isatty():
        return PlainReporter(sys.stderr, width)
    return RichReporter(console, width)


def format_line(status: str, name: str, seconds: float, width: int) -> str:
    """``  ran     train      12.3s`` style line for a finished rule (no time when nothing
    ran: skipped, would-run)."""
    line = f"  {WORDS.get(status, status):<9} {name:<{width}}"
    return line.rstrip() if status in ("skipped", "would-run") else f"{line} {seconds:6.1f}s"


class PlainReporter:
    """Plain text lines on a stream; progress messages are not shown (no live line)."""

    def __init__(self, stream, width: int):
        self.stream = stream
        self.width = width
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def start(self, name: str) -> None:
        """A rule began running (nothing shown in plain mode)."""

    def progress(self, name: str, message: str) -> None:
        """Live status of a running rule (nothing shown in plain mode)."""

    def finish(self, status: str, name: str, seconds: float, why: list[str]) -> None:
        """Print the finished-rule line, followed by its reasons if any."""
        lines = [format_line(status, name, seconds, self.width)]
        lines += [f"{'':12}{'':{self.width}} {reason}" for reason in why]
        self._write("\n".join(lines))

    def log(self, name: str, message: str) -> None:
        """A log line from a rule's action."""
        self._write(f"  [{name}] {message}")

    def warn(self, message: str) -> None:
        """A warning (e.g. a corrupted cache entry)."""
        self._write(f"warning: {message}")

    def close(self) -> None:
        """End of build."""


class RichReporter(PlainReporter):
    """Rich console output; a live spinner line per running rule when on a terminal.

    With ``console=None`` rich is only imported once a rule actually runs (a Console on
    stderr is made then), so a no-op rebuild on a terminal stays as fast as in plain mode.
    """

    STYLES = {"ran": "green", "cached": "dim", "cutoff": "cyan", "skipped": "dim",
              "would-run": "yellow", "failed": "bold red"}

    def __init__(self, console, width: int):
        super().__init__(sys.stderr, width)
        self.console = None
        self._running: dict = {}
        self._live = None
        if console is not None:
            self._attach(console)

    def _attach(self, console) -> None:
        self.console = console
        if console.is_terminal:
            from rich.live import Live

            self._live = Live(self._render(), console=console, transient=True,
                              refresh_per_second=8, get_renderable=self._render)
            self._live.start()

    def _render(self):
        from rich.console import Group

        return Group(*list(self._running.values()))

    def _write(self, text) -> None:
        if self.console is None:
            super()._write(str(text))
            return
        with self._lock:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def start(self, name: str) -> None:
        from rich.spinner import Spinner

        if self.console is None:
            from rich.console import Console

            self._attach(Console(stderr=True))
        self._running[name] = Spinner("dots", text=self._status(name, "running"))

    def progress(self, name: str, message: str) -> None:
        spinner = self._running.get(name)
        if spinner is not None:
            spinner.update(text=self._status(name, message))

    def _status(self, name: str, message: str):
        from rich.text import Text

        return Text(f" {name:<{self.width}} {message}")

    def finish(self, status: str, name: str, seconds: float, why: list[str]) -> None:
        self._running.pop(name, None)
        if self._live is not None:
            self._live.refresh()
        if self.console is None:
            super().finish(status, name, seconds, why)
            return
        from rich.text import Text

        text = Text(format_line(status, name, seconds, self.width))
        word = WORDS.get(status, status)
        text.stylize(self.STYLES.get(status, ""), 2, 2 + len(word))
        for reason in why:
            text.append(f"\n{'':12}{'':{self.width}} {reason}")
        self._write(text)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
