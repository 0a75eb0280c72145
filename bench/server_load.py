"""Load on one study server: N simulated readers at once on PostgreSQL, measured per request type.

    .venv/bin/python bench/server_load.py [--readers 20] [--cases-per-reader 2] [--json OUT]

Starts a throwaway PostgreSQL cluster (Debian's initdb/pg_ctl, as in the tests), migrates a study
database as its owner and grants the server's role its limited rights, starts ``readerapp server
run`` on 127.0.0.1, imports synthetic scans as the administrator, then lets every reader work at
the same moment, each in its own thread with its own HTTP connection: log in, worklist, fetch each
of its cases (every DICOM file, SHA-256 checked), submit a read (label map upload + measure) and
sign it (password again). Reader pairs share their cases, so both readers of a case sign it at the
same time. Reports the median and 95th percentile latency per request type, checks that no update
was lost (every read stored, signed, once; every case evaluated) and that ``audit verify`` passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "study")]


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(0.95 * len(s) + 0.5)) - 1))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--cases-per-reader", type=int, default=2)
    ap.add_argument("--json", metavar="OUT", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.readers % 2:
        ap.error("--readers must be even (readers work in pairs on the same cases)")

    import numpy as np
    import studykit as kit
    from serverkit import ServerProcess, server_database
    from sqlalchemy import create_engine, func, select

    from conftest import PgCluster, _pg_bin
    from readerapp.server.client import StudyClient
    from readerapp.study.config import StudyConfig
    from readerapp.study.models import Case, Read

    pg_bin = _pg_bin()
    if pg_bin is None:
        print("PostgreSQL server binaries (initdb, pg_ctl) not found: scripts/setup.sh --test", file=sys.stderr)
        return 2
    n_cases = args.readers // 2 * args.cases_per_reader
    tmp = Path(tempfile.mkdtemp(prefix="readerapp-load-"))
    print(f"building {n_cases} synthetic scans ...", flush=True)
    raw = kit.build_raw_study(tmp, n_subjects=(n_cases + 3) // 4)
    cluster = PgCluster(pg_bin)
    cluster.start()
    server = None
    try:
        owner_url, server_url = server_database(cluster)
        server = ServerProcess(server_url, tmp / "server-files")
        print(f"server {server.url} on PostgreSQL (role {server_url.split('//')[1].split('@')[0]})", flush=True)
        admin_client = StudyClient(server.url, cache_dir=tmp / "admin-cache")
        admin_client.create_study(StudyConfig(name="Load test"))
        admin_client.add_user(None, "admin", "admin", kit.PASSWORDS["admin"])
        admin = admin_client.login("admin", kit.PASSWORDS["admin"])
        readers = [f"reader{i:02d}" for i in range(args.readers)]
        for r in readers:
            admin_client.add_user(admin, r, "reader", f"{r}-password")
        t0 = time.perf_counter()
        codes = admin_client.import_manifest(admin, raw.manifest)
        print(f"imported {len(codes)} scans through the server in {time.perf_counter() - t0:.1f} s", flush=True)
        by_code = {lk["code"]: (lk["subject"], lk["visit"]) for lk in admin_client.case_links(admin)}
        ordered = sorted(by_code)[:n_cases]
        assignment = {r: ordered[(i // 2) * args.cases_per_reader:(i // 2 + 1) * args.cases_per_reader]
                      for i, r in enumerate(readers)}

        times: dict[str, list[float]] = defaultdict(list)
        lock = threading.Lock()
        errors: list[str] = []
        barrier = threading.Barrier(len(readers))

        def timed(kind: str, fn, *a, **kw):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            out = fn(*a, **kw)
            with lock:
                times[kind].append(time.perf_counter() - t)
            return out

        def work(name: str) -> None:
            try:
                client = StudyClient(server.url, cache_dir=tmp / "cache" / name)
                barrier.wait(timeout=120)
                me = timed("login", client.login, name, f"{name}-password")
                for code in assignment[name]:
                    wl = timed("worklist", client.worklist, me)
                    assert code in {e.code for e in wl}, f"{code} missing from {name}'s worklist"
                    timed("fetch_case", client.case_folder, me, code)
                    key = by_code[code]
                    lab = kit.reader_labels(raw.scans[key], "reader_b" if readers.index(name) % 2 else "reader_a")
                    info = timed("submit", client.save_read, me, code, lab.astype(np.uint8), kit.form_for(key[1]))
                    timed("sign", client.sign_read, me, info.id, f"{name}-password")
                timed("worklist", client.worklist, me)
                client.close()
            except Exception as exc:  # reported below
                with lock:
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")

        print(f"{len(readers)} readers at once ...", flush=True)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=work, args=(r,)) for r in readers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0

        # --- no lost update: every read stored once and signed, every case evaluated -------------
        eng = create_engine(owner_url)
        with eng.connect() as c:
            n_reads = c.scalar(select(func.count()).select_from(Read))
            n_signed = c.scalar(select(func.count()).select_from(Read).where(Read.status == "signed"))
            statuses = [s for (s,) in c.execute(select(Case.status).where(Case.code.in_(ordered)))]
        eng.dispose()
        expected = len(readers) * args.cases_per_reader
        lost = expected - int(n_signed or 0)
        unevaluated = sum(1 for s in statuses if s not in ("concordant", "discordant"))
        verify = admin_client.audit_verify()
        report = {
            "readers": len(readers), "cases": n_cases, "wall_s": round(wall, 2),
            "requests": {k: {"n": len(v), "median_ms": round(1000 * statistics.median(v), 1),
                             "p95_ms": round(1000 * p95(v), 1), "max_ms": round(1000 * max(v), 1)}
                         for k, v in sorted(times.items())},
            "reads_expected": expected, "reads_stored": n_reads, "reads_signed": n_signed,
            "lost_updates": lost, "cases_not_evaluated": unevaluated,
            "audit_verify": {"ok": verify.ok, "records": verify.records, "problems": verify.problems[:5]},
            "errors": errors,
        }
        print(f"\n{'request':<12}{'n':>5}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
        for k, v in report["requests"].items():  # type: ignore[union-attr]
            print(f"{k:<12}{v['n']:>5}{v['median_ms']:>12}{v['p95_ms']:>10}{v['max_ms']:>10}")
        print(f"\nwall {wall:.1f} s; reads expected {expected}, stored {n_reads}, signed {n_signed}; "
              f"lost updates {lost}; cases not evaluated {unevaluated}; "
              f"audit verify {'intact' if verify.ok else 'FAILED'} ({verify.records} records); errors {len(errors)}")
        for e in errors[:10]:
            print("  " + e)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
        return 0 if (not errors and lost == 0 and n_reads == expected and unevaluated == 0 and verify.ok) else 1
    finally:
        if server is not None:
            server.stop()
        cluster.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
