#!/usr/bin/env bash
# Validates docker-compose.yml with Debian's docker-compose (no Docker daemon needed): well formed with its
# required variables set, and refusing to start without SECRET_KEY or ADMIN_PASSWORD.
set -euo pipefail
cd "$(dirname "$0")/.."
compose_file="${1:-docker-compose.yml}"
# An empty env file: a developer's .env must not supply what the check leaves out.
empty_env="$(mktemp)"
trap 'rm -f "$empty_env"' EXIT
compose_config() { docker-compose --env-file "$empty_env" -f "$compose_file" config -q; }

(export SECRET_KEY=compose-check ADMIN_PASSWORD=compose-check; compose_config)
for missing in SECRET_KEY ADMIN_PASSWORD; do
    if (export SECRET_KEY=compose-check ADMIN_PASSWORD=compose-check; unset "$missing"; compose_config) 2>/dev/null
    then
        echo "$compose_file must refuse to start without $missing" >&2
        exit 1
    fi
done
# Published ports listen on 127.0.0.1 unless BIND_ADDRESS says otherwise.
(export SECRET_KEY=compose-check ADMIN_PASSWORD=compose-check
 docker-compose --env-file "$empty_env" -f "$compose_file" config) | python3 -c '
import sys, yaml
config = yaml.safe_load(sys.stdin)
for name, service in config["services"].items():
    for port in service.get("ports", []):
        host_ip = port.get("host_ip", "") if isinstance(port, dict) else (str(port).split(":")[0] if str(port).count(":") == 2 else "")
        if host_ip != "127.0.0.1":
            sys.exit(f"service {name} publishes {port} beyond 127.0.0.1 by default")
'
echo "$compose_file: valid; ports on 127.0.0.1; refuses to start without SECRET_KEY or ADMIN_PASSWORD"
