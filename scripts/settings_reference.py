"""The settings reference of docs/configuration.md, generated from mikkoo_project/relay_settings.py.

    .venv/bin/python scripts/settings_reference.py          # rewrites the tables in docs/configuration.md
    .venv/bin/python scripts/settings_reference.py --check  # exits 1 when the page differs from the declaration

Each group of settings has its table between two marks in the page; the text around them is the page's own.
tests/test_settings_reference.py makes the same comparison, so a setting changed in one place only fails it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, from anywhere
from mikkoo_project.relay_settings import GROUPS, SETTINGS, Setting  # noqa: E402

PAGE = ROOT / "docs" / "configuration.md"
BLOCK = re.compile(r"^<!-- settings (?P<group>\w+): generated .*?-->\n.*?^<!-- end of settings (?P=group) -->$",
                   re.M | re.S)


def begin_mark(group: str) -> str:
    source = "mikkoo_project/relay_settings.py by scripts/settings_reference.py"
    return f"<!-- settings {group}: generated from {source} -->"


def end_mark(group: str) -> str:
    return f"<!-- end of settings {group} -->"


def shown_default(setting: Setting) -> str:
    """The default as the reference shows it: as the environment would spell it.

    >>> shown_default(Setting("X", "float", 2.0, "", "worker")), shown_default(Setting("X", "bool", True, "", "worker"))
    ('`2`', '`true`')
    >>> shown_default(Setting("X", "list", ("localhost", "127.0.0.1"), "", "django"))
    '`localhost,127.0.0.1`'
    """
    value = setting.default
    if setting.shown_default:
        return setting.shown_default
    if value is None or value == "" or value == ():
        return "none"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`"
    return f"`{value}`"


def table(group: str) -> str:
    """The group's heading and its settings as a Markdown table, in the order they are declared, between marks."""
    rows = [begin_mark(group), f"### {GROUPS[group]}", "", "| variable | meaning | default |", "|---|---|---|"]
    for setting in SETTINGS:
        if setting.group == group:
            if "|" in setting.meaning:
                raise ValueError(f"{setting.name}: a meaning cannot hold '|' (it would split the table's row)")
            rows.append(f"| `{setting.name}` | {setting.meaning} | {shown_default(setting)} |")
    rows.append(end_mark(group))
    return "\n".join(rows)


def with_tables(page: str) -> str:
    """The page with every group's table as the declaration has it; each group's marks must be there once."""
    groups = [match.group("group") for match in BLOCK.finditer(page)]
    if sorted(groups) != sorted(GROUPS):
        raise ValueError(f"{PAGE.name} must hold the marks of each group of settings once: {', '.join(GROUPS)} "
                         f"(it has {', '.join(groups) or 'none'})")
    return BLOCK.sub(lambda match: table(match.group("group")), page)


def main(argv: list[str]) -> int:
    page = PAGE.read_text()
    generated = with_tables(page)
    if "--check" in argv:
        if generated != page:
            print(f"{PAGE.relative_to(ROOT)} differs from mikkoo_project/relay_settings.py: "
                  "run python scripts/settings_reference.py", file=sys.stderr)
            return 1
        return 0
    if generated != page:
        PAGE.write_text(generated)
        print(f"{PAGE.relative_to(ROOT)}: settings tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
