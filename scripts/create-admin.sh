#!/usr/bin/env bash
# Creates the admin's user (`admin`, or ADMIN_USER) in Django's database (DATABASE_URL, or .env):
# with ADMIN_PASSWORD when it is set (an existing user's password is reset to it), else, for a new
# user, a generated password, printed. An existing user without ADMIN_PASSWORD keeps their password.
# scripts/setup-demo.sh runs it; run it again to reset a forgotten password:
#
#   ADMIN_PASSWORD='a password of your own' bash scripts/create-admin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ -n "${ADMIN_PASSWORD:-}" ]; then
    # On standard input, not the command line: other users of the machine see command lines.
    printf '%s\n' "$ADMIN_PASSWORD" | "$PYTHON" manage.py ensure_admin --username "${ADMIN_USER:-admin}" --password-stdin
else
    "$PYTHON" manage.py ensure_admin --username "${ADMIN_USER:-admin}"
fi
