#!/usr/bin/env bash
# Stops what scripts/start-stack.sh started. The worker gets a warm shutdown
# (SIGTERM): the batch in hand finishes or is left for PgQ to hand out again.
set -uo pipefail
cd "$(dirname "$0")/.."
for name in web worker pgqd; do
    if [ -f ".run/$name.pid" ] && kill -0 "$(cat ".run/$name.pid")" 2>/dev/null; then
        kill -TERM "$(cat ".run/$name.pid")" && echo "stopping $name"
    fi
done
