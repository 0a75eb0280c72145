"""Opening a study database: URL resolution, engine set-up and schema migration on open.

An SQLite file needs no set-up (the default lives in the user's data folder); PostgreSQL is named by
URL (``postgresql+psycopg://user@host/db``) and served by ``readerapp server run``. Alembic
migrations ship inside the package, so no ``alembic.ini`` is needed by users. A local SQLite file is
brought up to date when opened (one user, one file); any other database is migrated only by an
administrator's command (``readerapp study migrate`` / ``readerapp server migrate``, with
:func:`migrate`), which on PostgreSQL also grants the server's own role what it may do: everything
but changing or deleting audit records.

Images and label maps live in a storage folder next to the database: for SQLite, ``NAME_files``
beside ``NAME.sqlite``; for a server database, the folder given by ``storage`` or the environment
variable ``READERAPP_STUDY_STORAGE`` (a share every workstation mounts).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .auditkey import AuditKey, default_key_path, load_key
from .errors import StudyError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
STORAGE_ENV = "READERAPP_STUDY_STORAGE"


def default_db_path() -> Path:
    """The default SQLite study in the user's data folder (created on first use); the same file
    as the program settings' embedded default (``READERAPP_DATA_DIR`` moves both)."""
    from ..settings import data_dir

    return data_dir() / "study" / "study.sqlite"


def resolve_db_url(db: str | os.PathLike[str] | None) -> str:
    """A URL as given, a plain path as an SQLite URL, nothing as the default study."""
    if db is None or str(db) == "":
        path = default_db_path()
    elif "://" in str(db):
        return str(db)
    else:
        path = Path(db).expanduser()
    return f"sqlite:///{path.resolve()}"


def storage_dir_for(url: str, storage: str | os.PathLike[str] | None = None) -> Path:
    """Where the study's files live for a database URL (see the module docstring)."""
    if storage:
        return Path(storage).expanduser().resolve()
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        p = Path(u.database)
        return p.with_name(p.stem + "_files")
    env = os.environ.get(STORAGE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    raise StudyError(
        f"the study database {u.render_as_string(hide_password=True)} is not a local file: name the "
        f"shared study folder with --storage DIR or the environment variable {STORAGE_ENV}"
    )


def _sqlite_engine(url: str) -> Engine:
    u = make_url(url)
    if u.database and u.database != ":memory:":
        # A local study is its owner's alone (docs/STUDY.md): a new folder 0700, the file 0600
        # (SQLite gives its journal and WAL files the database file's mode).
        from .private import FILE_MODE, private_dir

        db_path = Path(u.database)
        if not db_path.parent.exists():
            private_dir(db_path.parent)
        if not db_path.exists():
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy drive transactions and start each with BEGIN IMMEDIATE: writers then queue
        # on the busy timeout instead of failing on a lock upgrade (SQLAlchemy's documented recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StudyError(f"not a database URL: {url!r} ({exc})") from exc
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    try:
        # A study server answers many readers at once: room for that many connections.
        return create_engine(u, pool_pre_ping=True, pool_size=10, max_overflow=30)
    except Exception as exc:  # missing driver etc.
        raise StudyError(f"cannot use the database {u.render_as_string(hide_password=True)}: {exc}") from exc


#: Alembic's ``context`` is process-global: one migration run at a time per process.
_MIGRATION_LOCK = threading.Lock()
#: Key of the PostgreSQL advisory lock that serialises migrations between workstations.
_PG_MIGRATION_LOCK_KEY = 0x52454144  # "READ"


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (no-op when already there)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _MIGRATION_LOCK, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's schema revision or None, the newest revision this program knows)."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def check_schema(engine: Engine, url: str) -> None:
    """Refuse a database whose schema is not the program's (no migration as a side effect)."""
    current, head = _revisions(engine)
    if current != head:
        shown = make_url(url).render_as_string(hide_password=True)
        state = "has no study schema" if current is None else f"has schema revision {current}"
        raise StudyError(
            f"the study database {shown} {state}; this program needs {head}: an administrator runs "
            f"readerapp study migrate --db URL (with the database owner's credentials)"
        )


#: Tables the server's role may only add to and read (the audit trail and its anchors).
APPEND_ONLY_PREFIXES = ("audit_log", "audit_anchor")


def _append_only(table: str) -> bool:
    return table.startswith(APPEND_ONLY_PREFIXES)


def migrate(db: str | os.PathLike[str] | None, grant_to: str | None = None) -> list[str]:
    """An administrator's command: bring the schema to the newest migration, and on PostgreSQL
    give the role ``grant_to`` (the study server's) SELECT/INSERT/UPDATE/DELETE on the study's
    tables but only SELECT/INSERT on the audit tables (UPDATE/DELETE revoked). Returns what was
    done, one line each."""
    url = resolve_db_url(db)
    engine = make_engine(url)
    done: list[str] = []
    try:
        before, head = _revisions(engine)
        upgrade_schema(engine)
        done.append(f"schema {before or 'none'} -> {head}" if before != head else f"schema already at {head}")
        if grant_to:
            if engine.dialect.name != "postgresql":
                raise StudyError("--grant-to needs a PostgreSQL database (SQLite has no roles)")
            done += _grant(engine, grant_to)
    except OperationalError as exc:
        raise StudyError(
            f"cannot migrate the study database {make_url(url).render_as_string(hide_password=True)}: {exc.orig}"
        ) from exc
    finally:
        engine.dispose()
    return done


def _grant(engine: Engine, role: str) -> list[str]:
    from sqlalchemy import inspect

    q = engine.dialect.identifier_preparer.quote
    r = q(role)
    out = []
    with engine.begin() as conn:
        tables = inspect(conn).get_table_names()
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}"))
        conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {r}"))
        conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}"))
        for t in tables:
            if t == "alembic_version":
                conn.execute(text(f"GRANT SELECT ON {q(t)} TO {r}"))
            elif _append_only(t):
                conn.execute(text(f"GRANT SELECT, INSERT ON {q(t)} TO {r}"))
                conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {q(t)} FROM {r}"))
                out.append(f"{role}: SELECT, INSERT only on {t}")
            else:
                conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {q(t)} TO {r}"))
    out.append(f"{role}: SELECT, INSERT, UPDATE, DELETE on the other {len(tables) - len(out) - 1} tables")
    return out


