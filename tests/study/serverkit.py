"""A real study server process for the tests and the benchmark: ``readerapp server run`` on
127.0.0.1 and a free port, with its database role limited by ``server migrate --grant-to``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER_ROLE = "readerapp_server"
SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_database(cluster) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(owner's URL, the server role's URL) of a new database migrated by its owner, with the
    server's role granted what ``server migrate --grant-to`` gives it."""
    from sqlalchemy.engine import make_url

    from readerapp.study.db import migrate

    owner = cluster.create_database(migrated=False)
    cluster.create_role(SERVER_ROLE)
    migrate(owner, grant_to=SERVER_ROLE)
    return owner, cluster.url(make_url(owner).database, user=SERVER_ROLE)


class ServerProcess:
    """``python -m readerapp server run`` in a child process; ``stop`` ends it."""

    def __init__(self, db: str, storage: Path, *extra: str, timeout: float = 60.0):
        self.port = free_port()
        self.url = f"{'https' if '--tls-cert' in extra else 'http'}://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="readerapp-server-", suffix=".log")[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "readerapp", "server", "run", "--db", db, "--storage", str(storage),
                 "--port", str(self.port), *extra],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the study server exited ({self.proc.returncode}): {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the study server did not start: {self.output()}") from None
                time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.unlink(missing_ok=True)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), as a site's own CA would issue one."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "server.pem", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key
