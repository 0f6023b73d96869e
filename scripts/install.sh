#!/usr/bin/env bash
# Installs what mikkoo-relay needs on a Debian/Ubuntu machine that already runs
# PostgreSQL and RabbitMQ: the PgQ extension, pgqd and (for the browser test)
# Chromium from apt, and the Python packages of requirements/dev.txt in .venv.
# Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_major() {
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header | awk 'NR==1 {print $1}'
    else
        ls /etc/postgresql | sort -n | tail -1
    fi
}

PG_MAJOR="${PG_MAJOR:-$(pg_major)}"
apt_packages=()
dpkg -s "postgresql-${PG_MAJOR}-pgq3" >/dev/null 2>&1 || apt_packages+=("postgresql-${PG_MAJOR}-pgq3")
dpkg -s pgqd >/dev/null 2>&1 || apt_packages+=(pgqd)
# Headless Chromium and its driver for the browser test of the admin (tests/test_audit_browser.py).
if [ "${1:-}" = "--with-browser" ]; then  # the tests drive the admin in headless Chromium
    dpkg -s chromium >/dev/null 2>&1 || apt_packages+=(chromium)
    dpkg -s chromium-driver >/dev/null 2>&1 || apt_packages+=(chromium-driver)
    # Debian's docker-compose validates docker-compose.yml in scripts/test.sh (no Docker daemon needed).
    dpkg -s docker-compose >/dev/null 2>&1 || apt_packages+=(docker-compose)
fi
python3 -m venv --help >/dev/null 2>&1 || apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
    echo "installing ${apt_packages[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# The services run before us; start them if they stopped (a restart test may have been interrupted).
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    as_root rabbitmq-server -detached
    for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# The development lock: the runtime's packages, the tests' and the tools', each with its hashes. Installed
# again only when it changed.
if ! cmp -s requirements/dev.txt .venv/.requirements-dev.installed; then
    .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
    cp requirements/dev.txt .venv/.requirements-dev.installed
fi
echo "mikkoo-relay dependencies are installed (PostgreSQL ${PG_MAJOR} with PgQ, pgqd, .venv)"
