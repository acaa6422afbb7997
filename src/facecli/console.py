"""The terminal: the two consoles, and text made safe to print there."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def printable(text: object) -> str:
    """Text any terminal can show: file-name bytes that are not UTF-8 (surrogate escapes) become U+FFFD."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def error_line(message: object) -> str:
    """A user error as one red line; the message is shown literally (paths may hold [brackets])."""
    return f"[bold red]error:[/] {escape(' '.join(printable(message).split()))}"


def quiet_after_interrupt() -> None:
    """After Ctrl-C, objects cut off half-built (a DataLoader iterator) can fail in their destructors as the
    process ends; those reports are noise once the user has stopped the command."""
    import sys

    sys.unraisablehook = lambda unraisable: None
