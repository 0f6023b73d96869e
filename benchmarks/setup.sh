#!/usr/bin/env bash
# What the throughput benchmark's baselines need beyond the project's own requirements: rabbitmq-c
# (Debian's librabbitmq-dev) for the C publisher, built here into benchmarks/.build/. pika comes with
# the development lock (requirements/dev.txt, scripts/install.sh).
# Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! dpkg -s librabbitmq-dev >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq librabbitmq-dev gcc >/dev/null
fi
mkdir -p benchmarks/.build
if [ ! -x benchmarks/.build/c_publisher ] || [ benchmarks/c_publisher.c -nt benchmarks/.build/c_publisher ]; then
    gcc -O2 -Wall -o benchmarks/.build/c_publisher benchmarks/c_publisher.c -lrabbitmq
fi
echo "benchmark baselines ready: benchmarks/.build/c_publisher"
