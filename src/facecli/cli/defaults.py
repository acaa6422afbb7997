"""The library's defaults for the CLI's help, read from the library's source: each default is written once,
in the signature the option feeds, and showing it in `--help` does not import PyTorch."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


@functools.cache
def library_defaults(module: str, name: str) -> dict[str, str]:
    """The keyword defaults of function or dataclass `name` in `module` (as 'data/annotation'), as text."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name), None)
    if node is None:
        raise LookupError(f"facecli/{module}.py defines no function or class {name}")
    if isinstance(node, ast.ClassDef):
        fields = [s for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
        return {s.target.id: _shown(s.value, module) for s in fields if s.value is not None}  # type: ignore[union-attr]
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    pairs = [
        *zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True),
        *zip(args.kwonlyargs, args.kw_defaults, strict=True),
    ]
    return {arg.arg: _shown(default, module) for arg, default in pairs if default is not None}


@functools.cache
def library_constant(module: str, name: str) -> str:
    """The value of constant `name` in `module` (as 'embed/backends'), as text; a constant the module imports
    from another facecli module is read there."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("facecli."):
            source = node.module.removeprefix("facecli.").replace(".", "/")
            if any(a.name == name and a.asname is None for a in node.names) and (PACKAGE / f"{source}.py").is_file():
                return library_constant(source, name)
    assignments = [n for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign)]
    targets = {id(n): n.targets if isinstance(n, ast.Assign) else [n.target] for n in assignments}
    node = next(n for n in assignments if any(getattr(t, "id", None) == name for t in targets[id(n)]))
    return _shown(node.value)  # type: ignore[arg-type]


def _shown(node: ast.expr, module: str | None = None) -> str:
    """A default as text: a literal's value, a constant of `module` by its value, else the expression."""
    try:
        return str(ast.literal_eval(node))
    except ValueError:
        if isinstance(node, ast.Name) and module is not None:
            try:
                return library_constant(module, node.id)
            except StopIteration:  # not a constant of that module (imported, say)
                pass
        return ast.unparse(node)


def given(**options: object) -> dict[str, object]:
    """The options that were given (not None), to pass on so that the library's defaults apply to the rest."""
    return {name: value for name, value in options.items() if value is not None}


class Defaults:
    """Help texts ending with the defaults of one library function or dataclass."""

    def __init__(self, module: str, name: str) -> None:
        self.values = library_defaults(module, name)

    def __call__(self, text: str, option: str) -> str:
        return f"{text} (default: {self.values[option]})."
