"""Every setting is declared once (mikkoo_project/relay_settings.py): settings.py, the docs, .env.example follow it."""
from __future__ import annotations

import doctest
import importlib.util
import os
import re
from pathlib import Path

import environ
import pytest

from mikkoo_project import relay_settings
from mikkoo_project.relay_settings import BASE_DIR_MARK, DECLARED, SETTINGS, Setting

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"


def settings_reference():
    """scripts/settings_reference.py, which writes the page's tables (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("settings_reference", ROOT / "scripts" / "settings_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def env_example_lines() -> list[tuple[bool, str, str]]:
    """(commented out, name, value) of every ``NAME=value`` line of .env.example."""
    text = (ROOT / ".env.example").read_text()
    return [(bool(match.group(1)), match.group(2), match.group(3))
            for match in re.finditer(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$", text, re.M)]


def read(setting: Setting, value: str):
    """``value`` as settings.py would read it from the environment: through the setting's django-environ reader."""
    reader = environ.Env()
    reader.ENVIRON = {setting.name: value}
    return getattr(reader, setting.kind)(setting.name)


def test_the_configuration_page_shows_the_declared_settings():
    page = PAGE.read_text()

    assert settings_reference().with_tables(page) == page, (
        "docs/configuration.md differs from mikkoo_project/relay_settings.py: run python scripts/settings_reference.py")
    for setting in SETTINGS:
        assert page.count(f"| `{setting.name}` |") == 1, setting.name


def test_a_default_changed_on_the_page_alone_is_caught():
    page = PAGE.read_text()
    edited = page.replace("| `RELAY_WATCH_SECONDS` |", "| `RELAY_WATCH_SECONDS` | (edited by hand) |")

    assert settings_reference().with_tables(edited) == page


def test_env_example_lists_exactly_the_declared_settings():
    listed = {name for _, name, _ in env_example_lines()}

    assert listed - set(DECLARED) == set(), "in .env.example but not declared in mikkoo_project/relay_settings.py"
    assert set(DECLARED) - listed == set(), "declared in mikkoo_project/relay_settings.py but not in .env.example"


@pytest.mark.parametrize("name, value", [(name, value) for commented, name, value in env_example_lines()
                                         if not commented])
def test_a_value_env_example_sets_is_the_declared_default(name, value):
    setting = DECLARED[name]
    if isinstance(setting.default, str) and BASE_DIR_MARK in setting.default:
        # A file in the relay's directory: .env.example names it relative to where the relay runs.
        default = read(setting, setting.default.replace(f"{BASE_DIR_MARK}/", ""))
    else:
        default = setting.default_in(ROOT)

    assert read(setting, value) == default


def test_settings_py_reads_each_declared_setting_once_and_nothing_else():
    source = (ROOT / "mikkoo_project" / "settings.py").read_text()

    assert sorted(re.findall(r'from_env\("(\w+)"\)', source)) == sorted(DECLARED)
    # A direct django-environ read would bypass the declaration (env.ENVIRON, the environment itself, is no read).
    assert not re.findall(r"\benv(?:\.(?!ENVIRON\b)\w+)?\(", source)


def test_django_has_the_declared_default_of_each_setting_left_unset(settings):
    # ALLOWED_HOSTS gains "testserver" in tests; RELAY_SECRET_ENV_DENY adds the relay's own secrets to the list.
    skipped = {"ALLOWED_HOSTS", "RELAY_SECRET_ENV_DENY"}
    checked = [setting for setting in SETTINGS if setting.name not in os.environ and setting.name not in skipped
               and setting.kind in ("bool", "int", "float", "str", "list") and hasattr(settings, setting.name)]

    assert len(checked) > 30
    for setting in checked:
        assert getattr(settings, setting.name) == setting.default_in(settings.BASE_DIR), setting.name


def test_the_declaration_refuses_an_unknown_reader_or_group():
    with pytest.raises(ValueError, match="kind 'json'"):
        Setting("RELAY_X", "json", {}, "", "worker")
    with pytest.raises(ValueError, match="group 'misc'"):
        Setting("RELAY_X", "str", "", "", "misc")


def test_the_doctests_of_the_declaration_and_the_generator():
    for module in (relay_settings, settings_reference()):
        assert doctest.testmod(module).failed == 0, module.__name__
