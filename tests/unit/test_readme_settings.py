"""The README's settings table lists every setting with its true default."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- settings-table: start -->", "<!-- settings-table: end -->"


def documented() -> dict[str, str]:
    """Variable name -> default cell, from the README's table."""
    text = README.read_text()
    table = text[text.index(START) + len(START) : text.index(END)]
    rows: dict[str, str] = {}
    for line in table.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    return rows


def test_the_readme_table_lists_every_setting_and_nothing_else() -> None:
    variables = {f"WATCHWORD_{name.upper()}" for name in Settings.model_fields}
    assert set(documented()) == variables


def test_the_readme_table_gives_each_settings_default() -> None:
    rows = documented()
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else str(field.default)
        cell = rows[f"WATCHWORD_{name.upper()}"]
        assert cell.startswith(f"`{default}`"), (name, cell)
