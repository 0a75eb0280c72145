"""What a PACS query returns and what a transfer did, shared by the DICOMweb and DIMSE clients.

Plain dataclasses so the command line, the GUI and the tests handle both routes alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from ..settings import PacsNode


@dataclass(frozen=True)
class StudyHit:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession_number: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    n_series: int | None = None
    n_instances: int | None = None


@dataclass(frozen=True)
class SeriesHit:
    study_uid: str
    series_uid: str
    modality: str = ""
    series_number: str = ""
    description: str = ""
    n_instances: int | None = None


@dataclass
class RetrieveResult:
    """One series brought into a staging folder (or partly, when some sub-operations failed)."""

    folder: Path
    study_uid: str
    series_uid: str
    expected: int
    #: Instances already present from an earlier, interrupted transfer (not moved again).
    skipped: int = 0
    #: Instances moved by this call.
    received: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed and self.skipped + self.received >= self.expected


@dataclass
class SendResult:
    sent: int = 0
    failed: list[str] = field(default_factory=list)


class PacsClient(Protocol):
    """What both routes offer; ``readerapp.pacs.open_client`` returns one for a configured node."""

    name: str

    def echo(self) -> str: ...

    def find_studies(
        self,
        *,
        patient_id: str = "",
        patient_name: str = "",
        study_date: str = "",
        accession_number: str = "",
        study_uid: str = "",
        modality: str = "CT",
        limit: int | None = None,
    ) -> list[StudyHit]: ...

    def find_series(self, study_uid: str, modality: str = "CT") -> list[SeriesHit]: ...

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]: ...

    def retrieve_series(
        self, study_uid: str, series_uid: str, dest: Path, progress: ProgressFn = no_progress
    ) -> RetrieveResult: ...

    def send(self, files: list[Path], progress: ProgressFn = no_progress) -> SendResult: ...

    def close(self) -> None: ...


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def transport_warnings(name: str, node: PacsNode) -> list[str]:
    """What is unsafe in how a node is reached: images and identities cross the network in
    clear text (plain HTTP or DIMSE without TLS to another machine), or TLS without checking
    whose certificate it is. Said once when the node is opened (logged), never refused."""
    from urllib.parse import urlsplit

    out: list[str] = []
    if node.kind == "dicomweb":
        u = urlsplit(node.url)
        host = (u.hostname or "").lower()
        if u.scheme == "http" and host not in _LOOPBACK and not host.startswith("127."):
            out.append(f"PACS {name!r}: {node.url} is plain HTTP to another machine: patient data and "
                       "the password cross the network unencrypted; use an https:// URL")
        if u.scheme == "https" and not node.verify_tls:
            out.append(f"PACS {name!r}: TLS certificates are not verified (verify_tls = false): anyone "
                       "on the path can pose as the PACS")
    else:
        host = node.host.lower()
        local = host in _LOOPBACK or host.startswith("127.")
        if not node.tls and not local:
            out.append(f"PACS {name!r}: DIMSE to {node.host} without TLS: images cross the network "
                       "unencrypted; set pacs.NAME.tls = true (with tls_ca_file) if the PACS offers it")
        if node.tls and not node.verify_tls:
            out.append(f"PACS {name!r}: TLS certificates are not verified (verify_tls = false): anyone "
                       "on the path can pose as the PACS")
    return out
