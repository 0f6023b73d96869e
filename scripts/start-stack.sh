#!/usr/bin/env bash
# Starts the running parts of mikkoo-relay in the background on this machine:
# pgqd (ticks the source databases' queues), the Celery worker with its beat
# scheduler (relays every enabled queue), and the admin web server (gunicorn).
# Logs and pid files go to .run/. Stop them with scripts/stop-stack.sh.
#
#   SOURCE_DATABASES  databases pgqd ticks, comma-separated (default: mikkoo_demo)
#   PGQD_CONNSTR      libpq connection string pgqd uses (default: host=127.0.0.1 user=postgres)
#   WEB_BIND          where the admin listens (default: 127.0.0.1:8000)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
SOURCE_DATABASES="${SOURCE_DATABASES:-mikkoo_demo}"
first_database="${SOURCE_DATABASES%%,*}"

cat > .run/pgqd.ini <<INI
[pgqd]
base_connstr = ${PGQD_CONNSTR:-host=127.0.0.1 user=postgres}
initial_database = ${first_database}
database_list = ${SOURCE_DATABASES}
logfile = $(pwd)/.run/pgqd.log
pidfile = $(pwd)/.run/pgqd.pid
INI
if ! { [ -f .run/pgqd.pid ] && kill -0 "$(cat .run/pgqd.pid)" 2>/dev/null; }; then
    pgqd -d .run/pgqd.ini
fi

if ! { [ -f .run/worker.pid ] && kill -0 "$(cat .run/worker.pid)" 2>/dev/null; }; then
    .venv/bin/celery -A mikkoo_project worker -B --loglevel INFO --detach \
        --pidfile "$(pwd)/.run/worker.pid" --logfile "$(pwd)/.run/worker.log" \
        --schedule "$(pwd)/.run/celerybeat-schedule"
fi

.venv/bin/python manage.py collectstatic --no-input -v 0
if ! { [ -f .run/web.pid ] && kill -0 "$(cat .run/web.pid)" 2>/dev/null; }; then
    .venv/bin/gunicorn mikkoo_project.wsgi --bind "${WEB_BIND:-127.0.0.1:8000}" --workers 2 --daemon \
        --pid .run/web.pid --access-logfile .run/web-access.log --error-logfile .run/web.log
fi
echo "running: pgqd (.run/pgqd.log), worker with beat (.run/worker.log), admin on http://${WEB_BIND:-127.0.0.1:8000}/admin/"
