"""Complete retrieves only, durable staging, warnings for clear-text transport, DIMSE over TLS
(against a local pynetdicom SCP with a self-signed certificate). No PACS server needed."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from readerapp.errors import PacsError
from readerapp.pacs.models import transport_warnings
from readerapp.pacs.staging import Staging
from readerapp.settings import PacsNode

STUDY, SERIES = "1.2.3.4", "1.2.3.4.5"


def _instance(sop: str, study: str = STUDY, series: str = SERIES) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality = "CT"
    return ds


def test_staging_refuses_what_was_not_asked_for(tmp_path: Path, monkeypatch) -> None:
    import readerapp.fileio as fileio

    st = Staging.for_series(tmp_path, STUDY, SERIES)
    st.expected = ["1.9.1", "1.9.2"]
    with pytest.raises(PacsError, match="when 1.9.1 was asked for"):
        st.write_dataset(_instance("1.9.2"), "1.9.1")
    with pytest.raises(PacsError, match="not 1.2.3.4.5"):
        st.write_dataset(_instance("1.9.1", series="1.2.3.4.6"), "1.9.1")
    with pytest.raises(PacsError, match="does not list"):
        st.write_dataset(_instance("1.9.3"))
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    st.write_dataset(_instance("1.9.1"), "1.9.1")
    assert synced  # the file and its folder reach the disk before anyone imports it
    assert st.present() == {"1.9.1"} and st.missing() == ["1.9.2"]


class _FakeWeb:
    """A DICOMweb server that answers one request with the wrong instance."""

    def __init__(self, sops: list[str]) -> None:
        self.sops = sops

    def search_for_instances(self, **kw: Any) -> list[dict[str, Any]]:
        offset = kw.get("offset") or 0
        return [{"00080018": {"vr": "UI", "Value": [s]}} for s in self.sops][offset:]

    def retrieve_instance(self, study_instance_uid: str, series_instance_uid: str,
                          sop_instance_uid: str) -> Dataset:
        if sop_instance_uid == self.sops[-1]:
            return _instance(self.sops[0])  # any instance is not the one asked for
        return _instance(sop_instance_uid)


def test_dicomweb_retrieve_counts_only_the_requested_instances(tmp_path: Path) -> None:
    from readerapp.pacs.dicomweb import DicomWebNode
    from readerapp.pacs.pull import import_series

    node = DicomWebNode("fake", PacsNode(kind="dicomweb", url="http://127.0.0.1:9/dicom-web"))
    node.client = _FakeWeb(["1.9.1", "1.9.2", "1.9.3"])  # type: ignore[assignment]
    node.workers = 1
    with pytest.raises(PacsError, match="when 1.9.3 was asked for"):
        node.retrieve_series(STUDY, SERIES, tmp_path)
    st = Staging.for_series(tmp_path, STUDY, SERIES)
    assert st.missing() == ["1.9.3"]
    node.client = _FakeWeb(["1.9.1", "1.9.2", "1.9.3", "1.9.4"])  # type: ignore[assignment]
    with pytest.raises(PacsError):
        node.retrieve_series(STUDY, SERIES, tmp_path)
    from readerapp.pacs.models import RetrieveResult

    partial = RetrieveResult(folder=st.folder, study_uid=STUDY, series_uid=SERIES, expected=4,
                             received=4, failed=Staging.for_series(tmp_path, STUDY, SERIES).missing())
    with pytest.raises(PacsError, match="incomplete"):
        import_series(partial, None, None, "S1", "baseline")


def test_clear_text_transport_is_warned_about(caplog) -> None:
    from readerapp.pacs.dicomweb import DicomWebNode

    assert transport_warnings("a", PacsNode(kind="dicomweb", url="http://localhost:8042/dicom-web")) == []
    assert transport_warnings("a", PacsNode(kind="dicomweb", url="https://pacs.site/dicom-web")) == []
    [w] = transport_warnings("a", PacsNode(kind="dicomweb", url="http://pacs.site/dicom-web"))
    assert "plain HTTP" in w
    [w] = transport_warnings("a", PacsNode(kind="dicomweb", url="https://pacs.site/x", verify_tls=False))
    assert "not verified" in w
    [w] = transport_warnings("a", PacsNode(kind="dimse", host="pacs.site", ae_title="P"))
    assert "without TLS" in w
    assert transport_warnings("a", PacsNode(kind="dimse", host="pacs.site", ae_title="P", tls=True)) == []
    with caplog.at_level(logging.WARNING):
        DicomWebNode("remote", PacsNode(kind="dicomweb", url="http://pacs.site/dicom-web"))
    assert "plain HTTP" in caplog.text


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dimse_echo_over_tls_to_a_local_scp(tmp_path: Path) -> None:
    import ssl

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    from readerapp.pacs.dimse import DimseNode

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.verify_mode = ssl.CERT_NONE
    port = _free_port()
    ae = AE(ae_title="TLSPACS")
    ae.add_supported_context(Verification)
    server = ae.start_server(("127.0.0.1", port), block=False, ssl_context=server_ctx)
    try:
        node = PacsNode(kind="dimse", host="localhost", port=port, ae_title="TLSPACS", timeout_s=5,
                        tls=True, tls_ca_file=str(cert))
        assert "succeeded" in DimseNode("tls", node).echo()
        # a certificate the client does not trust is refused
        (tmp_path / "o").mkdir()
        other, _ = _self_signed(tmp_path / "o")
        bad = PacsNode(kind="dimse", host="localhost", port=port, ae_title="TLSPACS", timeout_s=5,
                       tls=True, tls_ca_file=str(other))
        with pytest.raises(PacsError):
            DimseNode("tls", bad).echo()
        # and a plain association to the TLS port gets nowhere
        plain = PacsNode(kind="dimse", host="localhost", port=port, ae_title="TLSPACS", timeout_s=3)
        with pytest.raises(PacsError):
            DimseNode("plain", plain).echo()
    finally:
        server.shutdown()
