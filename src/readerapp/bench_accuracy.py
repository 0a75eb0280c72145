"""Accuracy benchmark of the automatic proposal: ``python -m readerapp.bench_accuracy [--json]``.

The signed endpoints start from the proposal, so its errors are measured, not assumed:

* phantoms with exactly known truth (``readerapp.phantom``): lesion, ground-glass and
  consolidation volume errors, lesion and lung Dice, vessels (and the hilar arteries and veins)
  proposed as lesion, over thin and thick slices, noise, ribs or none;
* where the real chest CT is present (``../shared/data`` or ``$READERAPP_SHARED_DATA``):
  spheres of known size and density inserted into its lungs at its own 5 mm slices and on a
  1.25 mm version of it (interpolated along z, with noise added), each recovered lesion's volume
  error; and the lesion the unmodified scan gets in its hila (it has no hilar disease).

Figures print as a table (or one JSON object); nothing here is asserted: the tests do that.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from .phantom import make_chest_phantom
from .segmentation import SegmentationResult, get_segmenter
from .volume import CTVolume


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float((a & b).sum()) / s


PHANTOMS: dict[str, dict[str, Any]] = {
    "default 2x2x2.5 mm": {},
    "noise 30 HU": dict(noise_hu=30.0, seed=3),
    "ribs at pleura + dependent consolidation": dict(ribs_at_pleura=True,
                                                     dependent_consolidation=True, seed=1),
    "1.25 mm isotropic, hila": dict(shape=(120, 256, 256), spacing=(1.25, 1.25, 1.25),
                                    noise_hu=25.0, seed=2, hilar_vessels=True),
    "5 mm slices, hila": dict(shape=(36, 256, 256), spacing=(1.25, 1.25, 5.0), noise_hu=25.0,
                              seed=4, hilar_vessels=True),
    "5 mm slices, ribs at pleura": dict(shape=(40, 200, 200), spacing=(1.6, 1.6, 5.0), seed=5,
                                        ribs_at_pleura=True),
}


def phantom_case(**kw: Any) -> dict[str, Any]:
    """Errors of the proposal on one phantom."""
    ph = make_chest_phantom(**kw)
    t0 = time.perf_counter()
    res = get_segmenter().propose(ph.volume, backend="numpy")
    seconds = time.perf_counter() - t0
    lab, tr = res.labels, ph.truth
    v = ph.volume.voxel_volume_ml
    out: dict[str, Any] = {"seconds": round(seconds, 2)}
    for name, sel in (("lesion", lambda a: a >= 2), ("ggo", lambda a: a == 2),
                      ("consolidation", lambda a: a == 3)):
        got, want = float(sel(lab).sum()) * v, float(sel(tr).sum()) * v
        out[f"{name}_ml"] = round(got, 2)
        out[f"{name}_true_ml"] = round(want, 2)
        out[f"{name}_error_pct"] = round(100.0 * (got - want) / want, 1) if want else None
    out["lesion_dice"] = round(dice(lab >= 2, tr >= 2), 4)
    out["lung_dice"] = round(dice(lab > 0, tr > 0), 4)
    out["vessels_as_lesion_ml"] = round(float(((lab >= 2) & ph.parts["vessels"]).sum()) * v, 2)
    if "hilar_vessels" in ph.parts and ph.parts["hilar_vessels"].any():
        hil = ph.parts["hilar_vessels"]
        out["hilar_vessels_ml"] = round(float(hil.sum()) * v, 1)
        out["hilar_vessels_as_lesion_ml"] = round(float(((lab >= 2) & hil).sum()) * v, 2)
    return out


def _sphere(shape: tuple[int, ...], spacing_zyx: tuple[float, float, float],
            centre: tuple[int, ...], radius_mm: float) -> np.ndarray:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    sz, sy, sx = spacing_zyx
    return (((zz - centre[0]) * sz) ** 2 + ((yy - centre[1]) * sy) ** 2
            + ((xx - centre[2]) * sx) ** 2) <= radius_mm ** 2


def insert_lesions(volume: CTVolume, lung: np.ndarray, *, n: int = 6, seed: int = 11,
                   radius_mm: tuple[float, float] = (8.0, 15.0)
                   ) -> tuple[CTVolume, list[tuple[str, np.ndarray]]]:
    """``volume`` with ``n`` spheres of known size inserted deep in ``lung``, alternately ground
    glass (-550 HU) and consolidation (+20 HU), each keeping half the local texture of the lung
    it replaces (so it is not flat); returns the new volume and (kind, mask) per sphere."""
    sp = volume.spacing_zyx
    rng = np.random.default_rng(seed)
    depth = ndi.distance_transform_edt(lung, sampling=sp)
    idx = np.argwhere(depth >= radius_mm[1] + 1.0)
    if idx.size == 0:
        raise ValueError("no lung deep enough to insert lesions")
    hu = volume.hu.copy()
    f = volume.hu.astype(np.float32)
    texture = f - ndi.uniform_filter(f, 5)
    used = np.zeros_like(lung)
    lesions: list[tuple[str, np.ndarray]] = []
    for k in range(n):
        s = np.zeros_like(lung)
        for _ in range(200):
            c = tuple(int(i) for i in idx[rng.integers(len(idx))])
            s = _sphere(volume.shape, sp, c, float(rng.uniform(*radius_mm))) & lung
            if not (ndi.binary_dilation(used, iterations=4) & s).any():
                break
        used |= s
        kind = "ggo" if k % 2 == 0 else "consolidation"
        lo, hi, base = (-740, -310, -550) if kind == "ggo" else (-280, 45, 20)
        hu[s] = np.clip(base + 0.5 * texture[s], lo, hi).astype(np.int16)
        lesions.append((kind, s))
    return CTVolume(hu=hu, spacing=volume.spacing, origin=volume.origin,
                    direction=volume.direction), lesions


def inserted_errors(volume: CTVolume, *, seed: int = 11, n: int = 6,
                    base: SegmentationResult | None = None) -> dict[str, Any]:
    """Recovered volume of lesions inserted into a real scan: each sphere's lesion voxels
    within 4 voxels of it (less what the scan had there already) against its true volume."""
    seg = get_segmenter()
    before = (base or seg.propose(volume, backend="numpy")).labels
    vol2, lesions = insert_lesions(volume, before > 0, n=n, seed=seed)
    lab = seg.propose(vol2, backend="numpy").labels
    v = volume.voxel_volume_ml
    old = before >= 2
    rows: list[dict[str, Any]] = []
    errs: list[float] = []
    for kind, s in lesions:
        near = ndi.binary_dilation(s, iterations=4) & ~(old & ~s)
        got = float(((lab >= 2) & near).sum()) * v
        want = float(s.sum()) * v
        errs.append(round(100.0 * (got - want) / want, 1))
        rows.append({"kind": kind, "true_ml": round(want, 2), "found_ml": round(got, 2),
                     "error_pct": errs[-1], "dice": round(dice((lab >= 2) & near, s), 3)})
    return {"lesions": rows, "mean_abs_error_pct": round(float(np.mean(np.abs(errs))), 1),
            "max_abs_error_pct": round(float(np.max(np.abs(errs))), 1),
            "mean_error_pct": round(float(np.mean(errs)), 1)}


def thin_version(volume: CTVolume, factor: int = 4, noise_hu: float = 20.0,
                 seed: int = 0) -> CTVolume:
    """The scan on slices ``factor`` times thinner (linear interpolation along z) with noise:
    a stand-in for a thin-slice reconstruction of the same patient."""
    h = volume.hu.astype(np.float32)
    nz = h.shape[0]
    zi = np.arange((nz - 1) * factor + 1) / factor
    lo = np.floor(zi).astype(int)
    hi = np.minimum(lo + 1, nz - 1)
    w = (zi - lo)[:, None, None].astype(np.float32)
    out = h[lo] * (1 - w) + h[hi] * w
    pad = out < -1500
    out += np.random.default_rng(seed).standard_normal(out.shape, dtype=np.float32) * noise_hu
    out[pad] = -3024
    sx, sy, sz = volume.spacing
    return CTVolume(hu=np.rint(out).astype(np.int16), spacing=(sx, sy, sz / factor),
                    origin=volume.origin, direction=volume.direction)


def hilar_lesion_ml(volume: CTVolume, result: SegmentationResult | None = None
                    ) -> dict[str, float | None]:
    """Lesion proposed within 30 mm of the main and lobar bronchi below the carina (the hila)
    and elsewhere, on a scan without hilar disease."""
    res = result or get_segmenter().propose(volume, backend="numpy")
    lab = res.labels
    airway = res.extras["trachea"]
    v = volume.voxel_volume_ml
    if not airway.any():
        return {"hila_ml": None, "elsewhere_ml": round(float((lab >= 2).sum()) * v, 2)}
    sz, sy, sx = volume.spacing_zyx
    zs = np.flatnonzero(airway.any(axis=(1, 2)))
    superior_high = volume.direction[8] >= 0.0
    carina = res.provenance.get("airway", {}) or {}
    cz = carina.get("carina_slice")
    below = airway.copy()
    if cz is not None:
        full_cz = int(round(cz * res.provenance["grid"]["factors_zyx"][0]))
        if superior_high:
            below[full_cz + 1:] = False
        else:
            below[:full_cz] = False
    if not below.any():
        below[zs] = airway[zs]
    dist = ndi.distance_transform_edt(~below, sampling=(sz, sy, sx))
    hila = dist <= 30.0
    les = lab >= 2
    return {"hila_ml": round(float((les & hila).sum()) * v, 2),
            "elsewhere_ml": round(float((les & ~hila).sum()) * v, 2)}


def _real_ct() -> Path | None:
    env = os.environ.get("READERAPP_SHARED_DATA")
    roots = [Path(env)] if env else []
    roots.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    roots.append(Path.cwd().parent / "shared" / "data")
    for r in roots:
        d = r / "chest-ct-lung-dx-a0001"
        if d.is_dir():
            return d
    return None


def run(real: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"phantoms": {k: phantom_case(**kw) for k, kw in PHANTOMS.items()}}
    d = _real_ct() if real else None
    if d is not None:
        from .io.dicom import load_series

        vol = load_series([str(d)])[0]
        thin = thin_version(vol)
        seg = get_segmenter()
        base, base_thin = (seg.propose(v, backend="numpy") for v in (vol, thin))
        out["real_ct"] = {
            "folder": d.name,
            "inserted_5mm": inserted_errors(vol, seed=11, base=base),
            "inserted_1.25mm": inserted_errors(thin, seed=3, base=base_thin),
            "hila_5mm": hilar_lesion_ml(vol, base),
            "hila_1.25mm": hilar_lesion_ml(thin, base_thin),
        }
    else:
        out["real_ct"] = None
    return out


def _print(r: dict[str, Any]) -> None:
    print("Phantoms (truth known exactly)")
    hdr = (f"{'case':44s} {'lesion err%':>11s} {'ggo err%':>9s} {'cons err%':>9s} "
           f"{'lesion Dice':>11s} {'lung Dice':>9s} {'vessel mL':>9s} {'hilar mL':>8s} {'s':>6s}")
    print(hdr)
    for name, c in r["phantoms"].items():
        hil = c.get("hilar_vessels_as_lesion_ml")
        print(f"{name:44s} {c['lesion_error_pct']:>11} {c['ggo_error_pct']:>9} "
              f"{c['consolidation_error_pct']:>9} {c['lesion_dice']:>11} {c['lung_dice']:>9} "
              f"{c['vessels_as_lesion_ml']:>9} {'' if hil is None else hil:>8} {c['seconds']:>6}")
    rc = r.get("real_ct")
    if not rc:
        print("real chest CT: not found (set READERAPP_SHARED_DATA); skipped")
        return
    for key in ("inserted_5mm", "inserted_1.25mm"):
        e = rc[key]
        print(f"{key}: mean |error| {e['mean_abs_error_pct']} %, max {e['max_abs_error_pct']} %, "
              f"mean {e['mean_error_pct']} %")
        for row in e["lesions"]:
            print(f"    {row['kind']:13s} {row['true_ml']:7.2f} mL -> {row['found_ml']:7.2f} mL "
                  f"({row['error_pct']:+.1f} %, Dice {row['dice']})")
    for key in ("hila_5mm", "hila_1.25mm"):
        print(f"{key}: lesion in the hila {rc[key]['hila_ml']} mL, elsewhere "
              f"{rc[key]['elsewhere_ml']} mL (the scan has no hilar disease)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m readerapp.bench_accuracy", description=__doc__)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-real", action="store_true", help="phantoms only")
    args = ap.parse_args(argv)
    r = run(real=not args.no_real)
    if args.json:
        print(json.dumps(r, indent=1, allow_nan=False, default=str))
    else:
        _print(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
