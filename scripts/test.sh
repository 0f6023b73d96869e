#!/usr/bin/env bash
# Runs every check of mikkoo-relay against the PostgreSQL and RabbitMQ on this
# machine: lint, types, migrations in sync, and the test suite. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --with-browser
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key}"
.venv/bin/ruff check .
.venv/bin/lint-imports  # the subpackages' import contracts (.importlinter)
.venv/bin/mypy  # types, strict for the core, the engine and its clients (pyproject.toml [tool.mypy])
.venv/bin/python manage.py makemigrations --check --dry-run
bash scripts/check-compose.sh
# The doctests on their own: collecting relay/ imports every module, which must not wire what the app lacks.
.venv/bin/pytest -q --doctest-modules relay
.venv/bin/pytest "$@"
