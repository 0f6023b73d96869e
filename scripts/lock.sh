#!/usr/bin/env bash
# Renews the locks in requirements/ with pip-tools' pip-compile, every file's hash included: build.txt (the
# wheel's build backend, pyproject.toml's build-system), runtime.txt (pyproject.toml's dependencies: what the
# image installs) and dev.txt (those and requirements/dev.in: what scripts/install.sh puts in .venv).
# Run it after changing either list; pass --upgrade, or --upgrade-package NAME, to take newer releases.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh"
compile() {
    .venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
        --no-emit-find-links "$@"
}
compile --all-build-deps --only-build-deps --output-file requirements/build.txt "${@}" pyproject.toml
compile --output-file requirements/runtime.txt "${@}" pyproject.toml
compile --output-file requirements/dev.txt "${@}" pyproject.toml requirements/dev.in
