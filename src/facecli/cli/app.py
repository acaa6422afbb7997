"""The Typer app, its help panels, and `command`: the decorator every command is registered with."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import inspect
import sys
import typing
from collections.abc import Callable
from typing import Any

import typer
from typer._click import Context  # typer 0.29 carries its own click
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

from facecli.cli.logs import show_library_logs
from facecli.console import err_console, error_line, quiet_after_interrupt
from facecli.errors import FaceCliError, os_error


@contextlib.contextmanager
def _usage_errors_in_one_line(command_path: str) -> typing.Iterator[None]:
    """A wrong option, value or command name as one `error:` line naming the help to read, exit code 2, as
    every other user error is (not click's usage text and boxed message)."""
    try:
        yield
    except NoArgsIsHelpError:  # a bare `facecli` or command: its help, as it is
        raise
    except UsageError as exc:
        line = f"{error_line(exc.format_message())} (see '{command_path} --help')"
        err_console.print(line, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


class _Group(TyperGroup):
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with _usage_errors_in_one_line(info_name or "facecli"):
            return super().make_context(info_name, args, parent, **extra)

    def resolve_command(self, ctx: Context, args: list[str]) -> Any:
        with _usage_errors_in_one_line(ctx.command_path):
            return super().resolve_command(ctx, args)


class _Command(TyperCommand):
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        path = f"{parent.command_path} {info_name}" if parent is not None else str(info_name)
        with _usage_errors_in_one_line(path):
            return super().make_context(info_name, args, parent, **extra)


app = typer.Typer(
    cls=_Group,
    name="facecli",
    help="Face verification and metric learning with PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

DATA, TRAINING, EVALUATION, DEPLOYMENT, SEARCH = "Data", "Training", "Evaluation", "Deployment", "Search"
PHOTOS = "Photos"


RESUME_NEWEST = "@newest"  # what a bare `train --resume` becomes: the newest unfinished run


def resume_without_folder(argv: list[str]) -> list[str]:
    """`train --resume` with no folder (last, or followed by another option) as `--resume @newest`: a Typer
    option always takes a value."""
    if "train" not in argv or "--resume" not in argv:
        return argv
    at = argv.index("--resume")
    if at + 1 == len(argv) or argv[at + 1].startswith("-"):
        return [*argv[: at + 1], RESUME_NEWEST, *argv[at + 1 :]]
    return argv


def _version(asked: bool) -> None:
    if asked:
        from facecli import __version__

        print(f"facecli {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: typing.Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Face verification and metric learning with PyTorch."""
    show_library_logs()


def _in_panel(hint: Any, panel: str | None) -> Any:
    """An `Annotated[type, typer.Option(...)]` hint whose option is shown in `panel`, unless it names its own."""
    if panel is None:
        return hint
    kind, *extras = typing.get_args(hint)
    options = [copy.copy(extra) if isinstance(extra, typer.models.OptionInfo) else extra for extra in extras]
    for option in options:
        if isinstance(option, typer.models.OptionInfo) and option.rich_help_panel is None:
            option.rich_help_panel = panel
    return typing.Annotated[(kind, *options)]


def _group_parameters(group: type) -> list[inspect.Parameter]:
    """An option group's fields as keyword parameters, each with its Typer option in the annotation
    (shown in the group's help panel, where it names one as PANEL)."""
    hints = typing.get_type_hints(group, include_extras=True)
    panel = getattr(group, "PANEL", None)
    return [
        inspect.Parameter(
            f.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=f.default,
            annotation=_in_panel(hints[f.name], panel),
        )
        for f in dataclasses.fields(group)
    ]


def _expand_groups(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Let a command take an option group (a dataclass whose fields are Typer options) as one parameter.

    Typer sees the group's fields as ordinary options; the command receives the filled dataclass.
    """
    hints = typing.get_type_hints(fn, include_extras=True)
    signature = inspect.signature(fn)
    groups = {name: hints[name] for name in signature.parameters if dataclasses.is_dataclass(hints.get(name))}
    if not groups:
        return fn
    parameters = []
    for name, param in signature.parameters.items():
        if name in groups:
            parameters += _group_parameters(groups[name])
        else:
            parameters.append(param.replace(annotation=hints.get(name, param.annotation)))

    @functools.wraps(fn)
    def run(**kwargs: Any) -> Any:
        for name, group in groups.items():
            kwargs[name] = group(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(group)})
        return fn(**kwargs)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    del run.__wrapped__  # Typer must read the expanded signature, not the original's
    return run


def _flags(hint: Any) -> tuple[str, ...]:
    """The flags of an `Annotated[type, typer.Option(...)]` hint."""
    flags: tuple[str, ...] = ()
    for extra in typing.get_args(hint)[1:]:
        if isinstance(extra, typer.models.OptionInfo):
            first = (extra.default,) if isinstance(extra.default, str) else ()
            flags += tuple(f for part in (*first, *extra.param_decls) for f in part.split("/"))
    return flags


def _with_old_names(fn: Callable[..., Any], renamed: dict[str, str]) -> Callable[..., Any]:
    """Keep each old flag of `renamed` (old -> new) as a hidden option that still works and prints a
    one-line note naming the new one."""
    hints = typing.get_type_hints(fn, include_extras=True)
    signature = inspect.signature(fn)
    parameters = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    aliases = {}  # hidden parameter -> (the renamed parameter, old flag, new flag)
    for number, (old, new) in enumerate(renamed.items()):
        target = next(p for p in parameters if new in _flags(p.annotation))
        kind = typing.get_args(target.annotation)[0]
        alias = f"old_name_{number}"
        option = typer.Option(old, hidden=True)
        parameters.append(
            inspect.Parameter(
                alias, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=typing.Annotated[kind, option]
            )
        )
        aliases[alias] = (target.name, old, new)

    @functools.wraps(fn)
    def run(**kwargs: Any) -> Any:
        for alias, (name, old, new) in aliases.items():
            value = kwargs.pop(alias)
            if value is not None:
                err_console.print(f"note: {old} is now {new}; {old} will be removed", highlight=False)
                kwargs[name] = value
        return fn(**kwargs)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    del run.__wrapped__
    return run


def command(
    name: str, panel: str, renamed: dict[str, str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command in a help panel; its user errors become one red line on stderr and exit code 2.
    `renamed` maps old flags to their new names: the old ones keep working, hidden, with a note."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        expanded = _expand_groups(fn)
        if renamed:
            expanded = _with_old_names(expanded, renamed)

        @functools.wraps(expanded)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return expanded(*args, **kwargs)
            except FaceCliError as exc:
                err_console.print(error_line(exc), highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None
            except OSError as exc:  # the system refused a path: read-only, full, a file where a folder goes
                err_console.print(error_line(os_error(exc)), highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                quiet_after_interrupt()
                # written past rich: a Ctrl-C that lands inside one of rich's prints can leave its buffer
                # held, and every later print through it would then be lost
                sys.stderr.write("interrupted\n")
                raise typer.Exit(130) from None

        return app.command(name, cls=_Command, rich_help_panel=panel)(run)

    return decorate
