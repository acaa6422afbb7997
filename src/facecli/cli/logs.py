"""The library's log records on the terminal: notes as plain lines, warnings as `warning: ...` lines."""

from __future__ import annotations

import logging

from rich.text import Text

from facecli.console import err_console, printable


class TerminalHandler(logging.Handler):
    """Renders a `facecli` log record as one line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        text = printable(record.getMessage())
        if record.levelno >= logging.WARNING:
            err_console.print(Text(f"warning: {text}", style="yellow"))
        else:
            err_console.print(Text(text))


def show_library_logs() -> None:
    """Show the library's notes (INFO) and warnings; a library user without this sees only the warnings."""
    logger = logging.getLogger("facecli")
    if not any(isinstance(h, TerminalHandler) for h in logger.handlers):
        logger.addHandler(TerminalHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
