"""Fixtures of the study tests: a throwaway PostgreSQL cluster, synthetic subjects as DICOM.

The PostgreSQL cluster is made with Debian's ``initdb`` and ``pg_ctl`` on a free port with its
socket in a temporary folder (as root, through ``runuser -u postgres``, since PostgreSQL refuses to
run as root) and is stopped at the end of the session; the tests skip with the reason when the
binaries are absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN_DIRS = [Path(os.environ["READERAPP_PG_BIN"])] if os.environ.get("READERAPP_PG_BIN") else []
PG_BIN_DIRS += [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13)]


def _pg_bin() -> Path | None:
    for d in PG_BIN_DIRS:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="readerapp-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.sock.mkdir()
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        self.user = "postgres" if self.as_root else (os.environ.get("USER") or "postgres")

    def _run(self, *cmd: str) -> None:
        full = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(cmd)
        subprocess.run(full, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses='' -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-t", "30",
                  "-l", str(self.root / "log.txt"), "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, user: str | None = None) -> str:
        return f"postgresql+psycopg://{user or self.user}@/{database}?host={self.sock}&port={self.port}"

    def create_database(self, *, migrated: bool = True) -> str:
        """A new database, by default with the study schema (an administrator's migration:
        clients no longer migrate a server database when they open it)."""
        from sqlalchemy import create_engine, text

        name = "study_" + uuid.uuid4().hex[:10]
        eng = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
        if migrated:
            from readerapp.study.db import migrate

            migrate(self.url(name))
        return self.url(name)

    def create_role(self, name: str) -> None:
        """A log-in role without privileges (the cluster trusts local connections)."""
        from sqlalchemy import create_engine, text

        eng = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            if not c.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}):
                c.execute(text(f'CREATE ROLE "{name}" LOGIN'))
        eng.dispose()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root needs runuser to start PostgreSQL as the postgres user")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed")
    cluster = PgCluster(bin_dir)
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(cluster.root, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL: {exc.stderr.decode(errors='replace')[-300:]}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the session's throwaway cluster."""
    return pg_cluster.create_database()


@pytest.fixture(scope="session")
def raw_study(tmp_path_factory: pytest.TempPathFactory):
    """3 subjects x 4 visits of small phantoms as DICOM with identifying headers (see studykit)."""
    import studykit

    return studykit.build_raw_study(tmp_path_factory.mktemp("raw"))
