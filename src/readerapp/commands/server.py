"""``readerapp server run|migrate``: the study server (docs/SITES.md tells a site how to run it).

``run`` serves one study (database and file folder) over HTTPS to the workstations and commands
that name it with ``--server URL``; plain HTTP only on the loopback address. ``migrate`` is the
administrator's schema migration (the server itself never migrates), optionally granting the
server's database role its limited rights.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sv = sub.add_parser("server", help="serve a study to workstations over HTTPS (study server)",
                        description="The study server: it alone holds the study's database credentials "
                        "and files; workstations log in to it with their users' own names and passwords.")
    sv_sub = sv.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    r = sv_sub.add_parser("run", help="serve one study until stopped")
    r.add_argument("--db", required=True, metavar="URL",
                   help="the study database (an SQLite file or postgresql+psycopg://server_role@host/db; "
                   "the password from READERAPP_DATABASE_PASSWORD or ~/.pgpass)")
    r.add_argument("--storage", metavar="DIR", help="the study's file folder (only this server reads it)")
    r.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    r.add_argument("--port", type=int, default=8443, help="port (default: 8443)")
    r.add_argument("--tls-cert", metavar="PEM", help="the server's certificate (chain), PEM")
    r.add_argument("--tls-key", metavar="PEM", help="the certificate's private key, PEM")
    r.add_argument("--token-hours", type=float, default=12.0,
                   help="a log-in's longest life in hours (the study's inactivity time ends it sooner)")
    r.add_argument("--audit-key", metavar="FILE",
                   help="the study's audit key file (default: READERAPP_AUDIT_KEY, else beside the study folder)")
    r.set_defaults(func=run_server)
    m = sv_sub.add_parser("migrate", help="bring the study schema up to date (administrator; owner's URL)")
    m.add_argument("--db", required=True, metavar="URL", help="the study database, as its owner")
    m.add_argument("--grant-to", metavar="ROLE",
                   help="the server's PostgreSQL role: may read and write the study, only add audit records")
    m.set_defaults(func=run_migrate)


def _db_url(db: str) -> str:
    import os

    from sqlalchemy.engine import make_url

    password = os.environ.get("READERAPP_DATABASE_PASSWORD")
    if "://" in db and password:
        return make_url(db).set(password=password).render_as_string(hide_password=False)
    return db


def run_server(args: argparse.Namespace) -> int:
    import datetime as dt

    from ..server.run import serve

    serve(_db_url(args.db), args.storage, args.host, args.port, args.tls_cert, args.tls_key,
          token_lifetime=dt.timedelta(hours=args.token_hours), audit_key=args.audit_key)
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from ..study.db import migrate

    for line in migrate(_db_url(args.db), grant_to=args.grant_to):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``readerapp-server ARGS`` is ``readerapp server ARGS`` (the console script a site's service
    unit or container runs)."""
    import sys

    from ..cli import main as cli_main

    return cli_main(["server", *(sys.argv[1:] if argv is None else argv)])
