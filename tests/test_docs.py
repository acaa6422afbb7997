"""The README is a front door (short, every command in its table) and every link in it and in docs/ resolves."""

import re
from pathlib import Path

import pytest
import typer

from facecli.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 250  # lines


def test_the_readme_is_short_and_keeps_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_LIMIT
    assert "make demo" in text and "make test" in text


def test_the_readme_table_names_every_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `facecli ([a-z-]+)`", text, re.M))
    listed |= set(re.findall(r"^\| `facecli [a-z-]+` / `([a-z-]+)`", text, re.M))
    assert listed == set(typer.main.get_command(app).commands)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    text = page.read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    missing = [t for t in targets if t and not (page.parent / t).exists()]
    assert not missing
