"""statsd over a real UDP socket: one socket and one resolution per process, afresh after an error or a fork."""
from __future__ import annotations

import os
import socket
import time

import pytest

from relay.engine.results import RelayResult
from relay.ops.statsd import StatsdSocket, send_batch

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")


@pytest.fixture
def daemon(settings):
    """A UDP socket standing for the statsd daemon; the relay sends to it by the name ``localhost``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        settings.STATSD_HOST, settings.STATSD_PORT, settings.STATSD_PREFIX = "localhost", sock.getsockname()[1], "r"
        yield sock


@pytest.fixture
def resolutions(monkeypatch):
    """The names the relay asks the resolver for (the real resolver answers)."""
    asked: list[str] = []
    resolve = socket.getaddrinfo

    def counting(host, *args, **kwargs):
        asked.append(host)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    return asked


def batch(queue: str = "orders", published: int = 1) -> RelayResult:
    return RelayResult(queue=queue, batches=1, published=published, seconds=0.01)


def receive(daemon: socket.socket, count: int) -> list[tuple[str, int]]:
    """The published-events line of each of ``count`` datagrams, with the port it was sent from."""
    got = []
    for _ in range(count):
        data, (_, port) = daemon.recvfrom(65536)
        got.append((data.decode().splitlines()[1], port))
    return got


def test_batches_go_out_through_one_socket_and_one_resolution(daemon, resolutions):
    for n in range(5):
        send_batch(batch(published=n))

    got = receive(daemon, 5)
    assert [line for line, _ in got] == [f"r.orders.events_published:{n}|c" for n in range(5)]
    assert len({port for _, port in got}) == 1
    assert resolutions == ["localhost"]


def test_the_name_is_resolved_again_after_a_while_on_the_same_socket(daemon, resolutions, monkeypatch):
    monkeypatch.setattr(StatsdSocket, "resolve_seconds", 0.001)
    send_batch(batch())
    time.sleep(0.01)
    send_batch(batch())

    [(_, first), (_, second)] = receive(daemon, 2)
    assert resolutions == ["localhost", "localhost"]
    assert first == second


def test_after_a_failed_send_the_next_batch_starts_afresh_and_arrives(daemon, resolutions, caplog):
    send_batch(batch())
    send_batch(batch(queue="q" * 70_000))  # larger than a datagram can be: the send fails, logged, not raised
    send_batch(batch())

    [(_, before), (_, after)] = receive(daemon, 2)
    assert "statsd localhost" in caplog.text and "Message too long" in caplog.text
    assert resolutions == ["localhost", "localhost"]
    assert before != after  # a new socket


def test_a_forked_child_sends_through_a_socket_of_its_own_and_the_parent_keeps_its_own(daemon):
    send_batch(batch(queue="parent"))
    child = os.fork()
    if child == 0:  # as Celery's prefork pool makes its workers
        try:
            send_batch(batch(queue="child"))
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    send_batch(batch(queue="parent"))

    [(first, parent), (second, forked), (third, parent_again)] = receive(daemon, 3)
    assert (first, second, third) == ("r.parent.events_published:1|c", "r.child.events_published:1|c",
                                      "r.parent.events_published:1|c")
    assert parent == parent_again != forked
