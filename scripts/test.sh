#!/usr/bin/env bash
# Runs every check of mikkoo-relay against the PostgreSQL and RabbitMQ on this
# machine: lint, types, migrations in sync, the documentation site, and the test suite. Installs what is missing
# first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --with-browser
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key}"
.venv/bin/ruff check .
.venv/bin/lint-imports  # the subpackages' import contracts (.importlinter)
.venv/bin/mypy  # types, strict for the core, the engine and its clients (pyproject.toml [tool.mypy])
.venv/bin/python manage.py makemigrations --check --dry-run
bash scripts/check-compose.sh
# The documentation site (mkdocs.yml, docs/): a broken link or anchor, or a page left out of the nav, fails the
# build. Not --quiet: it hides the warnings that --strict counts, and the build then passes.
site_dir="$(mktemp -d)"
trap 'rm -rf "$site_dir"' EXIT
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site_dir"
# The doctests on their own: collecting relay/ imports every module, which must not wire what the app lacks.
.venv/bin/pytest -q --doctest-modules relay
.venv/bin/pytest "$@"
