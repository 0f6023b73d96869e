#!/usr/bin/env bash
# Sets mikkoo-relay up on this machine and brings up a working stack:
# dependencies, the Django database, an admin user, a source database
# `mikkoo_demo` with PgQ, the demo queue from demo/mikkoo.yml, an exchange `demo`
# bound to a queue `demo-events`, three events written by demo/publish_events.py and relayed once with relay_once,
# then pgqd, the worker with beat and the admin web server (scripts/start-stack.sh). The admin user's
# password is ADMIN_PASSWORD when set, else generated and printed at the end (scripts/create-admin.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The demo keeps a generated SECRET_KEY in .env; production sets its own (see .env.example).
if [ ! -f .env ]; then
    printf 'SECRET_KEY=%s\nDEBUG=false\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
fi
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)

.venv/bin/python manage.py migrate --no-input -v 0
"${PSQL[@]}" -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'mikkoo_demo'" | grep -q 1 \
    || "${PSQL[@]}" -d postgres -c "CREATE DATABASE mikkoo_demo"
"${PSQL[@]}" -d mikkoo_demo -c "CREATE EXTENSION IF NOT EXISTS pgq"
.venv/bin/python manage.py import_mikkoo demo/mikkoo.yml
.venv/bin/python - <<'PY'
from kombu import Connection
with Connection("amqp://guest:guest@127.0.0.1:5672//") as conn:
    channel = conn.channel()
    channel.exchange_declare("demo", "topic", durable=True, auto_delete=False)
    channel.queue_declare("demo-events", durable=True, auto_delete=False)
    channel.queue_bind("demo-events", "demo", "#")
print("RabbitMQ: exchange demo -> queue demo-events")
PY
# The first run creates the PgQ queue and registers the consumer; events written after it are relayed.
.venv/bin/python manage.py relay_once demo
# Written as an application writes them: relay.producer.publish_many, in one transaction.
.venv/bin/python demo/publish_events.py --count 3
"${PSQL[@]}" -d mikkoo_demo -c "SELECT pgq.force_tick('demo')" -o /dev/null
"${PSQL[@]}" -d mikkoo_demo -c "SELECT pgq.ticker('demo')" -o /dev/null
.venv/bin/python manage.py relay_once demo
# The admin user: ADMIN_PASSWORD when set, else a generated password (said again at the end, where it is seen).
admin_user="$(bash scripts/create-admin.sh)"
echo "$admin_user"
bash scripts/start-stack.sh
echo "Done: the three demo events are in the RabbitMQ queue demo-events; events written to the PgQ queue"
echo "demo from now on are relayed by the worker within a fraction of a second."
echo "The admin: http://${WEB_BIND:-127.0.0.1:8000}/admin/ ($admin_user)"
