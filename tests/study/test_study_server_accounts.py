"""Account and audit-key commands through a study server (the same commands as with ``--db``):
password change, disable, role change, audit anchors and an anchored verify."""

from __future__ import annotations

from pathlib import Path

import studykit as kit
from serverkit import ServerProcess
from studykit import PASSWORDS, cli


def test_account_and_anchor_commands_through_the_server(tmp_path: Path) -> None:
    db = str(tmp_path / "server" / "s.sqlite")
    assert cli(["study", "migrate", "--db", db])[0] == 0
    server = ServerProcess(db, tmp_path / "server" / "files")
    try:
        s = ["--server", server.url]
        cfg = tmp_path / "study.toml"
        cfg.write_text(kit.CONFIG_TOML, encoding="utf-8")
        assert cli(["study", "create", str(cfg), *s])[0] == 0
        assert cli(["user", "add", *s, "--name", "admin", "--role", "admin"], PASSWORDS["admin"] + "\n")[0] == 0
        rc, _o, err = cli(["user", "add", *s, "--name", "reader_a", "--role", "reader"],
                          f"{PASSWORDS['reader_a']}\n{PASSWORDS['admin']}\n")
        assert rc == 0, err
        # a user changes his own password; the old one stops working
        rc, out, err = cli(["user", "passwd", *s, "--name", "reader_a"], f"new-reader-pass\n{PASSWORDS['reader_a']}\n")
        assert rc == 0 and "password of reader_a set" in out, err
        assert cli(["worklist", *s, "--user", "reader_a"], PASSWORDS["reader_a"])[0] == 2
        assert cli(["worklist", *s, "--user", "reader_a"], "new-reader-pass")[0] == 0
        # disabled, then enabled again, by the administrator
        rc, _o, err = cli(["user", "disable", *s, "--name", "reader_a", "--reason", "on leave"], PASSWORDS["admin"])
        assert rc == 0, err
        rc, _o, err = cli(["worklist", *s, "--user", "reader_a"], "new-reader-pass")
        assert rc == 2 and "disabled" in err
        assert cli(["user", "enable", *s, "--name", "reader_a", "--reason", "back"], PASSWORDS["admin"])[0] == 0
        # a reader cannot change roles; the administrator can
        rc, _o, err = cli(["user", "role", *s, "--name", "reader_a", "--role", "admin", "--admin", "reader_a",
                           "--reason", "me"], "new-reader-pass")
        assert rc == 2 and "admin" in err
        rc, _o, err = cli(["user", "role", *s, "--name", "reader_a", "--role", "adjudicator", "--reason", "senior"],
                          PASSWORDS["admin"])
        assert rc == 0, err
        # the sponsor's anchor from the server, and a verify against it
        rc, anchor, err = cli(["audit", "anchor", *s, "--user", "admin"], PASSWORDS["admin"])
        assert rc == 0 and anchor.startswith("RA-ANCHOR"), err
        rc, out, err = cli(["audit", "verify", *s, "--anchor", anchor.strip()])
        assert rc == 0 and "audit trail intact" in out and "authenticated by the audit key" in out, out + err
    finally:
        server.stop()