class Database:
    """An engine, a session factory and the storage folder of one study database.

    ``migrate``: bring the schema up to date on open (default: only for a local SQLite file; any
    other database must already have been migrated by an administrator, see :func:`migrate`)."""

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        storage: str | os.PathLike[str] | None = None,
        *,
        audit_key: str | os.PathLike[str] | None = None,
        migrate: bool | None = None,
    ):
        self.url = resolve_db_url(db)
        self.engine = make_engine(self.url)
        if migrate is None:
            migrate = self.engine.dialect.name == "sqlite"
        try:
            if migrate:
                upgrade_schema(self.engine)
            else:
                check_schema(self.engine, self.url)
        except OperationalError as exc:
            raise StudyError(
                f"cannot open the study database {make_url(self.url).render_as_string(hide_password=True)}: "
                f"{exc.orig}"
            ) from exc
        self.storage = storage_dir_for(self.url, storage)
        #: A local (SQLite) study: its files are created readable by their owner only. A server
        #: study's shared folder keeps the site's own permissions (several accounts share it).
        self.private = self.engine.dialect.name == "sqlite"
        self.audit_key_path = (Path(audit_key).expanduser().resolve() if audit_key
                               else default_key_path(self.url, self.storage))
        self._audit_key: AuditKey | None = None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def audit_key(self) -> AuditKey | None:
        """The study's audit key (see :mod:`readerapp.study.auditkey`), None if there is none."""
        if self._audit_key is None:
            self._audit_key = load_key(self.audit_key_path)
        return self._audit_key

    def make_dir(self, path: Path) -> Path:
        """Create a folder of the study (owner-only for a local study)."""
        if self.private:
            from .private import private_dir

            return private_dir(path)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def install_audit_key(self, key: AuditKey) -> None:
        self._audit_key = key

    @contextmanager
    def transaction(self, *, snapshot: bool = False) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any error.

        ``snapshot`` reads everything from one snapshot (REPEATABLE READ on PostgreSQL; an SQLite
        transaction holds the write lock and sees one state anyway): for checks that read many
        tables, such as ``audit verify``, while others write."""
        with self._sessions.begin() as session:
            session.info["audit_key"] = self.audit_key
            session.info["audit_key_path"] = self.audit_key_path
            if snapshot and self.engine.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
