"""Django settings for mikkoo-relay: the only module that reads the environment.

Every value comes from an environment variable (or a ``.env`` file beside
``manage.py``, or in the working directory when the relay is installed as a
package), read by ``from_env`` as ``relay_settings.py`` declares it: its type,
its default and its meaning, which docs/configuration.md and ``.env.example`` show.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from mikkoo_project import relay_settings

# A checkout keeps its .env, SQLite database, static files and beat schedule beside manage.py. Installed as a
# package the relay keeps them in the directory it runs in: site-packages is no place for them.
CHECKOUT_DIR = Path(__file__).resolve().parent.parent
BASE_DIR = CHECKOUT_DIR if (CHECKOUT_DIR / "manage.py").is_file() else Path.cwd()

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def from_env(name: str) -> Any:
    """The setting ``name`` from the environment, read by django-environ as declared, or its declared default."""
    declared = relay_settings.DECLARED[name]
    return getattr(env, declared.kind)(name, default=declared.default_in(BASE_DIR))


DEBUG = from_env("DEBUG")
SECRET_KEY = from_env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key"  # only ever used with DEBUG on
# Earlier secret keys: sessions signed and secrets encrypted with them still open (rotate without losing them).
SECRET_KEY_FALLBACKS = from_env("SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = from_env("ALLOWED_HOSTS")

# Passwords and URLs of connections and queues are stored encrypted (django-fernet-encrypted-fields):
# the key is derived from SECRET_KEY (and SECRET_KEY_FALLBACKS) with SALT_KEY; a list rotates salts,
# the first one encrypting. Changing either without keeping the old one as a fallback makes them unreadable.
SALT_KEY = from_env("SALT_KEY")
# A connection's password or URL field may say env:NAME: it is read from this environment when used.
# The relay's own secrets cannot be referred to that way (an admin could send them to a server of theirs).
RELAY_SECRETS_ENVIRON = env.ENVIRON
RELAY_SECRET_ENV_DENY = frozenset({
    "SECRET_KEY", "SECRET_KEY_FALLBACKS", "SALT_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "SENTRY_DSN",
    "RELAY_HEALTH_TOKEN", "RELAY_METRICS_TOKEN", "ADMIN_PASSWORD", "DJANGO_SUPERUSER_PASSWORD",
    *from_env("RELAY_SECRET_ENV_DENY"),
})

# HTTPS in production (manage.py check --deploy): see the production section of .env.example.
SECURE_SSL_REDIRECT = from_env("SECURE_SSL_REDIRECT")
# Health probes speak plain HTTP to the backend (a load balancer's, the image's HEALTHCHECK on /health/live):
# nothing under /health/ is redirected.
SECURE_REDIRECT_EXEMPT = from_env("SECURE_REDIRECT_EXEMPT")
SESSION_COOKIE_SECURE = from_env("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = from_env("CSRF_COOKIE_SECURE")
SECURE_HSTS_SECONDS = from_env("SECURE_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = from_env("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = from_env("SECURE_HSTS_PRELOAD")
CSRF_TRUSTED_ORIGINS = from_env("CSRF_TRUSTED_ORIGINS")
# Behind a proxy that terminates TLS: the header it sets and the value meaning HTTPS, e.g.
# HTTP_X_FORWARDED_PROTO,https. Only set it when the proxy always sets (and overwrites) that header.
SECURE_PROXY_SSL_HEADER = from_env("SECURE_PROXY_SSL_HEADER")
if SECURE_PROXY_SSL_HEADER is not None and len(SECURE_PROXY_SSL_HEADER) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be a header and a value: HTTP_X_FORWARDED_PROTO,https")

INSTALLED_APPS = [
    "mikkoo_project.apps.RelayAdminConfig",  # django.contrib.admin, its site named after the relay
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "relay",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mikkoo_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mikkoo_project.wsgi.application"

DATABASES = {
    "default": from_env("DATABASE_URL"),
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The worker's processes and the web app write queue status at once: with a write-ahead log
    # readers never wait for a writer, a commit needs no fsync, and a writer waits its turn.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    })
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": from_env("CACHE_URL")}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = from_env("STATIC_ROOT")

AUDIT_STUCK_AFTER = from_env("AUDIT_STUCK_AFTER")

CELERY_BROKER_URL = from_env("CELERY_BROKER_URL")
CELERY_TASK_DEFAULT_QUEUE = from_env("CELERY_TASK_DEFAULT_QUEUE")
CELERY_TASK_ACKS_LATE = True
# A pool process killed in the middle of a slice (OOM killer, SIGKILL) gives its task message back to
# the broker instead of acking it: the queue's "a task is queued" mark must stay true.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = from_env("CELERY_BEAT_SCHEDULE_FILENAME")

# How the worker relays (relay.scheduling; docs/operations/running.md): watchers, the sweep, slices, leases.
RELAY_WAKEUPS = from_env("RELAY_WAKEUPS")
RELAY_WATCH_SECONDS = from_env("RELAY_WATCH_SECONDS")
RELAY_WATCH_STANDBY_SECONDS = from_env("RELAY_WATCH_STANDBY_SECONDS")
RELAY_NOTIFY = from_env("RELAY_NOTIFY")
RELAY_WORKER_SEEN_SECONDS = from_env("RELAY_WORKER_SEEN_SECONDS")
RELAY_WAKEUP_REFRESH_SECONDS = from_env("RELAY_WAKEUP_REFRESH_SECONDS")
RELAY_SWEEP_SECONDS = from_env("RELAY_SWEEP_SECONDS")
RELAY_SLICE_SECONDS = from_env("RELAY_SLICE_SECONDS")
RELAY_LEASE_SECONDS = from_env("RELAY_LEASE_SECONDS")
RELAY_QUEUED_TASK_STALE_SECONDS = from_env("RELAY_QUEUED_TASK_STALE_SECONDS")
RELAY_IDLE_CONNECTION_SECONDS = from_env("RELAY_IDLE_CONNECTION_SECONDS")
RELAY_TASK_SOFT_TIME_LIMIT = from_env("RELAY_TASK_SOFT_TIME_LIMIT")
# The queue overview's charts (relay.scheduling.samples, one query per source database).
RELAY_SAMPLE_SECONDS = from_env("RELAY_SAMPLE_SECONDS")
RELAY_SAMPLE_KEEP_HOURS = from_env("RELAY_SAMPLE_KEEP_HOURS")
CELERY_BEAT_SCHEDULE = {
    # A sweep not started before the next one is due has nothing left to do.
    "relay-sweep": {"task": "relay.sweep", "schedule": RELAY_SWEEP_SECONDS,
                    "options": {"expires": RELAY_SWEEP_SECONDS}},
    # Likewise a sample: the next one is as good.
    "relay-samples": {"task": "relay.record_samples", "schedule": RELAY_SAMPLE_SECONDS,
                      "options": {"expires": RELAY_SAMPLE_SECONDS}},
}

# LOG_FORMAT=json writes one JSON object per line (relay.ops.logformat), with the batch fields as keys.
LOG_FORMAT = from_env("LOG_FORMAT")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
# An idle worker says next to nothing at INFO: Celery's own lines about the relay's routine tasks (beat's
# "Sending due task", "received", "succeeded") and the engine's line for a batch without events are kept
# for DEBUG (relay.ops.logfilters). Each batch, error, backoff, start and stop stays one line at INFO.
RELAY_ROUTINE_TASKS = ["relay.sweep", "relay.relay_slice", "relay.record_samples"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "relay.ops.logformat.JsonFormatter"}},
    "filters": {"routine_tasks": {"()": "relay.ops.logfilters.RoutineTaskLines", "tasks": RELAY_ROUTINE_TASKS},
                "empty_batches": {"()": "relay.ops.logfilters.EmptyBatchLines"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    # On the loggers that write those lines: Celery's worker replaces the root logger's handlers, not these.
    "loggers": {
        "celery.beat": {"filters": ["routine_tasks"]},
        "celery.worker.strategy": {"filters": ["routine_tasks"]},
        "celery.app.trace": {"filters": ["routine_tasks"]},
        "relay.engine.amqp_target": {"filters": ["empty_batches"]},
    },
    "root": {"handlers": ["console"], "level": from_env("LOG_LEVEL")},
}

# Health (/health/ and manage.py relay_health).
RELAY_HEALTH_MAX_LAG_SECONDS = from_env("RELAY_HEALTH_MAX_LAG_SECONDS")
RELAY_HEALTH_MAX_TICK_AGE_SECONDS = from_env("RELAY_HEALTH_MAX_TICK_AGE_SECONDS")
RELAY_HEALTH_TIMEOUT_SECONDS = from_env("RELAY_HEALTH_TIMEOUT_SECONDS")
# The checks run concurrently and their results are cached, so a load balancer polling /health/ costs the
# sources nothing more.
RELAY_HEALTH_DEADLINE_SECONDS = from_env("RELAY_HEALTH_DEADLINE_SECONDS")
RELAY_HEALTH_CACHE_SECONDS = from_env("RELAY_HEALTH_CACHE_SECONDS")
RELAY_HEALTH_TOKEN = from_env("RELAY_HEALTH_TOKEN")
RELAY_METRICS_TOKEN = from_env("RELAY_METRICS_TOKEN")

# Prometheus (/metrics).
PROMETHEUS_MULTIPROC_DIR = from_env("PROMETHEUS_MULTIPROC_DIR")
RELAY_METRICS_PGQ_TIMEOUT_SECONDS = from_env("RELAY_METRICS_PGQ_TIMEOUT_SECONDS")

# import_mikkoo and import_queue_splitter.
RELAY_IMPORT_MAX_BYTES = from_env("RELAY_IMPORT_MAX_BYTES")
RELAY_IMPORT_MAX_NODES = from_env("RELAY_IMPORT_MAX_NODES")

# statsd (mikkoo's Application/statsd).
STATSD_HOST = from_env("STATSD_HOST")
STATSD_PORT = from_env("STATSD_PORT")
STATSD_PREFIX = from_env("STATSD_PREFIX")

# Sentry (mikkoo's Application/sentry_dsn): errors of the web app and the worker, when SENTRY_DSN is set.
SENTRY_DSN = from_env("SENTRY_DSN")
if SENTRY_DSN:
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError:
        raise ImproperlyConfigured("SENTRY_DSN is set but sentry-sdk is not installed: pip install sentry-sdk") \
            from None
    sentry_sdk.init(dsn=SENTRY_DSN, integrations=[DjangoIntegration(), CeleryIntegration()],
                    environment=from_env("SENTRY_ENVIRONMENT"),
                    # A traceback's local variables hold connection strings and passwords: never sent.
                    send_default_pii=False, include_local_variables=False)
