# The mikkoo-relay image: the admin web server by default; the Celery worker and beat are the same image with
# their own command and health check (docker-compose.yml). It holds the locked runtime requirements
# (requirements/runtime.txt) and this checkout's wheel, nothing of the development tools, and runs as the
# unprivileged user relay.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# The locks alone first: these layers are rebuilt only when a lock changes, not with every change of code.
COPY requirements/runtime.txt requirements/build.txt requirements/
RUN python -m venv /opt/mikkoo-relay \
    && /opt/mikkoo-relay/bin/pip install --require-hashes -r requirements/runtime.txt \
    && python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes -r requirements/build.txt
# What the wheel is made of; relay/sql is a link into sql/.
COPY pyproject.toml README.md LICENSE ./
COPY sql sql
COPY mikkoo_project mikkoo_project
COPY relay relay
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/mikkoo-relay/bin/pip install --no-deps --no-index /wheels/mikkoo_relay-*.whl

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/mikkoo-relay/bin:$PATH \
    DJANGO_SETTINGS_MODULE=mikkoo_project.settings \
    STATIC_ROOT=/opt/mikkoo-relay/static
# psql and pg_isready, for installing the audit SQL by hand and for scripts around the relay.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /app relay
COPY --from=build /opt/mikkoo-relay /opt/mikkoo-relay
# The admin's static files, served by whitenoise: collected at build time, read-only for the relay.
RUN SECRET_KEY=build-only django-admin collectstatic --no-input -v 0
# The working directory holds what the relay writes when nothing says otherwise: a SQLite database, .env.
WORKDIR /app
USER relay
EXPOSE 8000
# Is the web server alive (GET /health/live)? Python's urllib asks, as the image has no curl. The request goes
# to 127.0.0.1, which ALLOWED_HOSTS must keep (its default does; docker-compose.yml adds it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]
CMD ["gunicorn", "mikkoo_project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
