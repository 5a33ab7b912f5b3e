"""The README's limits table gives every schema and request limit its true value."""

from __future__ import annotations

from pathlib import Path

from serve.schemas import ApiLimits
from shared.models.alerts import SchemaLimits

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- limits-table: start -->", "<!-- limits-table: end -->"


def documented() -> dict[str, str]:
    """``Class.NAME`` -> value cell, from the README's table."""
    text = README.read_text()
    table = text[text.index(START) + len(START) : text.index(END)]
    rows: dict[str, str] = {}
    for line in table.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1].strip("`")
    return rows


def limits() -> dict[str, str]:
    """Every limit the code defines, as the table writes it."""
    return {
        f"{owner.__name__}.{name}": str(value)
        for owner in (SchemaLimits, ApiLimits)
        for name, value in vars(owner).items()
        if name.isupper()
    }


def test_the_readme_lists_every_limit_with_its_value_and_nothing_else() -> None:
    assert documented() == limits()
