"""Skytools' queue_splitter configuration (INI) read into frozen settings, each bad key reported by where it is."""
from __future__ import annotations

import configparser
import math
import socket
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.validators import slug_re
from django.utils.text import slugify

from ..core.errors import ConfigError
from ..validation import WAIT_DURATION, name_problem
from .config_files import LimitedInterpolation, read_text
from .postgres_dsn import postgres_dsn

# Skytools 2 reads [queue_splitter], Skytools 3's queue_splitter3 script reads [queue_splitter3].
SECTIONS = ("queue_splitter", "queue_splitter3")
SPLITTER_KEYS = ("job_name", "src_db", "dst_db", "pgq_queue_name", "pgq_consumer_id", "loop_delay", "queue_field")
# Skytools' common script and consumer keys configure its own daemon, logging, reconnects and fetching;
# the relay has its settings for those. Accepted so that existing files import, and not used.
COMMON_KEYS = (
    "logfile", "pidfile", "use_skylog", "skylog_locations", "log_count", "log_size", "connection_lifetime",
    "use_syslog", "syslog_ident", "syslog_facility", "logfmt_console", "logfmt_console_verbose", "logfmt_file",
    "logfmt_file_verbose", "logdatefmt_console", "logdatefmt_console_verbose", "logdatefmt_file",
    "logdatefmt_file_verbose", "exception_sleep", "exception_quiet", "exception_grace", "exception_reset",
    "keepalive_stats", "tcp_keepalive", "tcp_keepidle", "tcp_keepintvl", "tcp_keepcnt", "sql_retry",
    "sql_retry_max_count", "sql_retry_max_time", "sql_retry_formula_a", "sql_retry_formula_b",
    "sql_retry_formula_cap", "pgq_lazy_fetch", "pgq_autocommit", "pgq_batch_collect_events",
    "pgq_batch_collect_interval", "pgq_keep_lag",
    # Skytools sets these for %(name)s references; a file may set them too.
    "service_name", "host_name", "config_dir", "config_file",
)
DEFAULT_LOOP_DELAY = 1.0  # Skytools' default loop_delay


@dataclass(frozen=True)
class SplitterConfig:
    """One queue_splitter job, named as RelayedQueue's fields, and notes on what of it the relay does not use."""

    section: str
    name: str
    queue_name: str
    source_url: str = field(repr=False)
    target_url: str = field(repr=False)
    consumer_name: str
    wait_duration: float
    notes: tuple[str, ...] = ()


def load(path: str | Path) -> SplitterConfig:
    """Read and check the queue_splitter configuration file at ``path``; raises ConfigError.

    A file over ``RELAY_IMPORT_MAX_BYTES`` is refused before it is read.
    """
    return parse(read_text(path), str(path))


def parse(text: str, filename: str = "queue_splitter.ini") -> SplitterConfig:
    """Check a queue_splitter configuration given as INI text; raises ConfigError naming the first bad key.

    ``filename`` gives what Skytools derives from it: the default ``job_name``
    (the file's name without extension) and ``%(config_dir)s``.
    """
    if len(text) > settings.RELAY_IMPORT_MAX_BYTES:
        raise ConfigError("", f"too large: over {settings.RELAY_IMPORT_MAX_BYTES:,} characters "
                              "(RELAY_IMPORT_MAX_BYTES)")
    parser = configparser.ConfigParser(strict=True, interpolation=LimitedInterpolation())
    try:
        parser.read_string(text, source=filename)
    # Only line numbers: configparser's own messages quote the lines, which may hold a password.
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(f"[{exc.section}] {exc.option}", f"given twice (line {exc.lineno})") from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"[{exc.section}]", f"section given twice (line {exc.lineno})") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError("", f"not an INI file: line {exc.lineno} comes before any [section]") from None
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        raise ConfigError("", f"not an INI file: cannot read line {lines}") from None
    except configparser.Error:
        raise ConfigError("", "not an INI file") from None
    found = [name for name in SECTIONS if parser.has_section(name)]
    if not found:
        present = ", ".join(f"[{name}]" for name in parser.sections()) or "none"
        raise ConfigError("", f"no [queue_splitter] section (sections found: {present})")
    if len(found) > 1:
        raise ConfigError(f"[{found[1]}]", "give [queue_splitter] or [queue_splitter3], not both")
    section = _Section(parser, found[0], filename)
    notes = [f"[{name}]: section ignored (only [{section.name}] is read)"
             for name in parser.sections() if name != section.name]
    job_name = section.name_value("job_name", Path(filename).stem)
    name = job_name if slug_re.match(job_name) else slugify(job_name)
    if not name:
        raise ConfigError(section.at("job_name"), "no queue name can be made of it (use letters, digits, - and _)")
    if name != job_name:
        notes.append(f"{section.at('job_name')}: not a valid queue name (letters, digits, - and _ only), "
                     f"imported as {name!r}")
    if not section.has("job_name"):
        notes.append(f"{section.at('job_name')}: not given, so the file's name {job_name!r} (as Skytools does)")
    queue_field = section.string("queue_field", "extra1").lower().removeprefix("ev_")
    if queue_field != "extra1":
        raise ConfigError(section.at("queue_field"), "only extra1 is supported: the target queue is read from "
                          "ev_extra1")
    return SplitterConfig(
        section=section.name,
        name=name,
        queue_name=section.name_value("pgq_queue_name"),
        source_url=section.dsn("src_db"),
        target_url=section.dsn("dst_db"),
        consumer_name=section.name_value("pgq_consumer_id", job_name),
        wait_duration=section.seconds("loop_delay", DEFAULT_LOOP_DELAY),
        notes=tuple(notes),
    )


