"""A loopback TCP proxy for fault tests: forwards to RabbitMQ until told to cut or to swallow replies."""
from __future__ import annotations

import selectors
import socket
import threading


class TcpProxy:
    """Listens on 127.0.0.1 and forwards every connection to ``target``.

    ``hold_replies()`` keeps forwarding what the client sends but stops
    passing anything back (a confirm that never comes); ``cut()`` closes every
    connection. Stop it with ``close()``.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.holding = threading.Event()
        self.closed = threading.Event()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def hold_replies(self) -> None:
        self.holding.set()

    def cut(self) -> None:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.cut()
        self.listener.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        while not self.closed.is_set():
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                if sock is self.listener:
                    try:
                        client, _ = self.listener.accept()
                    except OSError:
                        continue
                    upstream = socket.create_connection(self.target)
                    peers[client], peers[upstream] = upstream, client
                    with self.lock:
                        self.pairs.append((client, upstream))
                    selector.register(client, selectors.EVENT_READ)
                    selector.register(upstream, selectors.EVENT_READ, data="upstream")
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._drop(selector, peers, sock)
                    continue
                if key.data == "upstream" and self.holding.is_set():
                    continue
                try:
                    peers[sock].sendall(data)
                except OSError:
                    self._drop(selector, peers, sock)
        selector.close()

    @staticmethod
    def _drop(selector, peers, sock) -> None:
        other = peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            peers.pop(s, None)
            try:
                selector.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
