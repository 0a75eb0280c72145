"""The study workflow from the command line (docs/STUDY.md has a worked example).

``study create``, ``study import``, ``user add``, ``worklist``, ``read submit``, ``adjudicate``,
``export`` and ``audit verify|export``. Every command takes ``--db URL`` (an SQLite path or a
database URL; default: the program settings' database, else the study in the user's data folder)
or ``--server URL`` (a study server, ``readerapp server run``: the same command, output and exit
codes, with no database credentials or study files on this machine), and reads passwords from
stdin, one per line, so imaging managers can script a study; at a terminal they are asked for
without echo. ``study migrate`` is the administrator's schema migration.
Handlers import the study package lazily so ``readerapp --help`` stays fast.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from ..endpoints import SegmentationSource

SOURCE_CHOICES = tuple(s.value for s in SegmentationSource)

DB_HELP = ("study database: an SQLite file path or a URL such as postgresql+psycopg://user@host/db "
           "(default: the database in the program's settings, else the study in your user data folder)")

VERIFY_FAILED = 3


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--storage", metavar="DIR",
                   help="the study's file folder (default: NAME_files beside an SQLite file; "
                   "for a server database, or set READERAPP_STUDY_STORAGE)")
    p.add_argument("--server", metavar="URL",
                   help="a study server (https://host:port, readerapp server run) instead of --db "
                   "(default: the program settings' study server, if set)")
    p.add_argument("--server-ca", metavar="PEM",
                   help="CA certificate that signed the study server's certificate (default: the system's)")
    p.add_argument("--audit-key", metavar="FILE",
                   help="the study's audit key file (default: READERAPP_AUDIT_KEY, else NAME.audit-key "
                   "beside an SQLite file or FOLDER.audit-key beside a server study's folder)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    st = sub.add_parser("study", help="create a blinded reading study, import scans",
                        description="Set up a study and import scans de-identified under random codes.")
    st_sub = st.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    c = st_sub.add_parser("create", help="create the study from a configuration file (.toml, .json, .yaml)")
    c.add_argument("config", metavar="CONFIG")
    _common(c)
    c.set_defaults(func=run_study_create)
    i = st_sub.add_parser("import", help="import scans (administrator; password on stdin)")
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", metavar="CSV", help="CSV with columns subject, visit, folder[, acquisition_date]")
    src.add_argument("--folder", metavar="DIR", help="a tree DIR/SUBJECT/VISIT/ of DICOM files")
    i.add_argument("--admin", default="admin", metavar="NAME", help="administrator's user name (default: admin)")
    i.add_argument("--accept-burned-in", action="store_true",
                   help="import images flagged BurnedInAnnotation=YES or secondary captures after you "
                   "checked that their pixels show no identity (audited)")
    _common(i)
    i.set_defaults(func=run_study_import)
    mg = st_sub.add_parser(
        "migrate", help="bring a study database's schema up to date (administrator, with the owner's URL)",
        description="Run the schema migrations on a study database (clients never do it as they open "
        "it, except a local SQLite file). On PostgreSQL, --grant-to ROLE then lets the study server's "
        "own role read and write the study but only add to the audit trail (UPDATE/DELETE revoked).")
    mg.add_argument("--db", metavar="URL", required=True, help=DB_HELP)
    mg.add_argument("--grant-to", metavar="ROLE", help="the study server's database role (PostgreSQL)")
    mg.set_defaults(func=run_study_migrate)
    win = st_sub.add_parser("window", help="open the workstation in study mode (log-in, worklist, signing, adjudication)")
    _common(win)
    win.set_defaults(func=run_study_window)
    lk = st_sub.add_parser("links", help="case code to subject, visit and date (administrator or statistician; "
                           "password on stdin)")
    lk.add_argument("--user", required=True, metavar="NAME")
    lk.add_argument("--out", metavar="CSV", help="write CSV here (default: print)")
    _common(lk)
    lk.set_defaults(func=run_study_links)

    u = sub.add_parser("user", help="manage study users")
    u_sub = u.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = u_sub.add_parser(
        "add", help="add a user (stdin: the new password, then the administrator's)",
        description="Add a user. Reads the new user's password from the first line of stdin and the "
        "administrator's password from the second (not needed for the study's first user, who "
        "must be an administrator).")
    a.add_argument("--name", required=True)
    a.add_argument("--role", required=True, choices=("admin", "reader", "adjudicator", "statistician"))
    a.add_argument("--admin", default="admin", metavar="NAME", help="acting administrator (default: admin)")
    _common(a)
    a.set_defaults(func=run_user_add)
    pw = u_sub.add_parser(
        "passwd", help="set a user's password (stdin: the new password, then the acting user's)",
        description="Set a user's password: an administrator for anyone (--admin), a user for themself. "
        "Reads the new password from the first line of stdin and the acting user's from the second. "
        "Clears a lock; audited.")
    pw.add_argument("--name", required=True)
    pw.add_argument("--admin", metavar="NAME", help="acting administrator (default: the user themself)")
    pw.add_argument("--reason", default="", help="why (kept in the audit trail)")
    _common(pw)
    pw.set_defaults(func=run_user_passwd)
    for verb, active in (("disable", False), ("enable", True)):
        d = u_sub.add_parser(verb, help=f"{verb} a user's account (administrator; password on stdin; audited)")
        d.add_argument("--name", required=True)
        d.add_argument("--admin", default="admin", metavar="NAME", help="acting administrator (default: admin)")
        d.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        _common(d)
        d.set_defaults(func=run_user_active, active=active)
    ro = u_sub.add_parser("role", help="change a user's role (administrator; password on stdin; audited)")
    ro.add_argument("--name", required=True)
    ro.add_argument("--role", required=True, choices=("admin", "reader", "adjudicator", "statistician"))
    ro.add_argument("--admin", default="admin", metavar="NAME", help="acting administrator (default: admin)")
    ro.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    _common(ro)
    ro.set_defaults(func=run_user_role)

    w = sub.add_parser("worklist", help="show a reader's (or adjudicator's) worklist (password on stdin)")
    w.add_argument("--user", required=True, metavar="NAME")
    w.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(w)
    w.set_defaults(func=run_worklist)

    r = sub.add_parser("read", help="reads made elsewhere")
    r_sub = r.add_subparsers(dest="read_command", metavar="ACTION", required=True)
    s = r_sub.add_parser(
        "submit", help="submit (and sign) a read of a case (password on stdin)",
        description="Measure LABELS on the case's series, store it as the user's read of the case "
        "and, with --sign, sign it (an electronic signature: the password is checked again).")
    s.add_argument("--case", required=True, metavar="CODE")
    s.add_argument("--user", required=True, metavar="NAME")
    s.add_argument("--labels", required=True, metavar="LABELS",
                   help="label map (NIfTI/NRRD on the series grid) or a read folder")
    s.add_argument("--form", metavar="FORM.json", help="the read form (severity per lobe; fibrosis on Day-90 scans)")
    s.add_argument("--sign", action="store_true", help="sign the read (locks it)")
    s.add_argument("--reason", help="why: required to change a signed read (makes a new version)")
    s.add_argument("--source", choices=SOURCE_CHOICES, default=SegmentationSource.CORRECTED.value)
    _common(s)
    s.set_defaults(func=run_read_submit)

    j = sub.add_parser(
        "adjudicate", help="decide a discordant case (password on stdin)",
        description="Show a discordant case's two reads (--show), or sign its final read: one of "
        "the two (--choose READ_ID) or a correction of one (--correct READ_ID with --labels/--form).")
    j.add_argument("--case", required=True, metavar="CODE")
    j.add_argument("--user", required=True, metavar="NAME")
    how = j.add_mutually_exclusive_group(required=True)
    how.add_argument("--choose", type=int, metavar="READ_ID")
    how.add_argument("--correct", type=int, metavar="READ_ID")
    how.add_argument("--show", action="store_true", help="print both reads' differences and exit")
    j.add_argument("--labels", metavar="LABELS", help="corrected label map (with --correct)")
    j.add_argument("--form", metavar="FORM.json", help="corrected form (with --correct)")
    j.add_argument("--reason", default="", help="why this read is final (required to sign)")
    _common(j)
    j.set_defaults(func=run_adjudicate)

    e = sub.add_parser("export", help="statistician's export: endpoints CSV, DICOM SEG and SR (password on stdin)")
    e.add_argument("--user", required=True, metavar="NAME")
    e.add_argument("--randomization", metavar="CSV", help="randomization list with columns subject, arm")
    e.add_argument("--out", required=True, metavar="DIR")
    e.add_argument("--no-dicom", action="store_true", help="CSV only (no SEG/SR)")
    e.add_argument("--dicom-case", action="append", metavar="CODE",
                   help="SEG/SR only for this case (repeatable; default: every final read)")
    _common(e)
    e.set_defaults(func=run_export)

    au = sub.add_parser("audit", help="check or export the audit trail")
    au_sub = au.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = au_sub.add_parser("verify", help="check the hash chain, its MACs under the audit key, anchors, and that "
                          "no row was changed behind the program's back")
    v.add_argument("--anchor", action="append", default=[], metavar="ANCHOR",
                   help="an anchor printed by `audit anchor` (the text, or a file holding it); repeatable")
    _common(v)
    v.set_defaults(func=run_audit_verify)
    x = au_sub.add_parser("export", help="write the audit trail as CSV (administrator; password on stdin)")
    x.add_argument("--user", required=True, metavar="NAME")
    x.add_argument("--out", required=True, metavar="CSV")
    _common(x)
    x.set_defaults(func=run_audit_export)
    an = au_sub.add_parser("anchor", help="print the chain head signed with the audit key, for the sponsor to "
                           "keep (administrator; password on stdin)")
    an.add_argument("--user", required=True, metavar="NAME")
    an.add_argument("--out", metavar="FILE", help="also write the anchor to FILE")
    _common(an)
    an.set_defaults(func=run_audit_anchor)
    k = au_sub.add_parser("key", help="the audit key")
    k_sub = k.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    kc = k_sub.add_parser("create", help="give a study made before audit keys its key (administrator; password "
                          "on stdin); prints the first anchor")
    kc.add_argument("--user", required=True, metavar="NAME")
    _common(kc)
    kc.set_defaults(func=run_audit_key_create)


# --- helpers ---------------------------------------------------------------------------------
class _Passwords:
    """Passwords one per line from stdin; at a terminal, asked for without echo."""

    def __init__(self) -> None:
        self._lines: list[str] | None = None

    def get(self, prompt: str) -> str:
        from ..study.errors import AuthenticationError

        if sys.stdin is not None and sys.stdin.isatty():
            return getpass.getpass(prompt)
        if self._lines is None:
            self._lines = [] if sys.stdin is None else sys.stdin.read().splitlines()
        if not self._lines:
            raise AuthenticationError(f"expected a password on stdin ({prompt.strip(': ')})")
        return self._lines.pop(0)


def study_location(db: str | None, storage: str | None) -> tuple[str, str | None]:
    """The study database and file folder a command uses.

    ``--db`` wins (with ``--storage`` or the study workflow's own default folder). Without it,
    the program's settings decide: the site's database chosen in the first-run dialog or with
    ``readerapp settings`` and its shared study folder, else the local SQLite study in the user's
    data folder. The settings' folder is not applied to a database named on the command line,
    which may be a different study.
    """
    if db:
        return db, storage
    from ..settings import load_settings

    settings = load_settings()
    return settings.effective_database_url(), storage or settings.effective_study_storage()


def audit_key_location(db: str | None, audit_key: str | None) -> str | None:
    """``--audit-key``, else (for the settings' study, when no ``--db``) the settings'
    ``audit_key_file``, else None: ``READERAPP_AUDIT_KEY`` or the file beside the study."""
    if audit_key or db:
        return audit_key
    import os

    if os.environ.get("READERAPP_AUDIT_KEY"):
        return None
    from ..settings import load_settings

    return load_settings().audit_key_file or None


def _service(args: argparse.Namespace):
    """The one place that picks the backend: a study server (``--server``, or the settings' study
    server when no ``--db`` is given) or the local study service."""
    from ..server import open_study

    server, cafile = getattr(args, "server", None), getattr(args, "server_ca", None)
    if server is None and not args.db and not args.storage:
        from ..settings import load_settings

        settings = load_settings()
        server, cafile = settings.study_server or None, cafile or settings.study_server_ca or None
    if server:
        client = open_study(server=server, db=args.db, storage=args.storage, cafile=cafile)
        if sys.stderr is not None and sys.stderr.isatty():
            client.progress = _transfer_progress
        return client
    return open_study(*study_location(args.db, args.storage),
                      audit_key=audit_key_location(args.db, getattr(args, "audit_key", None)))


def _transfer_progress(done: int, total: int) -> None:
    """A one-line transfer counter on the terminal (uploads and downloads through a server)."""
    end = "\n" if done >= total else ""
    print(f"\r  {done / 2**20:8.1f} of {total / 2**20:.1f} MiB", end=end, file=sys.stderr, flush=True)


def _login(svc: Any, name: str, pw: _Passwords) -> Any:
    return svc.login(name, pw.get(f"password for {name}: "))


def _form_arg(path: str | None) -> Any:
    if path is None:
        return None
    from ..study.errors import ImportDataError

    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImportDataError(f"{p}: cannot read the form as JSON ({exc})") from exc


def _labels_and_form(labels: str, form: str | None) -> tuple[Path, Any]:
    """A label file, or a read folder (its labels.nii.gz, and its form.json unless --form)."""
    p = Path(labels)
    f = _form_arg(form)
    if p.is_dir():
        if f is None and (p / "form.json").is_file():
            f = _form_arg(str(p / "form.json"))
        p = p / "labels.nii.gz"
    return p, f


# --- handlers --------------------------------------------------------------------------------
def run_study_create(args: argparse.Namespace) -> int:
    from ..study.config import load_config

    cfg = load_config(args.config)
    svc = _service(args)
    svc.create_study(cfg)
    print(f"created study {cfg.name!r} in {svc.describe()}")
    print("next: add the first user, an administrator: readerapp user add --name admin --role admin")
    return 0


def run_study_import(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.admin, _Passwords())
    ok = args.accept_burned_in
    codes = (svc.import_manifest(actor, args.manifest, accept_burned_in=ok) if args.manifest
             else svc.import_folder(actor, args.folder, accept_burned_in=ok))
    print(f"imported {len(codes)} scan(s) de-identified under random case codes")
    return 0


def run_study_window(args: argparse.Namespace) -> int:
    from ..gui.study.workstation import run_study_window as run

    return run(_service(args))


def run_study_links(args: argparse.Namespace) -> int:
    import csv
    import io

    svc = _service(args)
    actor = _login(svc, args.user, _Passwords())
    rows = svc.case_links(actor)
    buf = io.StringIO()
    from .. import __version__

    w = csv.DictWriter(buf, fieldnames=["code", "subject", "visit", "acquisition_date", "software_version"],
                       lineterminator="\n")
    w.writeheader()
    from ..study.private import csv_cell

    # subjects and visits come from the import manifest: never let a cell run as a formula
    w.writerows({k: csv_cell(v) for k, v in {**r, "software_version": __version__}.items()} for r in rows)
    if args.out:
        from ..study.private import write_private_text

        write_private_text(args.out, buf.getvalue())  # the unblinding key: owner-only
        print(f"wrote {len(rows)} links to {args.out}")
        if svc.has_audit_key():  # the audit trail's signed head as of this export
            from ..study.private import anchor_path

            write_private_text(anchor_path(args.out), svc.audit_anchor(actor) + "\n")
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def run_study_migrate(args: argparse.Namespace) -> int:
    from ..study.db import migrate

    for line in migrate(args.db, grant_to=args.grant_to):
        print(line)
    return 0


def run_user_add(args: argparse.Namespace) -> int:
    svc = _service(args)
    pw = _Passwords()
    new_password = pw.get(f"new password for {args.name}: ")
    actor = None if not svc.has_users() else _login(svc, args.admin, pw)
    svc.add_user(actor, args.name, args.role, new_password)
    print(f"added {args.role} {args.name}")
    return 0


def run_worklist(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.user, _Passwords())
    if actor.role.value == "adjudicator":
        items = svc.adjudication_worklist(actor)
        rows = [{"code": e.code, "status": e.status, "reasons": list(e.reasons)} for e in items]
    else:
        rows = [
            {k: v for k, v in vars(e).items() if not (k == "visit" and v is None)}
            for e in svc.worklist(actor)
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif actor.role.value == "adjudicator":
        for row in rows:
            print(f"{row['code']}  {row['status']:<11}  {'; '.join(row['reasons'])}")
    else:
        for row in rows:
            extra = "  fibrosis form" if row["needs_fibrosis"] else ""
            visit = f"  {row['visit']}" if "visit" in row else ""
            read = f"  read {row['read_id']} v{row['version']}" if row["read_id"] else ""
            print(f"{row['position']:>4}  {row['code']}  {row['status']:<11}{visit}{read}{extra}")
    return 0


def run_read_submit(args: argparse.Namespace) -> int:
    svc = _service(args)
    pw = _Passwords()
    password = pw.get(f"password for {args.user}: ")
    actor = svc.login(args.user, password)
    labels, form = _labels_and_form(args.labels, args.form)
    info = svc.save_read(actor, args.case, labels, form, source=args.source, reason=args.reason)
    if args.sign:
        info = svc.sign_read(actor, info.id, password)
    print(json.dumps({"read_id": info.id, "case": info.case_code, "version": info.version,
                      "status": info.status, "lesion_pct": info.endpoints.get("lesion_pct")}))
    return 0


def run_adjudicate(args: argparse.Namespace) -> int:
    from ..study.errors import StudyError

    svc = _service(args)
    pw = _Passwords()
    password = pw.get(f"password for {args.user}: ")
    actor = svc.login(args.user, password)
    if args.show:
        view = svc.adjudication_view(actor, args.case)
        print(json.dumps({
            "case": view.code, "why_discordant": list(view.reasons),
            "read_a": view.read_a.id, "read_b": view.read_b.id,
            "differences": {k: {"a": a, "b": b} for k, (a, b) in view.differences.items()},
        }, indent=2))
        return 0
    if not args.reason.strip():
        raise StudyError("give --reason: an adjudication is signed with the reason for the final read")
    if args.choose is not None:
        info = svc.adjudicate(actor, args.case, password, args.reason, choose=args.choose)
    else:
        labels, form = (None, _form_arg(args.form))
        if args.labels:
            labels, f2 = _labels_and_form(args.labels, args.form)
            form = form if form is not None else f2
        info = svc.adjudicate(actor, args.case, password, args.reason, based_on=args.correct,
                              labels=labels, form=form)
    print(json.dumps({"case": args.case, "final_read_id": info.id, "lesion_pct": info.endpoints.get("lesion_pct")}))
    return 0


def run_export(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.user, _Passwords())
    res = svc.export(actor, args.out, args.randomization, dicom=not args.no_dicom,
                     dicom_cases=args.dicom_case)
    print(f"wrote {res.csv_path} ({res.rows} rows) and {len(res.dicom_files)} DICOM file(s)")
    for p in res.problems:
        print(f"warning: {p}", file=sys.stderr)
    return 0


def _anchor_text(value: str) -> str:
    p = Path(value)
    if not value.startswith("RA-ANCHOR") and p.is_file():
        return p.read_text(encoding="utf-8").strip()
    return value


def run_audit_verify(args: argparse.Namespace) -> int:
    svc = _service(args)
    rep = svc.audit_verify([_anchor_text(a) for a in args.anchor])
    for note in rep.notes:
        print(f"note: {note}")
    if rep.ok:
        how = (f"{rep.authenticated} authenticated by the audit key" if rep.authenticated
               else "hash chain only, NOT authenticated (no audit key)")
        anchored = f", {len(args.anchor)} anchor(s) match" if args.anchor else ""
        print(f"audit trail intact: {rep.records} records ({how}{anchored}), every audited row matches")
        return 0
    print(f"audit trail check FAILED ({len(rep.problems)} problem(s)):")
    for p in rep.problems:
        print(f"  {p}")
    return VERIFY_FAILED


def run_audit_anchor(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.user, _Passwords())
    anchor = svc.audit_anchor(actor)
    if args.out:
        from ..study.private import write_private_text

        write_private_text(args.out, anchor + "\n")
    print(anchor)
    return 0


def run_audit_key_create(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.user, _Passwords())
    anchor = svc.audit_key_create(actor)
    print(f"audit key written to {svc.audit_key_where()} (mode 0600): keep it where the database's "
          "administrators cannot write; the sponsor keeps this first anchor:", file=sys.stderr)
    print(anchor)
    return 0


def run_user_passwd(args: argparse.Namespace) -> int:
    svc = _service(args)
    pw = _Passwords()
    new_password = pw.get(f"new password for {args.name}: ")
    actor = _login(svc, args.admin or args.name, pw)
    svc.set_password(actor, args.name, new_password, args.reason)
    print(f"password of {args.name} set")
    return 0


def run_user_active(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.admin, _Passwords())
    svc.set_user_active(actor, args.name, args.active, args.reason)
    print(f"{args.name} {'enabled' if args.active else 'disabled'}")
    return 0


def run_user_role(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.admin, _Passwords())
    svc.set_user_role(actor, args.name, args.role, args.reason)
    print(f"{args.name} is now {args.role}")
    return 0


def run_audit_export(args: argparse.Namespace) -> int:
    svc = _service(args)
    actor = _login(svc, args.user, _Passwords())
    n = svc.audit_export(actor, args.out)
    print(f"wrote {n} audit records to {args.out}")
    return 0