class _Section:
    """The script's section of the file; a key it does not know is an error, not silently ignored."""

    def __init__(self, parser: configparser.ConfigParser, name: str, filename: str):
        self.parser = parser
        self.name = name
        for key in parser.options(name):
            if key not in SPLITTER_KEYS and key not in COMMON_KEYS:
                raise ConfigError(self.at(key), f"unknown key (queue_splitter's keys: {', '.join(SPLITTER_KEYS)}; "
                                  "and Skytools' common keys such as logfile, pidfile, use_skylog)")
        path = Path(filename)
        # Skytools offers these to %(name)s references (skytools.Config); a key set in the file wins.
        defaults = {"job_name": path.stem, "service_name": name, "host_name": socket.gethostname(),
                    "config_dir": str(path.parent), "config_file": filename}
        self.defaults = {key: value for key, value in defaults.items() if not parser.has_option(name, key)}

    def at(self, key: str) -> str:
        return f"[{self.name}] {key}"

    def has(self, key: str) -> bool:
        return self.parser.has_option(self.name, key)

    def _get(self, key: str) -> str:
        try:
            return self.parser.get(self.name, key, vars=self.defaults).strip()
        # Never the value in the message: it may be a connection string with a password.
        except configparser.InterpolationMissingOptionError as exc:
            raise ConfigError(self.at(key), f"refers to %({exc.reference})s, which is not set") from None
        except configparser.InterpolationDepthError:
            raise ConfigError(self.at(key), "%(name)s references nest too deep (one refers to itself?)") from None
        except configparser.InterpolationError:
            raise ConfigError(self.at(key), "a % must be written %% unless it starts %(name)s") from None

    def string(self, key: str, default: str | None = None) -> str:
        if not self.has(key):
            if default is None:
                raise ConfigError(self.at(key), "required key missing")
            return default
        value = self._get(key)
        if not value:
            raise ConfigError(self.at(key), "must not be empty")
        return value

    def name_value(self, key: str, default: str | None = None) -> str:
        """A name: one line (an indented continuation line would put a line break into it), no control characters."""
        value = self.string(key, default)
        problem = name_problem(value)
        if problem:
            raise ConfigError(self.at(key), problem)
        return value

    def dsn(self, key: str) -> str:
        return postgres_dsn(self.string(key), self.at(key))

    def seconds(self, key: str, default: float) -> float:
        if not self.has(key):
            return default
        text = self._get(key)
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(self.at(key), f"expected a number of seconds, got {text!r}") from None
        if not 0 <= value < math.inf:
            raise ConfigError(self.at(key), f"must be a finite number, at least 0, got {text}")
        if value > WAIT_DURATION.maximum:
            raise ConfigError(self.at(key), f"must be at most {WAIT_DURATION.maximum:g} seconds, got {text}")
        return value
