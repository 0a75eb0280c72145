"""``readerapp pacs ...`` and ``readerapp settings ...``: PACS nodes and program settings.

``pacs add|nodes|echo|query|retrieve|send|send-read`` talk to the nodes configured in the settings (see
docs/SITES.md); ``settings show|set|path|password`` edit those settings. Handlers import the PACS
libraries lazily so ``readerapp --help`` stays fast.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "pacs", help="query and retrieve CT from a PACS, send reads back",
        description="Talk to the PACS nodes configured in the settings (DICOMweb or DIMSE).",
    )
    ps = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    a = ps.add_parser("add", help="add or replace a PACS node in the settings")
    a.add_argument("name")
    kind = a.add_mutually_exclusive_group(required=True)
    kind.add_argument("--url", help="DICOMweb base URL, e.g. https://pacs.example.org/dicom-web")
    kind.add_argument("--host", help="DIMSE host name or address")
    a.add_argument("--port", type=int, default=104, help="DIMSE port (default 104)")
    a.add_argument("--ae", dest="ae_title", default="", help="the PACS's AE title (DIMSE)")
    a.add_argument("--user", dest="username", default="", help="DICOMweb user (password: "
                   "'readerapp settings password --pacs NAME' or READERAPP_PACS_PASSWORD_NAME)")
    a.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer (default 30)")
    a.add_argument("--no-verify-tls", action="store_true", help="do not check the server's TLS certificate")
    a.add_argument("--default", action="store_true", help="make it the default node")
    a.set_defaults(func=run_add)

    n = ps.add_parser("nodes", help="list the configured PACS nodes")
    n.set_defaults(func=run_nodes)

    e = ps.add_parser("echo", help="check that a node answers (C-ECHO or a QIDO-RS query)")
    e.add_argument("node", nargs="?", help="node name (default: the default node)")
    e.set_defaults(func=run_echo)

    q = ps.add_parser("query", help="find CT studies (or, with --study, their series)")
    q.add_argument("--node", help="node name (default: the default node)")
    q.add_argument("--patient-id", default="")
    q.add_argument("--patient-name", default="", help="DICOM wildcards allowed, e.g. 'DOE^J*'")
    q.add_argument("--date", dest="study_date", default="", help="YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    q.add_argument("--accession", dest="accession_number", default="")
    q.add_argument("--study", dest="study_uid", default="", help="list this study's CT series")
    q.add_argument("--limit", type=int, default=None)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=run_query)

    r = ps.add_parser(
        "retrieve", help="retrieve a study's CT series (resumable); optionally import it blinded",
        description="Retrieve the CT series of a study into the staging folder. An interrupted "
        "retrieve resumes when run again. With --subject and --visit the series is then imported "
        "into the study (de-identified on arrival; the administrator's password is read from "
        "stdin or asked for) and the identifiable staged copy is removed.",
    )
    r.add_argument("--node", help="node name (default: the default node)")
    r.add_argument("--study", dest="study_uid", required=True, metavar="UID")
    r.add_argument("--series", dest="series_uid", default="", metavar="UID", help="only this series")
    r.add_argument("--route", choices=("wado", "get", "move"), default="",
                   help="DICOMweb: wado; DIMSE: get (default) or move")
    r.add_argument("--dest", help="staging folder (default: from the settings)")
    r.add_argument("--subject", help="import as this subject ...")
    r.add_argument("--visit", help="... and this visit")
    r.add_argument("--accept-burned-in", action="store_true",
                   help="import images flagged BurnedInAnnotation=YES or secondary captures after you "
                   "checked that their pixels show no identity (audited)")
    r.add_argument("--admin", default="admin", help="study administrator's user name (default admin)")
    r.add_argument("--db", metavar="URL", help="study database (default: from the settings)")
    r.add_argument("--storage", metavar="DIR", help="study file folder (default: from the settings)")
    r.add_argument("--server", metavar="URL", help="a study server instead of --db (default: from the settings)")
    r.add_argument("--server-ca", metavar="PEM", help="CA certificate of the study server")
    r.add_argument("--audit-key", metavar="FILE", help="the study's audit key file (default: "
                   "READERAPP_AUDIT_KEY, else beside the study)")
    r.add_argument("--keep-staging", action="store_true", help="keep the identifiable staged copy")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=run_retrieve)

    s = ps.add_parser("send", help="send DICOM files (SEG, SR) to a node (STOW-RS or C-STORE)")
    s.add_argument("paths", nargs="+", metavar="PATH", help="files or folders of .dcm files")
    s.add_argument("--node", help="node name (default: the default node)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=run_send)

    sr = ps.add_parser(
        "send-read", help="send a final read back as DICOM SEG + SR referencing the PACS's series",
        description="Send a read back to the PACS, as a DICOM SEG of its label map and a TID 1500 "
        "measurement report (SR) of its endpoints, both referencing the ORIGINAL series so the PACS "
        "files them with the source images. With --case, the study's final read(s) of that case "
        "(the adjudicated read, or both concordant reads) and its original UIDs come from the study "
        "database (administrator or statistician; password on stdin), and the send is audited as an "
        "export. Otherwise READ is a read folder (labels.nii.gz, endpoints.json, read.json) and "
        "--study/--series name the original series. The original series is retrieved again "
        "(resumable) and the staged copy removed afterwards.",
    )
    sr.add_argument("read", metavar="READ", nargs="?", help="a read folder (without --case)")
    sr.add_argument("--case", metavar="CODE", help="send this study case's final read(s)")
    sr.add_argument("--user", metavar="NAME", help="with --case: administrator or statistician")
    sr.add_argument("--read-id", type=int, metavar="READ_ID",
                    help="with --case: only this one of the final reads (a concordant case has two)")
    sr.add_argument("--db", metavar="URL", help="with --case: study database (default: from the settings)")
    sr.add_argument("--storage", metavar="DIR", help="with --case: study file folder (default: from the settings)")
    sr.add_argument("--server", metavar="URL", help="with --case: a study server instead of --db")
    sr.add_argument("--server-ca", metavar="PEM", help="CA certificate of the study server")
    sr.add_argument("--audit-key", metavar="FILE", help="with --case: the study's audit key file (default: "
                    "READERAPP_AUDIT_KEY, else beside the study)")
    sr.add_argument("--study", dest="study_uid", default="", metavar="UID",
                    help="original StudyInstanceUID (without --case)")
    sr.add_argument("--series", dest="series_uid", default="", metavar="UID",
                    help="original SeriesInstanceUID (without --case)")
    sr.add_argument("--node", help="node name (default: the default node)")
    sr.add_argument("--route", choices=("wado", "get", "move"), default="")
    sr.add_argument("--out", metavar="DIR", help="also keep the SEG and SR here")
    sr.add_argument("--quiet", action="store_true")
    sr.set_defaults(func=run_send_read)

    st = sub.add_parser(
        "settings", help="show or change the program's settings",
        description="Program settings (database, PACS nodes, staging folder) in the folder your "
        "platform expects; passwords are kept apart (see docs/SITES.md).",
    )
    sts = st.add_subparsers(dest="settings_command", metavar="ACTION", required=True)
    sh = sts.add_parser("show", help="print the effective settings (JSON)")
    sh.set_defaults(func=run_settings_show)
    se = sts.add_parser("set", help="set one value, e.g. database_url or pacs.main.port")
    se.add_argument("key")
    se.add_argument("value")
    se.set_defaults(func=run_settings_set)
    sp = sts.add_parser("path", help="print where the settings and credentials files are")
    sp.set_defaults(func=run_settings_path)
    pw = sts.add_parser("password", help="store a password in the private credentials file (0600)")
    who = pw.add_mutually_exclusive_group(required=True)
    who.add_argument("--pacs", metavar="NODE")
    who.add_argument("--database", action="store_true")
    pw.set_defaults(func=run_settings_password)


# -- helpers ---------------------------------------------------------------------------------------
def _read_secret(prompt: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        from ..settings import SettingsError

        raise SettingsError(f"expected a password on stdin ({prompt.strip(': ')})")
    return line.rstrip("\r\n")


def _progress(label: str, quiet: bool):  # type: ignore[no-untyped-def]
    from ..progress import no_progress

    if quiet:
        return no_progress
    from ._progress_bar import ProgressBar

    return ProgressBar(label)


def _client(name: str | None):  # type: ignore[no-untyped-def]
    from ..pacs import open_client

    return open_client(name)


# -- pacs ------------------------------------------------------------------------------------------
def run_add(args: argparse.Namespace) -> int:
    from ..settings import PacsNode, load_settings, save_settings

    s = load_settings()
    if args.url:
        node = PacsNode(kind="dicomweb", url=args.url, username=args.username, timeout_s=args.timeout,
                        verify_tls=not args.no_verify_tls)
    else:
        node = PacsNode(kind="dimse", host=args.host, port=args.port, ae_title=args.ae_title,
                        timeout_s=args.timeout)
    node.check(args.name)
    s.pacs[args.name] = node
    if args.default or not s.default_pacs:
        s.default_pacs = args.name
    path = save_settings(s)
    print(f"PACS node {args.name!r}: {node.describe()} (saved in {path})")
    return 0


def run_nodes(args: argparse.Namespace) -> int:
    from ..settings import load_settings

    s = load_settings()
    if not s.pacs:
        print("no PACS nodes configured (readerapp pacs add NAME --url URL | --host HOST --ae AE)")
    for name, node in s.pacs.items():
        mark = "*" if name == s.default_pacs else " "
        print(f"{mark} {name}: {node.describe()}")
    return 0


def run_echo(args: argparse.Namespace) -> int:
    client = _client(args.node)
    try:
        print(client.echo())
    finally:
        client.close()
    return 0


def run_query(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    client = _client(args.node)
    try:
        if args.study_uid:
            rows: list[Any] = client.find_series(args.study_uid)
        else:
            rows = client.find_studies(
                patient_id=args.patient_id, patient_name=args.patient_name, study_date=args.study_date,
                accession_number=args.accession_number, limit=args.limit,
            )
    finally:
        client.close()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("nothing found")
    for r in rows:
        if args.study_uid:
            print(f"{r.series_uid}  {r.modality}  #{r.series_number}  {r.n_instances or '?'} images  {r.description}")
        else:
            print(f"{r.study_uid}  {r.study_date}  {r.patient_id}  {r.patient_name}  "
                  f"{'/'.join(r.modalities)}  {r.n_series or '?'} series  {r.description}")
    return 0


def run_retrieve(args: argparse.Namespace) -> int:
    from ..errors import PacsError
    from ..pacs.pull import import_series, retrieve_study
    from ..settings import load_settings

    if bool(args.subject) != bool(args.visit):
        raise PacsError("--subject and --visit go together (both, to import; neither, to only retrieve)")
    settings = load_settings()
    dest = Path(args.dest) if args.dest else settings.effective_staging_dir()
    service = actor = None
    if args.subject:  # log in before the transfer, so a wrong password costs nothing
        from .study import _service

        service = _service(args)  # the local study or the study server, as the study commands
        actor = service.login(args.admin, _read_secret(f"password for {args.admin}: "))
    from ..pacs import open_client

    client = open_client(args.node, settings)
    bar = _progress("retrieve", args.quiet)
    try:
        if service is not None and not args.series_uid:
            from ..pacs.pull import pick_series

            hits = pick_series(client, args.study_uid)
            if len(hits) != 1:
                raise PacsError(
                    f"study {args.study_uid} has {len(hits)} CT series: name the one to import with "
                    "--series (see 'readerapp pacs query --study UID')"
                )
        results = retrieve_study(client, args.study_uid, dest, series_uid=args.series_uid,
                                 route=args.route, progress=bar)
    finally:
        client.close()
        if hasattr(bar, "close"):
            bar.close()
    for res in results:
        state = "complete" if res.complete else f"INCOMPLETE ({len(res.failed)} missing; run again to resume)"
        print(f"series {res.series_uid}: {res.received} retrieved, {res.skipped} already present, "
              f"{state} -> {res.folder}")
    if service is not None:
        code = import_series(results[0], service, actor, args.subject, args.visit,
                             keep_staging=args.keep_staging, accept_burned_in=args.accept_burned_in)
        print(f"imported as case {code}")
    return 0 if all(r.complete for r in results) else 2


def run_send(args: argparse.Namespace) -> int:
    from ..pacs.pull import send_files

    client = _client(args.node)
    bar = _progress("send", args.quiet)
    try:
        result = send_files(client, [Path(p) for p in args.paths], bar)
    finally:
        client.close()
        if hasattr(bar, "close"):
            bar.close()
    print(f"sent {result.sent} object(s) to {client.name}")
    return 0


def _case_reads(args: argparse.Namespace) -> tuple[Any, Any, Any, list[Any]]:
    """(study backend, actor, case original, reads to send) for ``send-read --case``."""
    from ..errors import PacsError
    from ..pacs.study_actions import final_reads_to_send
    from .study import _service

    if args.read or args.study_uid or args.series_uid:
        raise PacsError("send-read --case takes the read and the original UIDs from the study: "
                        "give neither READ nor --study/--series")
    if not args.user:
        raise PacsError("send-read --case needs --user NAME (an administrator or the statistician)")
    service = _service(args)
    actor = service.login(args.user, _read_secret(f"password for {args.user}: "))
    orig, reads = final_reads_to_send(service, actor, args.case, args.read_id)
    return service, actor, orig, reads


def run_send_read(args: argparse.Namespace) -> int:
    import tempfile

    from ..errors import PacsError
    from ..pacs.pull import ReadToSend, send_reads
    from ..readfile import LABELS_NAME, load_read
    from ..settings import load_settings

    service = actor = orig = None
    if args.case:
        service, actor, orig, reads = _case_reads(args)
        study_uid, series_uid = orig.original_study_uid, orig.original_series_uid
    else:
        if not args.read or not args.study_uid or not args.series_uid:
            raise PacsError("send-read needs READ with --study and --series, or --case CODE")
        if args.user or args.read_id is not None:
            raise PacsError("--user and --read-id go with --case")
        rd = load_read(Path(args.read))
        reads = [ReadToSend("read", Path(args.read) / rd.meta.get("labels_file", LABELS_NAME), rd.endpoints)]
        study_uid, series_uid = args.study_uid, args.series_uid
    settings = load_settings()
    client = _client(args.node)
    bar = _progress("send-read", args.quiet)
    try:
        with tempfile.TemporaryDirectory(prefix="readerapp-results-") as tmp:
            out = Path(args.out) if args.out else Path(tmp)
            if service is not None:  # the study's use case: send, then audit the send
                from ..pacs.study_actions import send_final_reads

                result = send_final_reads(client, service, actor, args.case, settings.effective_staging_dir(),
                                          out, prepared=(orig, reads), route=args.route, progress=bar).result
            else:
                result, _files = send_reads(client, reads, study_uid, series_uid,
                                            settings.effective_staging_dir(), route=args.route, out_dir=out,
                                            progress=bar)
    finally:
        client.close()
        if hasattr(bar, "close"):
            bar.close()
    what = f"case {args.case}'s final read(s)" if args.case else "the read"
    print(f"sent {what} as {result.sent} object(s) (DICOM SEG + SR per read) to {client.name}, "
          f"referencing series {series_uid}")
    return 0


# -- settings --------------------------------------------------------------------------------------
def run_settings_show(args: argparse.Namespace) -> int:
    from ..settings import is_first_run, load_settings

    s = load_settings()
    out = s.to_dict()
    out["_effective"] = {
        "database_url": _hide_password(s.effective_database_url()),
        "staging_dir": str(s.effective_staging_dir()),
        "first_run": is_first_run(),
    }
    print(json.dumps(out, indent=2))
    return 0


def _hide_password(url: str) -> str:
    """The URL with its password masked, also when SQLAlchemy cannot parse it (a mistyped port
    must not print the password in clear)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^/@]*?:)[^/]*@", r"\1***@", url)


def run_settings_set(args: argparse.Namespace) -> int:
    from ..settings import load_settings, save_settings, set_value

    s = set_value(load_settings(), args.key, args.value)
    path = save_settings(s)
    print(f"{args.key} = {args.value} (saved in {path})")
    return 0


def run_settings_path(args: argparse.Namespace) -> int:
    from ..settings import credentials_path, data_dir, settings_path, site_config_dir

    print(f"settings:    {settings_path()}")
    print(f"site file:   {site_config_dir() / 'settings.json'}")
    print(f"credentials: {credentials_path()}")
    print(f"data:        {data_dir()}")
    return 0


def run_settings_password(args: argparse.Namespace) -> int:
    from ..settings import store_password

    if args.pacs:
        path = store_password("pacs", _read_secret(f"password for PACS node {args.pacs}: "), node=args.pacs)
    else:
        path = store_password("database", _read_secret("database password: "))
    print(f"stored in {path} (readable by you only)")
    return 0
