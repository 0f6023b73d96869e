"""A second, throwaway RabbitMQ node with a TLS listener on loopback, and the certificates it needs."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

KEY_PASSWORD = "client-key-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> Path:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-days", "2", "-subj", f"/CN={name}", cwd=directory)
    return directory / f"{name}.pem"


def make_cert(directory: Path, name: str, ca: str, san: str, key_password: str = "") -> None:
    """A key and a certificate signed by ``ca``; the key encrypted when ``key_password`` is given."""
    if key_password:
        openssl("genrsa", "-aes256", "-passout", f"pass:{key_password}", "-out", f"{name}.key", "2048", cwd=directory)
        openssl("req", "-new", "-key", f"{name}.key", "-passin", f"pass:{key_password}", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=directory)
    else:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=directory)
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=directory)


@dataclass
class TlsNode:
    """``rabbitmq-server`` as node ``mikkoo_tls_<unique>@localhost``, TLS only, requiring client certificates."""

    directory: Path
    port: int
    node: str

    @classmethod
    def start(cls) -> TlsNode:
        # Not pytest's tmp_path: rabbitmq-server drops to the rabbitmq user, who cannot enter root's 0700 tree.
        directory = Path(tempfile.mkdtemp(prefix="mikkoo_tls_"))
        os.chmod(directory, 0o755)
        make_ca(directory, "ca")
        make_cert(directory, "server", "ca", "DNS:localhost,IP:127.0.0.1")
        make_cert(directory, "client", "ca", "DNS:client", key_password=KEY_PASSWORD)
        make_ca(directory, "other-ca")
        node = cls(directory, free_port(), f"mikkoo_tls_{uuid.uuid4().hex[:8]}@localhost")
        (directory / "rabbitmq.conf").write_text(
            "listeners.tcp = none\n"
            f"listeners.ssl.1 = 127.0.0.1:{node.port}\n"
            f"ssl_options.cacertfile = {directory / 'ca.pem'}\n"
            f"ssl_options.certfile = {directory / 'server.pem'}\n"
            f"ssl_options.keyfile = {directory / 'server.key'}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = true\n"
            "loopback_users = none\n"
        )
        (directory / "enabled_plugins").write_text("[].\n")  # not the main node's management plugin and its port
        for sub in ("mnesia", "log"):
            (directory / sub).mkdir()
        for path in directory.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        shutil.chown(directory, "rabbitmq", "rabbitmq")
        for path in directory.rglob("*"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        env = {**os.environ, "RABBITMQ_NODENAME": node.node, "RABBITMQ_NODE_PORT": str(free_port()),
               "RABBITMQ_DIST_PORT": str(free_port()), "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
               "RABBITMQ_LOG_BASE": str(directory / "log"), "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
               "RABBITMQ_PID_FILE": str(directory / "node.pid")}
        with open(directory / "server.out", "w") as out:
            subprocess.Popen(["rabbitmq-server"], env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            node.await_startup()
        except BaseException:
            node.stop()
            raise
        return node

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["rabbitmqctl", "-q", "-n", self.node, *args], capture_output=True, text=True,
                              timeout=timeout)

    def await_startup(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        # await_startup fails at once until the node has registered with epmd.
        while self.ctl("await_startup", "--timeout", "60").returncode != 0:
            if time.monotonic() > deadline:
                log = (self.directory / "server.out").read_text()[-2000:]
                raise AssertionError(f"RabbitMQ node {self.node} did not start:\n{log}")
            time.sleep(0.5)

    def stop(self) -> None:
        self.ctl("stop")
        shutil.rmtree(self.directory, ignore_errors=True)
