"""Query and retrieve CT series from a site's PACS, and send reads back.

Two routes behind one interface (:class:`~readerapp.pacs.models.PacsClient`): DICOMweb
(``dicomweb-client``: QIDO-RS, WADO-RS, STOW-RS) and classic DIMSE (``pynetdicom``: C-ECHO,
C-FIND, C-GET, C-MOVE, C-STORE). Nodes live in the program's settings
(:mod:`readerapp.settings`), never in code. Heavy libraries load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import PacsClient, RetrieveResult, SendResult, SeriesHit, StudyHit

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "PacsClient", "RetrieveResult", "SendResult", "SeriesHit", "StudyHit", "open_client",
]


def open_client(name: str | None = None, settings: Settings | None = None) -> PacsClient:
    """A client for the named (or default) node of the settings, with its password resolved."""
    from ..settings import load_settings, pacs_password

    settings = settings or load_settings()
    name, node = settings.node(name)
    if node.kind == "dicomweb":
        from .dicomweb import DicomWebNode

        return DicomWebNode(name, node, pacs_password(name))
    from .dimse import DimseNode

    return DimseNode(
        name, node, local_ae_title=settings.local_ae_title, storage_port=settings.storage_port
    )
