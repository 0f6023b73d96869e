"""Django settings for mikkoo-relay: the only module that reads the environment.

Every value comes from an environment variable (or a ``.env`` file beside
``manage.py``, or in the working directory when the relay is installed as a
package); ``.env.example`` documents each one.
"""
from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# A checkout keeps its .env, SQLite database, static files and beat schedule beside manage.py. Installed as a
# package the relay keeps them in the directory it runs in: site-packages is no place for them.
CHECKOUT_DIR = Path(__file__).resolve().parent.parent
BASE_DIR = CHECKOUT_DIR if (CHECKOUT_DIR / "manage.py").is_file() else Path.cwd()

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key"  # only ever used with DEBUG on
# Earlier secret keys: sessions signed and secrets encrypted with them still open (rotate without losing them).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

# Passwords and URLs of connections and queues are stored encrypted (django-fernet-encrypted-fields):
# the key is derived from SECRET_KEY (and SECRET_KEY_FALLBACKS) with SALT_KEY; a list rotates salts,
# the first one encrypting. Changing either without keeping the old one as a fallback makes them unreadable.
SALT_KEY = env.list("SALT_KEY", default=["mikkoo-relay"])
# A connection's password or URL field may say env:NAME: it is read from this environment when used.
# The relay's own secrets cannot be referred to that way (an admin could send them to a server of theirs).
RELAY_SECRETS_ENVIRON = env.ENVIRON
RELAY_SECRET_ENV_DENY = frozenset({
    "SECRET_KEY", "SECRET_KEY_FALLBACKS", "SALT_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "SENTRY_DSN",
    "RELAY_HEALTH_TOKEN", "RELAY_METRICS_TOKEN", "ADMIN_PASSWORD", "DJANGO_SUPERUSER_PASSWORD",
    *env.list("RELAY_SECRET_ENV_DENY", default=[]),
})

# HTTPS in production (manage.py check --deploy): see the production section of .env.example.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Health probes speak plain HTTP to the backend (a load balancer's, the image's HEALTHCHECK on /health/live):
# nothing under /health/ is redirected.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^health/"])
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a proxy that terminates TLS: the header it sets and the value meaning HTTPS, e.g.
# HTTP_X_FORWARDED_PROTO,https. Only set it when the proxy always sets (and overwrites) that header.
SECURE_PROXY_SSL_HEADER = env.tuple("SECURE_PROXY_SSL_HEADER", default=None)
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
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
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

# Django's cache: /health/ keeps its checks here for RELAY_HEALTH_CACHE_SECONDS. Per process by default;
# e.g. CACHE_URL=redis://... shares them between the web server's processes.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "static")

# Seconds an audited event may stay outstanding (or events wait for a tick or a batch)
# before the audit status page calls its queue stuck.
AUDIT_STUCK_AFTER = env.int("AUDIT_STUCK_AFTER", default=300)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="mikkoo-relay")
CELERY_TASK_ACKS_LATE = True
# A pool process killed in the middle of a slice (OOM killer, SIGKILL) gives its task message back to
# the broker instead of acking it: the queue's "a task is queued" mark must stay true.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "celerybeat-schedule"))

# How the worker relays (relay.runs.scheduling). One watcher per source database, whatever the number
# of workers (RELAY_WAKEUPS), reads its queues' event sequences every RELAY_WATCH_SECONDS (one query
# for all of them) and wakes the worker; a standing-by worker takes over within
# RELAY_WATCH_STANDBY_SECONDS. RELAY_NOTIFY adds a NOTIFY trigger to the queues' event tables, which
# wakes it at commit but costs every producer's commit an instance-wide lock. Beat's sweep asks
# every source database which queues have work every RELAY_SWEEP_SECONDS. A queue is relayed in
# slices of about RELAY_SLICE_SECONDS, then queued again behind the others; a running slice counts
# as running for RELAY_LEASE_SECONDS unless it renews (so a killed worker's queues are taken over
# that much later); a task waiting in Celery's queue stops blocking new ones after
# RELAY_QUEUED_TASK_STALE_SECONDS; a stuck task is stopped after the time limit. Connections a
# worker process keeps are closed after RELAY_IDLE_CONNECTION_SECONDS unused.
RELAY_WAKEUPS = env.bool("RELAY_WAKEUPS", default=True)
RELAY_WATCH_SECONDS = env.float("RELAY_WATCH_SECONDS", default=0.05)
RELAY_WATCH_STANDBY_SECONDS = env.float("RELAY_WATCH_STANDBY_SECONDS", default=2.0)
RELAY_NOTIFY = env.bool("RELAY_NOTIFY", default=False)
# Each worker says it is alive every RELAY_WAKEUP_REFRESH_SECONDS; one not heard of for
# RELAY_WORKER_SEEN_SECONDS is taken for gone (the overview, /health/ready).
RELAY_WORKER_SEEN_SECONDS = env.float("RELAY_WORKER_SEEN_SECONDS", default=10.0)
RELAY_WAKEUP_REFRESH_SECONDS = env.float("RELAY_WAKEUP_REFRESH_SECONDS", default=2.0)
RELAY_SWEEP_SECONDS = env.float("RELAY_SWEEP_SECONDS", default=2.0)
RELAY_SLICE_SECONDS = env.float("RELAY_SLICE_SECONDS", default=1.0)
RELAY_LEASE_SECONDS = env.float("RELAY_LEASE_SECONDS", default=10.0)
RELAY_QUEUED_TASK_STALE_SECONDS = env.float("RELAY_QUEUED_TASK_STALE_SECONDS", default=60.0)
RELAY_IDLE_CONNECTION_SECONDS = env.float("RELAY_IDLE_CONNECTION_SECONDS", default=60.0)
RELAY_TASK_SOFT_TIME_LIMIT = env.int("RELAY_TASK_SOFT_TIME_LIMIT", default=600)
# Every RELAY_SAMPLE_SECONDS the worker records each enabled queue's PgQ lag and pending events and its
# published count (relay.runs.scheduling.samples, one query per source database): the queue overview's charts.
# Samples older than RELAY_SAMPLE_KEEP_HOURS are deleted.
RELAY_SAMPLE_SECONDS = env.float("RELAY_SAMPLE_SECONDS", default=60.0)
RELAY_SAMPLE_KEEP_HOURS = env.float("RELAY_SAMPLE_KEEP_HOURS", default=24.0)
CELERY_BEAT_SCHEDULE = {
    # A sweep not started before the next one is due has nothing left to do.
    "relay-sweep": {"task": "relay.sweep", "schedule": RELAY_SWEEP_SECONDS,
                    "options": {"expires": RELAY_SWEEP_SECONDS}},
    # Likewise a sample: the next one is as good.
    "relay-samples": {"task": "relay.record_samples", "schedule": RELAY_SAMPLE_SECONDS,
                      "options": {"expires": RELAY_SAMPLE_SECONDS}},
}

