"""Connection URLs and libpq strings: parsed forgivingly, checked, rebuilt percent-encoded, shown without passwords.

The one place that knows where a password sits in an ``amqp://``/``amqps://``
URL, a ``postgres://``/``postgresql://`` URL (``?password=`` included) and a
libpq ``key=value`` string. People paste passwords without percent-encoding
them (``amqp://relay:Rabbit7#Xq?Zeta9/Mu@rabbit:5672/%2f``): such a URL is
understood when only one reading of it makes sense, and rebuilt correctly
encoded; when two readings do, it is refused. No error of this module ever
quotes the text it was given, so no part of a password reaches a message.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, quote_plus, unquote

MASK = "***"

AMQP_SCHEMES = ("amqp", "amqps")
POSTGRES_SCHEMES = ("postgres", "postgresql")
#: Keys of a libpq string or of a PostgreSQL URL's query whose values are secrets.
SECRET_KEYS = frozenset({"password", "sslpassword"})

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters that may stand unencoded in a URL's user information (RFC 3986: unreserved, sub-delims, ":").
_USERINFO_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[^:]*))?")
#: A field holding ``env:NAME`` refers to an environment variable instead of holding a value (relay.secret_refs).
ENV_PREFIX = "env:"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InvalidConnectionString(ValueError):
    """A URL or libpq string that cannot be understood; the message says why and never quotes it."""


@dataclass(frozen=True)
class Url:
    """A connection URL taken apart: user information decoded, hosts checked, the rest kept as given."""

    scheme: str
    username: str | None
    password: str | None = field(repr=False)
    #: The host list as written (``host``, ``host:port``, ``[v6]:port``, comma-separated for PostgreSQL).
    netloc: str = ""
    hosts: tuple[tuple[str, int | None], ...] = ()
    #: Path, query and fragment exactly as written.
    rest: str = field(default="", repr=False)

    def rebuild(self, password: str | None = None, *, mask: bool = False) -> str:
        """The URL with its user information percent-encoded (``mask``: the password shown as ``***``)."""
        userinfo = ""
        if self.username is not None or self.password is not None:
            userinfo = quote(self.username or "", safe="")
            secret = self.password if password is None else password
            if secret is not None:
                userinfo += ":" + (MASK if mask else quote(secret, safe=""))
            userinfo += "@"
        rest = _mask_query(self.rest) if mask else self.rest
        return f"{self.scheme}://{userinfo}{self.netloc}{rest}"

    def query_secrets(self) -> list[str]:
        """Values of ``password``/``sslpassword`` in the query, decoded."""
        query = self.rest.partition("?")[2].partition("#")[0]
        return [value for key, value in parse_qsl(query, keep_blank_values=True) if key in SECRET_KEYS and value]

    @property
    def path(self) -> str:
        return re.split(r"[?#]", self.rest, maxsplit=1)[0]


def is_url(text: str) -> bool:
    """Whether ``text`` starts like a URL (``scheme://``)."""
    return bool(_SCHEME.match(text.strip()))


def url_scheme(text: str) -> str:
    """The scheme of a URL, lowercased; empty when ``text`` does not start like one."""
    match = _SCHEME.match(text.strip())
    return match[1].lower() if match else ""


def env_reference_name(text: str) -> str | None:
    """The environment variable ``text`` names (``env:NAME``), or None when it holds a value of its own."""
    if text.startswith(ENV_PREFIX) and _ENV_NAME.fullmatch(text[len(ENV_PREFIX):]):
        return text[len(ENV_PREFIX):]
    return None


def is_env_reference(text: str) -> bool:
    """Whether ``text`` names an environment variable (``env:NAME``) instead of holding a value."""
    return env_reference_name(text) is not None


def parse_url(text: str, schemes: Iterable[str] = AMQP_SCHEMES + POSTGRES_SCHEMES) -> Url:
    """Take a connection URL apart, understanding a password pasted without percent-encoding.

    >>> url = parse_url("amqp://relay:Rabbit7#Xq?Zeta9/Mu@rabbit:5672/%2f")
    >>> url.username, url.password, url.hosts, url.rest
    ('relay', 'Rabbit7#Xq?Zeta9/Mu', (('rabbit', 5672),), '/%2f')
    >>> url.rebuild()
    'amqp://relay:Rabbit7%23Xq%3FZeta9%2FMu@rabbit:5672/%2f'
    >>> parse_url("postgresql://app:a%2Fb@db1,db2:5433/shop").password
    'a/b'
    >>> parse_url("amqp://u:ab@cd/ef@rabbit/")
    Traceback (most recent call last):
    ...
    relay.core.connection_strings.InvalidConnectionString: cannot tell where the password ends: ...
    """
    schemes = tuple(schemes)
    text = text.strip()
    if _CONTROL.search(text):
        raise InvalidConnectionString("contains a line break, tab or other control character")
    match = _SCHEME.match(text)
    if not match:
        raise InvalidConnectionString(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    scheme = match[1].lower()
    if scheme not in schemes:
        raise InvalidConnectionString(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    postgres = scheme in POSTGRES_SCHEMES
    rest = text[match.end():]
    ats = [i for i, char in enumerate(rest) if char == "@"]
    if not ats:
        netloc, after = _split_netloc(rest)
        return Url(scheme, None, None, netloc, _hosts(netloc, postgres), after)
    readings, first_problem = [], None
    for at in ats:
        netloc, after = _split_netloc(rest[at + 1:])
        try:
            readings.append((at, netloc, _hosts(netloc, postgres), after))
        except InvalidConnectionString as exc:
            first_problem = first_problem or exc
    if not readings:
        # The last @ is the likeliest end of the user information: report what is wrong after it.
        netloc, _ = _split_netloc(rest[ats[-1] + 1:])
        try:
            _hosts(netloc, postgres)
        except InvalidConnectionString as exc:
            raise exc from None
        raise first_problem or InvalidConnectionString("no valid host")
    if len(readings) > 1:
        raise InvalidConnectionString("cannot tell where the password ends: percent-encode it "
                                      "(@ as %40, / as %2F, ? as %3F, # as %23)")
    at, netloc, hosts, after = readings[0]
    username, colon, password = rest[:at].partition(":")
    return Url(scheme, _decode(username), _decode(password) if colon else None, netloc, hosts, after)


def _split_netloc(text: str) -> tuple[str, str]:
    end = re.search(r"[/?#]", text)
    return (text[:end.start()], text[end.start():]) if end else (text, "")


def _hosts(netloc: str, postgres: bool) -> tuple[tuple[str, int | None], ...]:
    if not netloc:
        if postgres:  # a Unix socket, or hosts given in the query
            return ()
        raise InvalidConnectionString("no host")
    parts = netloc.split(",")
    if len(parts) > 1 and not postgres:
        raise InvalidConnectionString("an AMQP URL names one host: for a cluster, give the hosts instead of a URL")
    return tuple(check_host_port(part) for part in parts)


def check_host_port(text: str, default_port: int | None = None) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` checked; the host and the port (or ``default_port``).

    >>> check_host_port("rabbit-1:5673"), check_host_port("[::1]"), check_host_port("db")
    (('rabbit-1', 5673), ('::1', None), ('db', None))
    >>> check_host_port("db:99999")
    Traceback (most recent call last):
    ...
    relay.core.connection_strings.InvalidConnectionString: port out of range (1-65535)
    """
    match = _HOST_PORT.fullmatch(text)
    if not match:
        if "[" in text or "]" in text:
            raise InvalidConnectionString("invalid IPv6 address (written [::1] or [::1]:5672)")
        if text.count(":") > 1:
            raise InvalidConnectionString("an IPv6 address must be written in brackets: [::1]:5672")
        raise InvalidConnectionString("invalid host")
    host, port_text = match["host"], match["port"]
    if host.startswith("["):
        address = host[1:-1]
        try:
            ipaddress.IPv6Address(address.split("%", 1)[0])
        except ValueError:
            raise InvalidConnectionString("invalid IPv6 address (written [::1] or [::1]:5672)") from None
        host = address
    elif not host:
        raise InvalidConnectionString("empty host name")
    elif not _HOST_NAME.fullmatch(host) or any(not label for label in host.rstrip(".").split(".")):
        raise InvalidConnectionString("invalid host name")
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not port_text.isascii():
        raise InvalidConnectionString("the port must be a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise InvalidConnectionString("port out of range (1-65535)")
    return host, port


def _decode(part: str) -> str:
    # Percent-encoded user information is decoded; text that cannot be encoded (it holds / ? # @ space
    # quotes or a lone %) was pasted as it is, and is taken literally.
    return unquote(part) if _USERINFO_CHARS.fullmatch(part) else part


def _mask_query(rest: str) -> str:
    def mask(match: re.Match[str]) -> str:
        return f"{match['key']}={MASK}" if unquote(match["key"]) in SECRET_KEYS else match[0]

    path, question, query = rest.partition("?")
    if not question:
        return rest
    query, hash_, fragment = query.partition("#")
    return f"{path}?{re.sub(r'(?P<key>[^&=]+)=(?P<value>[^&]*)', mask, query)}{hash_}{fragment}"


# libpq key/value strings: libpq reads them (psycopg2's parse_dsn); the pairs as written are kept to redact them

#: libpq's whitespace (C's isspace), not Python's: a no-break space is part of a value.
_LIBPQ_SPACE = " \t\n\v\f\r"
#: One pair of a string libpq accepted, as written: a quoted value (backslash escapes), or an unquoted one up to
#: the next space (a backslash escapes the next character). Only splits what libpq read already.
_LIBPQ_PAIR = re.compile(rf"[{_LIBPQ_SPACE}]*(?P<written>(?P<key>[^{_LIBPQ_SPACE}=]+)[{_LIBPQ_SPACE}]*="
                         rf"[{_LIBPQ_SPACE}]*(?:'(?:[^'\\]|\\.)*'|(?:[^{_LIBPQ_SPACE}\\]|\\.?)*))", re.DOTALL)
#: libpq's refusals told by their fixed words: its message quotes the text, which may hold a password.
_LIBPQ_REFUSALS = (
    ('missing "="', "a word without =; quote a value that holds spaces (password='...')"),
    ("unterminated quoted string", "a quoted value is not closed"),
    ("invalid connection option", "an unknown option (check each key's spelling)"),
)


@dataclass(frozen=True)
class Conninfo:
    """A libpq ``key=value`` string as libpq reads it, with its pairs as written (for :meth:`redacted`)."""

    options: dict[str, str] = field(repr=False)
    written: tuple[tuple[str, str], ...] = field(repr=False)  # key, the pair as written

    def get(self, key: str) -> str | None:
        return self.options.get(key)

    def redacted(self) -> str:
        return " ".join(f"{key}={MASK}" if key in SECRET_KEYS else written for key, written in self.written)


def parse_conninfo(text: str) -> Conninfo:
    r"""Read a libpq ``key=value`` string as libpq does (psycopg2's ``parse_dsn``); errors never quote it.

    >>> info = parse_conninfo("dbname=app password = 'a b\\'c' host=db")
    >>> info.get("password"), info.redacted()
    ("a b'c", 'dbname=app password=*** host=db')
    >>> parse_conninfo("dbname=app password=a b")
    Traceback (most recent call last):
    ...
    relay.core.connection_strings.InvalidConnectionString: not a libpq connection string: ...
    """
    import psycopg2.extensions

    if "\x00" in text:  # libpq would read the text up to it
        raise InvalidConnectionString("contains a NUL character")
    if not text.strip(_LIBPQ_SPACE):
        raise InvalidConnectionString("empty")
    try:
        options = psycopg2.extensions.parse_dsn(text)
    except psycopg2.ProgrammingError as exc:
        reason = next((why for words, why in _LIBPQ_REFUSALS if words in str(exc)), "libpq cannot read it")
        raise InvalidConnectionString(f"not a libpq connection string: {reason}") from None
    return Conninfo(options, tuple((match["key"], match["written"]) for match in _LIBPQ_PAIR.finditer(text)))


# What the rest of the relay calls


def check_amqp_url(text: str) -> str:
    """An ``amqp://``/``amqps://`` URL checked and rebuilt percent-encoded; raises InvalidConnectionString."""
    return parse_url(text, AMQP_SCHEMES).rebuild()


def check_postgres_dsn(text: str) -> str:
    """A PostgreSQL URL (rebuilt percent-encoded) or a libpq string (kept as written, once libpq can read it).

    >>> check_postgres_dsn("postgresql://app:pa ss#1@db/shop")
    'postgresql://app:pa%20ss%231@db/shop'
    >>> check_postgres_dsn("dbname=shop host=db")
    'dbname=shop host=db'
    """
    text = text.strip()
    if is_url(text):
        return parse_url(text, POSTGRES_SCHEMES).rebuild()
    if "=" not in text:
        raise InvalidConnectionString("expected a postgresql:// URL or a libpq connection string (key=value ...)")
    parse_conninfo(text)
    return text


def redact_url(text: str) -> str:
    """``text`` (a URL or libpq string) with every password replaced by ``***``; never raises.

    >>> redact_url("postgres://app:s3cret@db:5432/main")
    'postgres://app:***@db:5432/main'
    >>> redact_url("amqp://relay:Rabbit7#Xq?Zeta9/Mu@rabbit:5672/%2f")
    'amqp://relay:***@rabbit:5672/%2f'
    >>> redact_url("postgres://db/app?sslmode=require&password=s3cret")
    'postgres://db/app?sslmode=require&password=***'
    >>> redact_url("dbname=app password = 'a b\\\\'c' host=db")
    'dbname=app password=*** host=db'
    >>> redact_url("postgres://u:p@[::1/db")
    'postgres://*** (not a valid URL: invalid IPv6 address (written [::1] or [::1]:5672))'
    """
    if not text or is_env_reference(text):
        return text
    try:
        if is_url(text):
            return parse_url(text).rebuild(mask=True)
        return parse_conninfo(text).redacted()
    except InvalidConnectionString as exc:
        match = _SCHEME.match(text.strip())
        if match:
            return f"{match[1].lower()}://{MASK} (not a valid URL: {exc})"
        return f"{MASK} (not a valid connection string)"


def secrets_in(text: str) -> tuple[str, ...]:
    """The passwords a URL or libpq string holds (decoded), to scrub them from library messages.

    >>> secrets_in("amqp://relay:Rabbit7%23Xq@rabbit/"), secrets_in("host=db password='a b'")
    (('Rabbit7#Xq',), ('a b',))
    """
    if not text or is_env_reference(text):
        return ()
    found: list[str] = []
    try:
        if is_url(text):
            url = parse_url(text)
            found = [url.password or "", *url.query_secrets()]
        else:
            info = parse_conninfo(text)
            found = [info.get(key) or "" for key in SECRET_KEYS]
    except InvalidConnectionString:
        # Nothing can be told apart: whatever follows the scheme may be a password.
        found = [text.strip().split("://", 1)[-1]]
    return tuple(secret for secret in found if secret)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every non-empty secret from ``text``, as written and percent-encoded (for library messages).

    >>> scrub("login failed for a%2Fb and a/b", "a/b")
    'login failed for *** and ***'
    """
    variants = set()
    for secret in secrets:
        if secret:
            variants.update({secret, quote(secret, safe=""), quote(secret), quote_plus(secret), unquote(secret)})
    for variant in sorted(variants, key=len, reverse=True):
        if variant:
            text = text.replace(variant, MASK)
    return text
