"""TLS to RabbitMQ: when it is on, and py-amqp over TLS with a ready ``ssl.SSLContext`` (every ``ssl_options``).

py-amqp's ``SSLTransport`` only takes a dict of ``wrap_socket`` options and
silently drops anything else (``ssl if isinstance(ssl, dict) else {}``): a
context handed to kombu as ``ssl=`` was ignored, and with it the CAs, the
minimum protocol, the ciphers and the client certificate. This transport wraps
the socket with the context itself.
"""
from __future__ import annotations

import ssl
from typing import Any

from amqp.transport import SSLTransport
from kombu.transport import pyamqp


def tls_requested(use_tls: bool, url: str) -> bool:
    """Whether a connection uses TLS: asked for, or implied by an ``amqps://`` URL."""
    return bool(use_tls) or url.strip().lower().startswith("amqps://")


# ``Transport`` takes a parameter named ``ssl``, which hides the module there.
_SSLContext = ssl.SSLContext


# py-amqp ships no type hints and no stubs exist for it: to mypy its SSLTransport is Any.
class ContextSSLTransport(SSLTransport):  # type: ignore[misc]
    """An SSLTransport that wraps its socket with the given SSLContext, checking the server's name."""

    def __init__(self, host: str, connect_timeout: float | None = None, ssl: Any = None, **kwargs: Any) -> None:
        self.context: _SSLContext = ssl
        super().__init__(host, connect_timeout=connect_timeout, ssl=None, **kwargs)

    def _wrap_socket(self, sock: Any, **sslopts: Any) -> ssl.SSLSocket:
        return self.context.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)


class ContextConnection(pyamqp.Connection):
    """A py-amqp connection that uses :class:`ContextSSLTransport` when given an SSLContext."""

    def Transport(self, host: str, connect_timeout: float | None, ssl: Any = False,
                  read_timeout: float | None = None, write_timeout: float | None = None,
                  socket_settings: dict[int, int] | None = None, **kwargs: Any) -> Any:
        if not isinstance(ssl, _SSLContext):
            return super().Transport(host, connect_timeout, ssl=ssl, read_timeout=read_timeout,
                                     write_timeout=write_timeout, socket_settings=socket_settings, **kwargs)
        return ContextSSLTransport(host, connect_timeout=connect_timeout, ssl=ssl, read_timeout=read_timeout,
                                   write_timeout=write_timeout, socket_settings=socket_settings, **kwargs)



class TlsTransport(pyamqp.Transport):
    """kombu's py-amqp transport with :class:`ContextConnection`: pass it as ``Connection(transport=...)``."""

    Connection = ContextConnection
