"""The README's module table (Development) names each module of the package once, so a
newcomer can trust it as a map."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_module_table_names_every_module_once() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if re.match(r"^\| `[a-z_]+\.py`", line)]
    named = Counter(name for row in rows for name in re.findall(r"`([a-z_]+\.py)`",
                                                                row.split("|")[1]))
    modules = {p.name for p in (ROOT / "pytest_schemasync").glob("*.py")}
    assert set(named) == modules, (f"missing: {sorted(modules - set(named))}, "
                                   f"no such module: {sorted(set(named) - modules)}")
    assert [name for name, count in named.items() if count > 1] == []
