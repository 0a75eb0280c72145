"""The command line end to end: analyze and measure on DICOM written from phantoms and on real CT."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from readerapp.cli import main
from readerapp.io.dicom_write import write_synthetic_series
from readerapp.io.labelmap import read_labelmap, write_labelmap
from readerapp.phantom import make_chest_phantom

SRC = Path(__file__).resolve().parents[1] / "src"
ENDPOINT_KEYS = {
    "lung_volume_ml", "lesion_volume_ml", "lesion_pct", "ggo_volume_ml", "ggo_pct",
    "consolidation_volume_ml", "consolidation_pct", "lesion_weight_hu_voxel",
    "lesion_weight_hu_ml", "lesion_mass_g", "density_histogram", "mean_lung_hu",
}


@pytest.fixture(scope="module")
def phantom_series(tmp_path_factory):
    ph = make_chest_phantom((48, 128, 128), (2.5, 2.5, 5.0), seed=3)
    folder = tmp_path_factory.mktemp("series")
    write_synthetic_series(ph.volume, folder)
    return ph, folder


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "readerapp", *args], capture_output=True, text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=300,
    )


def test_analyze_writes_protocol_json_and_labels(phantom_series, tmp_path):
    ph, folder = phantom_series
    out, lab = tmp_path / "out.json", tmp_path / "labels.nii.gz"
    assert main(["analyze", str(folder), "--json", str(out), "--labels-out", str(lab), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert set(data) >= ENDPOINT_KEYS
    assert data["segmentation_source"] == "auto"
    assert data["shape"] == [48, 128, 128]
    assert data["backend"] in ("numpy", "cupy")
    truth_ml = np.count_nonzero(ph.truth) * ph.volume.voxel_volume_ml
    assert data["lung_volume_ml"] == pytest.approx(truth_ml, rel=0.1)
    labels = read_labelmap(lab, ph.volume)
    assert np.count_nonzero(labels) * ph.volume.voxel_volume_ml == pytest.approx(data["lung_volume_ml"])
    assert data["segmentation"]["method"]


def test_measure_on_given_labels_is_exact(phantom_series, tmp_path):
    ph, folder = phantom_series
    lab = write_labelmap(tmp_path / "truth.nrrd", ph.truth, ph.volume)
    out = tmp_path / "m.json"
    assert main(["measure", str(folder), "--labels", str(lab), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    vml = ph.volume.voxel_volume_ml
    assert data["ggo_volume_ml"] == pytest.approx(np.count_nonzero(ph.truth == 2) * vml, rel=1e-12)
    cons = ph.truth == 3
    assert data["lesion_weight_hu_voxel"] == int(ph.volume.hu[(ph.truth >= 2)].astype(np.int64).sum())
    assert data["consolidation_volume_ml"] == pytest.approx(np.count_nonzero(cons) * vml, rel=1e-12)
    assert data["segmentation_source"] == "corrected"


def test_several_series_give_a_list(phantom_series, tmp_path):
    ph, folder = phantom_series
    second = tmp_path / "second"
    vol2 = make_chest_phantom((24, 64, 64), (5.0, 5.0, 10.0), seed=4).volume
    write_synthetic_series(vol2, second)
    out = tmp_path / "both.json"
    assert main(["analyze", str(folder), str(second), "--json", str(out),
                 "--labels-out", str(tmp_path / "l.nii.gz"), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert isinstance(data, list) and len(data) == 2
    assert data[0]["shape"] == [48, 128, 128] and data[1]["shape"] == [24, 64, 64]
    assert Path(data[1]["labels_path"]).exists() and data[0]["labels_path"] != data[1]["labels_path"]


def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path):
    (tmp_path / "notdicom").mkdir()
    (tmp_path / "notdicom" / "readme.txt").write_text("hello")
    r = run_cli("analyze", str(tmp_path / "notdicom"), "--json", str(tmp_path / "o.json"))
    assert r.returncode == 2, r.stderr
    assert "notdicom" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("measure", str(tmp_path / "absent"), "--labels", "x.nii.gz", "--json", "-")
    assert r.returncode == 2 and "absent" in r.stderr and "Traceback" not in r.stderr


def test_wrong_label_grid_exits_2(phantom_series, tmp_path):
    ph, folder = phantom_series
    small = make_chest_phantom((10, 32, 32), (1.0, 1.0, 1.0)).volume
    lab = write_labelmap(tmp_path / "small.nii.gz", np.zeros(small.shape, np.uint8), small)
    r = run_cli("measure", str(folder), "--labels", str(lab), "--json", str(tmp_path / "o.json"))
    assert r.returncode == 2 and "small.nii.gz" in r.stderr and "Traceback" not in r.stderr


def test_unwritable_json_exits_2_naming_the_file(phantom_series, tmp_path, capsys):
    ph, folder = phantom_series
    lab = write_labelmap(tmp_path / "t.nii.gz", ph.truth, ph.volume)
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    out = blocker / "o.json"
    assert main(["measure", str(folder), "--labels", str(lab), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "cannot write" in err and "internal error" not in err


def test_cupy_backend_without_gpu_is_a_clear_error(phantom_series, tmp_path):
    from readerapp.backend import cupy_available

    if cupy_available():
        pytest.skip("a GPU is present here")
    ph, folder = phantom_series
    lab = write_labelmap(tmp_path / "t.nii.gz", ph.truth, ph.volume)
    r = run_cli("measure", str(folder), "--labels", str(lab), "--json", "-", "--backend", "cupy")
    assert r.returncode == 2 and "cupy" in r.stderr.lower() and "Traceback" not in r.stderr


@pytest.mark.realdata
def test_real_chest_ct_shuffled_copy_gives_identical_endpoints(chest_ct_dir, tmp_path):
    out1 = tmp_path / "a.json"
    assert main(["analyze", str(chest_ct_dir), "--json", str(out1), "--quiet",
                 "--labels-out", str(tmp_path / "a.nii.gz")]) == 0
    a = json.loads(out1.read_text())
    assert 2000 < a["lung_volume_ml"] < 9000
    assert a["shape"] == [64, 512, 512]
    # A copy with shuffled file names in nested folders loads and measures identically.
    files = sorted(chest_ct_dir.glob("*.dcm"))
    rng = np.random.default_rng(0)
    for i, f in enumerate(rng.permutation(len(files))):
        d = tmp_path / "shuffled" / f"sub{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(files[f], d / f"x{i:03d}")
    out2 = tmp_path / "b.json"
    assert main(["measure", str(tmp_path / "shuffled"), "--labels", str(tmp_path / "a.nii.gz"),
                 "--json", str(out2), "--source", "auto"]) == 0
    b = json.loads(out2.read_text())
    for k in ENDPOINT_KEYS:
        assert a[k] == b[k], k


def test_series_lists_what_was_found(phantom_series, capsys):
    ph, folder = phantom_series
    assert main(["series", str(folder), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found) == 1 and found[0]["is_axial_ct"] and found[0]["n_files"] == 48


@pytest.mark.realdata
def test_real_chest_ct_recompressed_copy_gives_identical_endpoints(chest_ct_dir, tmp_path):
    """Re-encoding the series losslessly (RLE, pydicom's own encoder) changes no endpoint."""
    from pydicom import dcmread
    from pydicom.uid import RLELossless

    out_dir = tmp_path / "rle"
    out_dir.mkdir()
    for f in sorted(chest_ct_dir.glob("*.dcm")):
        ds = dcmread(f)
        ds.compress(RLELossless)
        ds.save_as(out_dir / f.name)
    a_json, b_json = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["analyze", str(chest_ct_dir), "--json", str(a_json), "--quiet"]) == 0
    assert main(["analyze", str(out_dir), "--json", str(b_json), "--quiet"]) == 0
    a, b = json.loads(a_json.read_text()), json.loads(b_json.read_text())
    assert a["lung_volume_ml"] > 0
    for k in ENDPOINT_KEYS:
        assert a[k] == b[k], k
