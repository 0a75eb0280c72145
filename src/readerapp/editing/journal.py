"""The edit journal: every finished undo step appended and fsynced, so a kill loses at most the
stroke in progress.

One folder per scan under the user's data directory, named by a hash of the series UID (no
patient identity in any file name)::

    <data>/journals/<sha256(series uid)[:24]>/base.labels.gz   label map the edits start from
    <data>/journals/<...>/meta.json                             shape, base checksum, timestamps
    <data>/journals/<...>/edits.journal                         append-only records

A record is ``magic kind n plen | zlib(idx, old, new) | crc32``; reading stops at the first
truncated or damaged record (the write that the kill interrupted). Kinds: edit, undo, redo
(replayed through the editor, so the undo history comes back too) and saved (a read was saved:
nothing after it means nothing to restore).

A full disk does not end journaling for the session: a failed append is cut back off the file (no
torn record stays), reported once (:class:`JournalError`), and the next finished step tries to
*checkpoint*: the current label map becomes the journal's new base and the record file starts
again empty. Once that succeeds, later steps are journaled as before.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import gzip
import hashlib
import json
import logging
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ReaderAppError
from ..fileio import atomic_write, atomic_write_json, fsync_dir
from ._editor import Edit, LabelEditor

log = logging.getLogger(__name__)
MAGIC = b"RJ01"
_HEAD = struct.Struct("<4sBQQ")  # magic, kind, voxel count, payload length
_CRC = struct.Struct("<I")
KINDS = {"edit": 0, "undo": 1, "redo": 2, "saved": 3}
KIND_NAMES = {v: k for k, v in KINDS.items()}
JOURNAL_NAME = "edits.journal"
BASE_NAME = "base.labels.gz"
META_NAME = "meta.json"


class JournalError(ReaderAppError):
    """An edit journal cannot be written or does not fit the scan it is restored onto."""


def default_root() -> Path:
    """``$READERAPP_DATA_DIR`` or the platform's user data directory."""
    env = os.environ.get("READERAPP_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("readerapp", appauthor=False))


def series_key(series_uid: str, shape: tuple[int, ...]) -> str:
    """A non-identifying folder name for a scan (the UID itself never reaches the disk here)."""
    return hashlib.sha256(f"{series_uid}|{tuple(shape)}".encode()).hexdigest()[:24]


def journal_folder(series_uid: str, shape: tuple[int, ...], root: Path | None = None) -> Path:
    return (Path(root) if root else default_root()) / "journals" / series_key(series_uid, shape)


def labels_digest(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels).data).hexdigest()


def _size(fh) -> int:  # type: ignore[no-untyped-def]
    try:
        return int(os.fstat(fh.fileno()).st_size)
    except (OSError, AttributeError, ValueError):
        return 0


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _encode(kind: str, edit: Edit | None, index_dtype: np.dtype) -> bytes:
    if edit is None:
        payload, n = b"", 0
    else:
        n = len(edit)
        raw = edit.idx.astype(index_dtype, copy=False).tobytes() + edit.old.tobytes() + edit.new.tobytes()
        payload = zlib.compress(raw, 1)
    head = _HEAD.pack(MAGIC, KINDS[kind], n, len(payload))
    return head + payload + _CRC.pack(zlib.crc32(head + payload))


def read_records(path: Path, index_dtype: np.dtype) -> tuple[list[tuple[str, Edit | None]], bool]:
    """All intact records, and whether the file ended with a damaged or truncated one."""
    data = path.read_bytes() if path.exists() else b""
    out: list[tuple[str, Edit | None]] = []
    pos = 0
    isz = np.dtype(index_dtype).itemsize
    while pos < len(data):
        if pos + _HEAD.size > len(data):
            return out, True
        magic, kind, n, plen = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + plen
        if magic != MAGIC or kind not in KIND_NAMES or end + _CRC.size > len(data):
            return out, True
        (crc,) = _CRC.unpack_from(data, end)
        if crc != zlib.crc32(data[pos:end]):
            return out, True
        edit = None
        if n:
            raw = zlib.decompress(data[pos + _HEAD.size : end])
            idx = np.frombuffer(raw, dtype=index_dtype, count=n)
            old = np.frombuffer(raw, dtype=np.uint8, count=n, offset=n * isz)
            new = np.frombuffer(raw, dtype=np.uint8, count=n, offset=n * isz + n)
            edit = Edit(idx.copy(), old.copy(), new.copy(), "restored")
        out.append((KIND_NAMES[kind], edit))
        pos = end + _CRC.size
    return out, False


