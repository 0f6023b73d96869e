"""Every setting mikkoo-relay reads from the environment, declared once: name, type, default and meaning.

``settings.py`` reads each of them through django-environ from this list (it stays the only module that reads
the environment); the settings tables of ``docs/configuration.md`` are generated from it
(``scripts/settings_reference.py``), and ``tests/test_settings_reference.py`` fails when that page or
``.env.example`` say otherwise. A new setting is a new entry here, a ``from_env("NAME")`` in ``settings.py``,
a line in ``.env.example`` and ``python scripts/settings_reference.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# django-environ's readers a setting may name: env.bool, env.int, env.float, env.str, env.list, env.tuple,
# env.path, env.db (a database URL) and env.cache (a cache URL).
KINDS = ("bool", "int", "float", "str", "list", "tuple", "path", "db", "cache")

# The groups of settings, in the order the reference shows them, with their headings.
GROUPS = {
    "django": "Django, Celery's broker and secrets",
    "https": "HTTPS in production",
    "worker": "The worker and its schedule",
    "health": "Health and metrics",
    "imports": "Imports",
    "audit": "The audit status page",
    "logging": "Logging, statsd and Sentry",
}

BASE_DIR_MARK = "{BASE_DIR}"


@dataclass(frozen=True)
class Setting:
    """One environment variable: how django-environ reads it, its value when unset, what it means."""

    name: str
    kind: str
    default: Any
    meaning: str
    group: str
    # The reference's words for a default its value does not say: one computed, or one that must be replaced.
    shown_default: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.group not in GROUPS:
            raise ValueError(f"{self.name}: group {self.group!r} is not one of {', '.join(GROUPS)}")

    def default_in(self, base_dir: Path) -> Any:
        """The value ``settings.py`` gets when the variable is unset.

        ``{BASE_DIR}`` stands for the directory the relay keeps its files in, and a list is a new list each time
        (the declaration keeps tuples, which nothing can change).

        >>> Setting("X", "list", ("a", "b"), "", "django").default_in(Path("/srv"))
        ['a', 'b']
        >>> Setting("X", "str", "{BASE_DIR}/beat", "", "worker").default_in(Path("/srv"))
        '/srv/beat'
        """
        if self.kind == "list":
            return list(self.default)
        if isinstance(self.default, str) and BASE_DIR_MARK in self.default:
            return self.default.replace(BASE_DIR_MARK, str(base_dir))
        return self.default


SETTINGS: tuple[Setting, ...] = (
    # Django, Celery's broker and secrets
    Setting("DATABASE_URL", "db", f"sqlite:///{BASE_DIR_MARK}/db.sqlite3",
            "Django's own database: connections, queues, dead letters", "django",
            shown_default="`sqlite:///db.sqlite3` in the project directory (installed as a package: the working "
                          "directory)"),
    Setting("CELERY_BROKER_URL", "str", "amqp://guest:guest@127.0.0.1:5672//",
            "the RabbitMQ that carries Celery's own task messages (not the relayed events: those go to the "
            "connections configured in the admin)", "django"),
    Setting("SECRET_KEY", "str", "",
            "Django's secret key; with `SALT_KEY`, the key that encrypts stored passwords", "django",
            shown_default="required when `DEBUG` is off"),
    Setting("SECRET_KEY_FALLBACKS", "list", (),
            "earlier secret keys, comma-separated, while rotating: what they signed or encrypted still opens",
            "django"),
    Setting("SALT_KEY", "list", ("mikkoo-relay",),
            "salt of the stored passwords' encryption key; a comma-separated list rotates it (the first "
            "encrypts). Losing `SECRET_KEY` or `SALT_KEY` makes the stored passwords unreadable", "django"),
    Setting("RELAY_SECRET_ENV_DENY", "list", (),
            "more environment variables that `env:NAME` may not name, comma-separated (the relay's own secrets "
            "never can)", "django"),
    Setting("DEBUG", "bool", False, "Django's debug mode; never on in production", "django"),
    Setting("ALLOWED_HOSTS", "list", ("localhost", "127.0.0.1"),
            "host names the admin answers to, comma-separated", "django"),
    Setting("CACHE_URL", "cache", "locmemcache://",
            "Django's cache, where `/health/` keeps its checks for `RELAY_HEALTH_CACHE_SECONDS`; per process by "
            "default. A shared one (e.g. `redis://127.0.0.1:6379/1`, with the redis package installed) lets the "
            "web server's processes share the health checks", "django"),
    Setting("STATIC_ROOT", "path", f"{BASE_DIR_MARK}/static",
            "where `collectstatic` puts the admin's static files", "django",
            shown_default="`static` in the project directory (installed as a package: the working directory)"),
    # HTTPS in production: Django's settings of the same names
    Setting("SECURE_SSL_REDIRECT", "bool", False,
            "redirect plain HTTP to HTTPS (except the paths of `SECURE_REDIRECT_EXEMPT`)", "https"),
    Setting("SECURE_REDIRECT_EXEMPT", "list", ("^health/",),
            "paths never redirected to HTTPS, comma-separated regular expressions: health probes speak plain "
            "HTTP to the backend (a load balancer's, the image's HEALTHCHECK on `/health/live`)", "https"),
    Setting("SESSION_COOKIE_SECURE", "bool", False, "the session cookie only over HTTPS", "https"),
    Setting("CSRF_COOKIE_SECURE", "bool", False, "the CSRF cookie only over HTTPS", "https"),
    Setting("SECURE_HSTS_SECONDS", "int", 0,
            "HTTP Strict Transport Security: how long browsers use HTTPS only (`31536000`: a year). Start with "
            "a few minutes (`300`) until HTTPS works everywhere: browsers remember it", "https"),
    Setting("SECURE_HSTS_INCLUDE_SUBDOMAINS", "bool", False, "HSTS for the subdomains too", "https"),
    Setting("SECURE_HSTS_PRELOAD", "bool", False, "ask browsers to preload HSTS", "https"),
    Setting("CSRF_TRUSTED_ORIGINS", "list", (),
            "the scheme and host the admin is reached at, for its forms (CSRF), comma-separated "
            "(`https://relay.example.com`)", "https"),
    Setting("SECURE_PROXY_SSL_HEADER", "tuple", None,
            "behind a proxy that terminates TLS: the header it sets and the value meaning HTTPS "
            "(`HTTP_X_FORWARDED_PROTO,https`). Only set it when the proxy always sets (and overwrites) that "
            "header", "https"),
    # The worker and its schedule (relay.scheduling)
    Setting("RELAY_SWEEP_SECONDS", "float", 2.0,
            "how often beat asks every source database which queues have work", "worker"),
    Setting("RELAY_SLICE_SECONDS", "float", 1.0,
            "how long a task relays one queue before giving its process to the next", "worker"),
    Setting("RELAY_LEASE_SECONDS", "float", 10.0,
            "how long a running slice counts as running without renewing (a killed worker's queues are free "
            "this long after)", "worker"),
    Setting("RELAY_QUEUED_TASK_STALE_SECONDS", "float", 60.0,
            "after this long a queued task that never started no longer stops another from being queued",
            "worker"),
    Setting("RELAY_IDLE_CONNECTION_SECONDS", "float", 60.0,
            "a worker process closes a source or RabbitMQ connection nobody used for this long", "worker"),
    Setting("RELAY_WAKEUPS", "bool", True,
            "watch the queues for new events (off: the sweep alone finds work)", "worker"),
    Setting("RELAY_WATCH_SECONDS", "float", 0.05,
            "how often the watcher reads a source database's queues (one query for all of them); fewer "
            "queries, more latency: 0.2 s costs 5 queries/s and adds up to 0.2 s", "worker"),
    Setting("RELAY_WATCH_STANDBY_SECONDS", "float", 2.0,
            "how often a worker that does not watch a database tries to take the watch over", "worker"),
    Setting("RELAY_NOTIFY", "bool", False,
            "install the NOTIFY trigger and listen as well (costs every producer's commit an instance-wide "
            "lock)", "worker"),
    Setting("RELAY_WAKEUP_REFRESH_SECONDS", "float", 2.0,
            "how often each worker says it is alive and its watchers follow the configuration", "worker"),
    Setting("RELAY_WORKER_SEEN_SECONDS", "float", 10.0,
            "a worker not heard of for this long is taken for gone (overview, `/health/ready`)", "worker"),
    Setting("RELAY_TASK_SOFT_TIME_LIMIT", "int", 600,
            "seconds before a stuck task is stopped (the hard limit is 30 s later)", "worker"),
    Setting("RELAY_SAMPLE_SECONDS", "float", 60.0,
            "how often beat records each enabled queue's lag, pending events and published count for the "
            "queue overview", "worker"),
    Setting("RELAY_SAMPLE_KEEP_HOURS", "float", 24.0, "samples older than this are deleted", "worker"),
    Setting("CELERY_TASK_DEFAULT_QUEUE", "str", "mikkoo-relay",
            "the Celery queue the relay's tasks use (give each installation sharing a RabbitMQ its own)",
            "worker"),
    Setting("CELERY_BEAT_SCHEDULE_FILENAME", "str", f"{BASE_DIR_MARK}/celerybeat-schedule",
            "where beat keeps its state", "worker",
            shown_default="`celerybeat-schedule` in the project directory (installed as a package: the working "
                          "directory)"),
    # Health and metrics
    Setting("RELAY_HEALTH_MAX_LAG_SECONDS", "float", 300.0,
            "a queue is unhealthy when the relay's consumer lag (`pgq.get_consumer_info`) is not under this",
            "health"),
    Setting("RELAY_HEALTH_MAX_TICK_AGE_SECONDS", "float", 120.0,
            "a queue is unhealthy when PgQ has not ticked it within this (pgqd ticks an idle queue every 60 s)",
            "health"),
    Setting("RELAY_HEALTH_TIMEOUT_SECONDS", "float", 2.0,
            "how long each connection of a health check waits at most (PostgreSQL waits at least 2 s whatever "
            "is asked)", "health"),
    Setting("RELAY_HEALTH_DEADLINE_SECONDS", "float", 0.8,
            "`/health/` answers within this whatever is down: a check not finished by then is reported as not "
            "answering yet and goes on in the background", "health"),
    Setting("RELAY_HEALTH_CACHE_SECONDS", "float", 5.0,
            "how long each check's result is kept in Django's cache (`CACHE_URL`)", "health"),
    Setting("RELAY_HEALTH_TOKEN", "str", "",
            "bearer token for the details of `/health/` (hosts, users, figures and errors; anonymous callers "
            "get healthy or unhealthy only)", "health"),
    Setting("RELAY_METRICS_TOKEN", "str", "",
            "when set, `/metrics` needs this bearer token (or a staff session) and answers 401 otherwise",
            "health"),
    Setting("PROMETHEUS_MULTIPROC_DIR", "str", "",
            "a directory shared by the web app and the Celery worker (same host), emptied before they start, so "
            "that `/metrics` shows the worker's counters (prometheus_client's multiprocess mode, which reads the "
            "variable itself too); empty: this process only", "health"),
    Setting("RELAY_METRICS_PGQ_TIMEOUT_SECONDS", "float", 2.0,
            "timeout of the PgQ queries made at each scrape of `/metrics`", "health"),
    # Imports
    Setting("RELAY_IMPORT_MAX_BYTES", "int", 1024 * 1024,
            "the largest file `import_mikkoo` and `import_queue_splitter` read: a larger one is refused before "
            "it is read", "imports", shown_default="`1048576` (1 MiB)"),
    Setting("RELAY_IMPORT_MAX_NODES", "int", 100_000,
            "the most values a YAML file may expand to through its aliases (a \"billion laughs\")", "imports"),
    # The audit status page
    Setting("AUDIT_STUCK_AFTER", "int", 300,
            "seconds an audited event may stay outstanding (or events wait for a tick or a batch) before the "
            "audit status page calls its queue *stuck*", "audit"),
    # Logging, statsd and Sentry
    Setting("LOG_LEVEL", "str", "INFO",
            "root log level: `DEBUG`, `INFO`, `WARNING`, `ERROR`. At `INFO` an idle worker writes next to "
            "nothing", "logging"),
    Setting("LOG_FORMAT", "str", "plain",
            "log lines as plain text (`plain`) or one JSON object per line (`json`)", "logging"),
    Setting("STATSD_HOST", "str", "",
            "the statsd server that gets each batch's counters (mikkoo's `Application/statsd`); empty: nothing "
            "is sent", "logging"),
    Setting("STATSD_PORT", "int", 8125, "the statsd server's UDP port", "logging"),
    Setting("STATSD_PREFIX", "str", "mikkoo_relay", "the prefix of the statsd metrics' names", "logging"),
    Setting("SENTRY_DSN", "str", "",
            "the Sentry that gets the errors of the web app and the worker (mikkoo's `Application/sentry_dsn`); "
            "empty: sentry-sdk is not loaded", "logging"),
    Setting("SENTRY_ENVIRONMENT", "str", "production", "the environment Sentry files the errors under",
            "logging"),
)

DECLARED: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
if len(DECLARED) != len(SETTINGS):
    raise ValueError("a setting is declared twice")
