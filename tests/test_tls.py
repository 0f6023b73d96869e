"""TLS to RabbitMQ for real: a second node with a TLS listener, certificate verification on, every ssl_option."""
from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from kombu import Connection

from relay.amqp.broker import BrokerSettings, TlsSettings
from relay.amqp.publisher import Publisher
from relay.amqp.tls import TlsTransport
from relay.core.errors import BrokerUnavailable
from relay.engine.settings import AmqpTargetSettings, QueueSettings
from relay.engine.targets import engine_for

from . import services
from .tls_node import KEY_PASSWORD, TlsNode


@pytest.fixture(scope="module")
def node():
    started = TlsNode.start()
    try:
        yield started
    finally:
        started.stop()  # always: a leftover node would keep its ports and files


def client_tls(node, **options) -> TlsSettings:
    """TLS settings with the client certificate the node requires, and ``options``."""
    return TlsSettings(certfile=str(node.directory / "client.pem"), keyfile=str(node.directory / "client.key"),
                       password=KEY_PASSWORD, **options)


def broker(node, tls: TlsSettings, host: str = "127.0.0.1") -> BrokerSettings:
    return BrokerSettings(hosts=(host,), port=node.port, tls=tls, connect_timeout=5, confirm_timeout=10)


def connected_version(settings: BrokerSettings) -> str:
    with Publisher(settings) as publisher:
        return publisher.link.connection.connection.transport.sock.version()


def test_events_are_relayed_over_tls_with_the_server_verified(node, source_dsn, pgq_queue):
    tls = client_tls(node, ca_certs=str(node.directory / "ca.pem"))
    target = services.unique("tls")
    with Connection(hostname="127.0.0.1", port=node.port, ssl=tls.context(), transport=TlsTransport) as conn:
        conn.default_channel.queue_declare(target, durable=True, auto_delete=False)
        services.insert_events(source_dsn, pgq_queue, [(target, f"secure-{n}", "", "", "", "") for n in range(50)])
        services.tick(source_dsn, pgq_queue)
        settings = QueueSettings(name=pgq_queue, queue_name=pgq_queue, source_dsn=source_dsn,
                                 target=AmqpTargetSettings(broker(node, tls)), retry_delay=0)

        result = engine_for(settings).run()

        assert (result.published, result.retried, result.dead_lettered) == (50, 0, 0)
        bodies = sorted(services.drain(conn, target, expected=50), key=lambda m: int(m.body.split(b"-")[1]))
        assert [m.body for m in bodies] == [f"secure-{n}".encode() for n in range(50)]


def test_a_wrong_ca_fails_clearly_and_loses_nothing(node, source_dsn, pgq_queue):
    target = services.unique("tls")
    good = client_tls(node, ca_certs=str(node.directory / "ca.pem"))
    services.insert_events(source_dsn, pgq_queue, [(target, f"kept-{n}", "", "", "", "") for n in range(5)])
    services.tick(source_dsn, pgq_queue)
    wrong_ca = client_tls(node, ca_certs=str(node.directory / "other-ca.pem"))
    wrong = QueueSettings(name=pgq_queue, queue_name=pgq_queue, source_dsn=source_dsn,
                          target=AmqpTargetSettings(broker(node, wrong_ca)))

    with pytest.raises(BrokerUnavailable, match="certificate verify failed") as failure:
        engine_for(wrong).run()
    assert f"127.0.0.1:{node.port}" in str(failure.value)
    assert KEY_PASSWORD not in str(failure.value)

    with Connection(hostname="127.0.0.1", port=node.port, ssl=good.context(), transport=TlsTransport) as conn:
        conn.default_channel.queue_declare(target, durable=True, auto_delete=False)
        result = engine_for(QueueSettings(name=pgq_queue, queue_name=pgq_queue, source_dsn=source_dsn,
                                          target=AmqpTargetSettings(broker(node, good)))).run()
        assert result.published == 5
        assert sorted(m.body for m in services.drain(conn, target, expected=5)) == [
            f"kept-{n}".encode() for n in range(5)]


def test_the_server_is_verified_by_name(node):
    # The server certificate names localhost and 127.0.0.1: both connect, with the name checked.
    tls = client_tls(node, ca_certs=str(node.directory / "ca.pem"))
    assert tls.context().check_hostname and tls.context().verify_mode == ssl.CERT_REQUIRED
    assert connected_version(broker(node, tls, host="localhost"))


def test_ca_data_inline_pem_verifies_the_server(node):
    tls = client_tls(node, ca_data=(node.directory / "ca.pem").read_text())
    assert connected_version(broker(node, tls))


def test_ca_path_directory_verifies_the_server(node, tmp_path):
    shutil.copy(node.directory / "ca.pem", tmp_path / "ca.pem")
    subprocess.run(["openssl", "rehash", str(tmp_path)], check=True, capture_output=True)
    assert connected_version(broker(node, client_tls(node, ca_path=str(tmp_path))))


def test_protocol_sets_the_minimum_tls_version(node):
    ca = str(node.directory / "ca.pem")
    assert client_tls(node, ca_certs=ca, protocol="TLSv1_2").context().minimum_version == ssl.TLSVersion.TLSv1_2
    tls13 = client_tls(node, ca_certs=ca, protocol="PROTOCOL_TLSv1_3")
    assert tls13.context().minimum_version == ssl.TLSVersion.TLSv1_3
    assert connected_version(broker(node, tls13)) == "TLSv1.3"
    with pytest.raises(ValueError, match="unknown TLS protocol"):
        TlsSettings(protocol="SSLv2").context()


def test_ciphers_restrict_what_is_offered(node):
    context = client_tls(node, ca_certs=str(node.directory / "ca.pem"), ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    tls12 = [c["name"] for c in context.context().get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == ["ECDHE-RSA-AES128-GCM-SHA256"]
    with pytest.raises(ssl.SSLError):
        TlsSettings(ciphers="NO-SUCH-CIPHER").context()


def test_the_client_certificate_with_a_password_protected_key_is_presented(node):
    ca = str(node.directory / "ca.pem")
    # The node requires a client certificate: the connection works only because it is sent.
    assert connected_version(broker(node, client_tls(node, ca_certs=ca)))
    with pytest.raises(BrokerUnavailable):
        Publisher(broker(node, TlsSettings(ca_certs=ca))).connect()
    with pytest.raises(ssl.SSLError):
        TlsSettings(certfile=str(node.directory / "client.pem"), keyfile=str(node.directory / "client.key"),
                    password="wrong").context()