@dataclass
class Recoverable:
    """What a previous session left: unsaved steps to restore onto its base label map."""

    folder: Path
    meta: dict
    steps: list[tuple[str, Edit | None]]
    damaged_tail: bool

    @property
    def n_edits(self) -> int:
        return sum(1 for k, _ in self.steps if k == "edit")

    def base_labels(self) -> np.ndarray:
        try:
            with gzip.open(self.folder / BASE_NAME, "rb") as f:
                arr = np.frombuffer(f.read(), dtype=np.uint8)
        except (OSError, EOFError, zlib.error) as exc:  # truncated or not gzip at all
            raise JournalError(f"{self.folder / BASE_NAME} is damaged: cannot restore the edits") from exc
        shape = tuple(self.meta["shape"])
        if arr.size != int(np.prod(shape)) or labels_digest(arr) != self.meta["base_sha256"]:
            raise JournalError(f"{self.folder / BASE_NAME} is damaged: cannot restore the edits")
        return arr.reshape(shape).copy()

    def restore_into(self, editor: LabelEditor) -> int:
        """Put the base into the editor's labels and replay the steps; returns the edits replayed.

        The editor must not have listeners that journal (attach the journal afterwards).
        """
        base = self.base_labels()
        if base.shape != editor.shape:
            raise JournalError(f"journal is for a {base.shape} scan, this one is {editor.shape}")
        editor.labels[...] = base
        n = 0
        try:
            for kind, edit in self.steps:
                if kind == "saved":
                    continue
                editor.replay(kind, edit)  # type: ignore[arg-type]
                n += kind == "edit"
        except (ValueError, IndexError) as exc:
            raise JournalError(f"{self.folder / JOURNAL_NAME}: {exc}") from exc
        return n


def find_recoverable(
    series_uid: str, shape: tuple[int, ...], root: Path | None = None
) -> Recoverable | None:
    """The journal of an earlier, unfinished session on this scan, or None (nothing unsaved)."""
    folder = journal_folder(series_uid, shape, root)
    try:
        meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
        same_scan = tuple(meta["shape"]) == tuple(shape) and isinstance(meta["base_sha256"], str)
        index_dtype = np.dtype(meta["index_dtype"])
        if index_dtype not in (np.dtype(np.uint32), np.dtype(np.int64)):
            raise ValueError(f"index type {index_dtype}")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        # Unreadable bookkeeping must not stop the scan from opening: a fresh journal replaces it.
        if (folder / META_NAME).exists():
            log.warning("ignoring the unreadable edit journal in %s (%s)", folder, exc)
        return None
    if not same_scan or not (folder / BASE_NAME).is_file():
        return None
    steps, damaged = read_records(folder / JOURNAL_NAME, index_dtype)
    last_saved = max((i for i, (k, _) in enumerate(steps) if k == "saved"), default=-1)
    if not any(k != "saved" for k, _ in steps[last_saved + 1 :]):
        return None
    return Recoverable(folder, meta, steps, damaged)


