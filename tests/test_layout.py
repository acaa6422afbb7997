"""The package's layout: data flows one way (files -> data -> models/losses -> embed -> a mode -> CLI)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "facecli"
# each part of the package may import only parts of a lower rank (and itself)
RANK = {
    "facecli": 0, "errors": 0, "console": 0, "lazy_api": 0, "numbers": 1, "workdir": 1,
    "fileio": 1, "registry": 1, "runtime": 1, "writer_lock": 1,
    "data": 2, "plots": 2,
    "models": 3, "align": 3,
    "losses": 4, "checkpoint": 4,
    "importer": 5, "embed": 5,
    "training": 6, "verification": 6, "identification": 6, "exporting": 6, "photos": 6,
    "cleaning": 7, "serving": 7,
    "cli": 8,
    "__main__": 9,
}  # fmt: skip
# validation during training, and an int8 export's check on the user's pairs, are scored as `facecli eval` scores
ALSO_ALLOWED = {("training", "verification"), ("exporting", "verification")}
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")  # __init__ only names the API


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name == "facecli" or name.startswith("facecli."):
                parts.add(name.split(".")[1] if "." in name else "facecli")
    return parts


def test_every_part_has_a_rank():
    assert {_part(p) for p in MODULES} <= set(RANK)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(module):
    part = _part(module)
    wrong = sorted(
        other
        for other in _imported_parts(module)
        if other != part and RANK[other] >= RANK[part] and (part, other) not in ALSO_ALLOWED
    )
    assert not wrong, f"{module.relative_to(PACKAGE)} (rank {RANK[part]}) imports {wrong}"


def test_no_module_is_too_long():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 450}
    cli = {
        str(p.relative_to(PACKAGE)): n
        for p in (PACKAGE / "cli").glob("*.py")
        if len(p.read_text().splitlines()) > 300
        for n in [len(p.read_text().splitlines())]
    }
    assert not long and not cli, (long, cli)


FUNCTION_LIMIT = 90  # lines; a module limit alone can be met by moving code around one growing function


def test_no_function_is_too_long():
    long = {
        f"{path.relative_to(PACKAGE)}:{node.name}": length
        for path in MODULES
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := node.end_lineno - node.lineno + 1) > FUNCTION_LIMIT
    }
    assert not long, long