# LOG_FORMAT=json writes one JSON object per line (relay.ops.logformat), with the batch fields as keys.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
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
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Health (/health/ and manage.py relay_health): a queue is unhealthy when its consumer lags more
# than RELAY_HEALTH_MAX_LAG_SECONDS or PgQ has not ticked it for RELAY_HEALTH_MAX_TICK_AGE_SECONDS
# (pgqd ticks an idle queue every 60 s by default); each connection attempt waits at most
# RELAY_HEALTH_TIMEOUT_SECONDS.
RELAY_HEALTH_MAX_LAG_SECONDS = env.float("RELAY_HEALTH_MAX_LAG_SECONDS", default=300.0)
RELAY_HEALTH_MAX_TICK_AGE_SECONDS = env.float("RELAY_HEALTH_MAX_TICK_AGE_SECONDS", default=120.0)
RELAY_HEALTH_TIMEOUT_SECONDS = env.float("RELAY_HEALTH_TIMEOUT_SECONDS", default=2.0)
# /health/ answers within RELAY_HEALTH_DEADLINE_SECONDS whatever is down: the checks run concurrently, a check
# still running then is reported as not answering (and finishes in the background for the next request), and
# results are kept RELAY_HEALTH_CACHE_SECONDS, so a load balancer polling it costs the sources nothing more.
RELAY_HEALTH_DEADLINE_SECONDS = env.float("RELAY_HEALTH_DEADLINE_SECONDS", default=0.8)
RELAY_HEALTH_CACHE_SECONDS = env.float("RELAY_HEALTH_CACHE_SECONDS", default=5.0)
# Anonymous callers of /health/ learn healthy or not, per queue; hosts, users and errors need a staff
# session or "Authorization: Bearer <RELAY_HEALTH_TOKEN>". With RELAY_METRICS_TOKEN set, /metrics needs
# that token (or a staff session) too.
RELAY_HEALTH_TOKEN = env.str("RELAY_HEALTH_TOKEN", default="")
RELAY_METRICS_TOKEN = env.str("RELAY_METRICS_TOKEN", default="")

# Prometheus (/metrics): the directory every process (web and Celery worker) writes its metrics to;
# prometheus_client reads the same variable itself when it is imported. Empty: this process only.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
RELAY_METRICS_PGQ_TIMEOUT_SECONDS = env.float("RELAY_METRICS_PGQ_TIMEOUT_SECONDS", default=2.0)

# import_mikkoo and import_queue_splitter refuse larger files before reading them, and YAML whose
# aliases would expand to more than RELAY_IMPORT_MAX_NODES values (a "billion laughs").
RELAY_IMPORT_MAX_BYTES = env.int("RELAY_IMPORT_MAX_BYTES", default=1024 * 1024)
RELAY_IMPORT_MAX_NODES = env.int("RELAY_IMPORT_MAX_NODES", default=100_000)

# statsd (mikkoo's Application/statsd): the counters of every batch, when STATSD_HOST is set.
STATSD_HOST = env.str("STATSD_HOST", default="")
STATSD_PORT = env.int("STATSD_PORT", default=8125)
STATSD_PREFIX = env.str("STATSD_PREFIX", default="mikkoo_relay")

# Sentry (mikkoo's Application/sentry_dsn): errors of the web app and the worker, when SENTRY_DSN is set.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError:
        raise ImproperlyConfigured("SENTRY_DSN is set but sentry-sdk is not installed: pip install sentry-sdk") \
            from None
    sentry_sdk.init(dsn=SENTRY_DSN, integrations=[DjangoIntegration(), CeleryIntegration()],
                    environment=env.str("SENTRY_ENVIRONMENT", default="production"),
                    # A traceback's local variables hold connection strings and passwords: never sent.
                    send_default_pii=False, include_local_variables=False)