class Journal:
    """Appends the editor's finished steps to disk, each fsynced before the next input."""

    def __init__(self, folder: Path, index_dtype: np.dtype, fh,  # type: ignore[no-untyped-def]
                 labels: np.ndarray | None = None) -> None:
        self.folder = folder
        self.index_dtype = np.dtype(index_dtype)
        self._fh = fh
        self.records_written = 0
        #: The live label map the steps are applied to (what a checkpoint writes as the base).
        self._labels = labels
        #: Size of the intact records on disk: a failed append is truncated back to it.
        self._good = _size(fh)
        #: An append failed: the next step checkpoints instead of appending.
        self.broken = False

    @classmethod
    def start(
        cls, series_uid: str, base_labels: np.ndarray, root: Path | None = None
    ) -> Journal:
        """A fresh journal for a session starting from ``base_labels`` (replaces an old one)."""
        folder = journal_folder(series_uid, base_labels.shape, root)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / JOURNAL_NAME).unlink(missing_ok=True)

            def write_base(tmp: Path) -> None:
                with gzip.open(tmp, "wb", compresslevel=1) as f:
                    f.write(np.ascontiguousarray(base_labels).data)

            atomic_write(folder / BASE_NAME, write_base)
            index_dtype = np.dtype(np.uint32 if base_labels.size < 2**32 else np.int64)
            meta = {
                "format": "readerapp-journal",
                "version": 1,
                "shape": list(base_labels.shape),
                "index_dtype": index_dtype.str,
                "base_sha256": labels_digest(base_labels),
                "started_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
            # Durable before any edit is appended: without it a power cut loses the whole journal.
            atomic_write_json(folder / META_NAME, meta)
            fh = open(folder / JOURNAL_NAME, "ab", buffering=0)  # noqa: SIM115 (held open for appends)
            os.fsync(fh.fileno())
            fsync_dir(folder)
        except OSError as exc:
            raise JournalError(f"cannot write the edit journal in {folder}: {exc}") from exc
        return cls(folder, index_dtype, fh, base_labels)

    @classmethod
    def resume(cls, recoverable: Recoverable, labels: np.ndarray | None = None) -> Journal:
        """Keep appending to a journal whose steps were just restored."""
        folder = recoverable.folder
        index_dtype = np.dtype(recoverable.meta["index_dtype"])
        steps, damaged = read_records(folder / JOURNAL_NAME, index_dtype)
        try:
            if damaged:  # cut the damaged tail so new records follow intact ones
                # fsynced before the rename: otherwise a power cut could leave an empty journal
                good = b"".join(_encode(k, e, index_dtype) for k, e in steps)
                atomic_write(folder / JOURNAL_NAME, lambda tmp: _write_bytes(tmp, good))
            fh = open(folder / JOURNAL_NAME, "ab", buffering=0)  # noqa: SIM115 (held open for appends)
        except OSError as exc:
            raise JournalError(f"cannot write the edit journal in {folder}: {exc}") from exc
        return cls(folder, index_dtype, fh, labels)

    def attach(self, editor: LabelEditor) -> None:
        self._labels = editor.labels
        editor.subscribe_steps(self.append)

    def append(self, kind: str, edit: Edit | None = None) -> None:
        """Append one finished step, fsynced. Raises :class:`JournalError` once when the disk
        refuses; later steps then checkpoint (and journal normally once that works)."""
        if self._fh is None:
            return
        if self.broken:
            self._checkpoint()  # the new base already holds this step
            return
        rec = _encode(kind, edit if kind == "edit" else None, self.index_dtype)
        try:
            view = memoryview(rec)
            while view:
                n = self._fh.write(view)
                if not n:
                    raise OSError(errno.EIO, "the journal file accepted no bytes")
                view = view[n:]
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self._cut_back()
            self.broken = True
            raise JournalError(
                f"cannot append to the edit journal in {self.folder}: {exc}; editing goes on and the "
                "journal resumes by itself once there is room on the disk"
            ) from exc
        self._good += len(rec)
        self.records_written += 1

    def _cut_back(self) -> None:
        """Remove a partly written record, so the file holds intact records only."""
        # a record that stays torn is dropped when read (CRC), and the checkpoint resets anyway
        with contextlib.suppress(OSError, AttributeError, ValueError):
            self._fh.truncate(self._good)

    def _checkpoint(self) -> bool:
        """Make the current label map the journal's base and start an empty record file."""
        if self._labels is None:
            return False
        folder = self.folder
        try:
            with contextlib.suppress(OSError, AttributeError):
                self._fh.close()
            # Empty the records first: a crash part-way then leaves nothing to restore rather than
            # records that do not fit their base.
            fh = open(folder / JOURNAL_NAME, "wb", buffering=0)  # noqa: SIM115 (held open for appends)
            self._fh = fh
            os.fsync(fh.fileno())
            labels = self._labels

            def write_base(tmp: Path) -> None:
                with gzip.open(tmp, "wb", compresslevel=1) as f:
                    f.write(np.ascontiguousarray(labels).data)

            atomic_write(folder / BASE_NAME, write_base)
            meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
            meta["base_sha256"] = labels_digest(labels)
            meta["checkpoint_utc"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            atomic_write_json(folder / META_NAME, meta)
        except (OSError, ValueError) as exc:
            log.info("edit journal still cannot be written in %s: %s", folder, exc)
            return False
        self._good = 0
        self.broken = False
        log.info("edit journal in %s resumed from a checkpoint", folder)
        return True

    def mark_saved(self) -> None:
        """The read was saved: a later start on this scan has nothing to restore."""
        self.append("saved")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def discard(self) -> None:
        """Close and delete this journal (the reader chose not to restore, or closed cleanly)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
