"""Synthetic chest CT phantoms with exactly known answers.

Tests, benchmarks and the GUI's demo use these instead of patient data: a body with a chest wall
and a table, two lungs with vessels, a trachea splitting into main bronchi, an aorta, and
ground-glass and consolidation lesions (one consolidation against the chest wall, the case that
threshold-based lung masks lose). ``truth`` is the label map of PROTOCOL.md for the phantom.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .labels import Label
from .volume import PADDING_HU, CTVolume

AIR_HU = -1000
LUNG_HU = -850
TISSUE_HU = 40
FAT_HU = -100
BONE_HU = 500
BLOOD_HU = 45
GGO_HU = -550
CONSOLIDATION_HU = 20
LIVER_HU = 55


@dataclass
class Phantom:
    volume: CTVolume
    truth: np.ndarray
    #: Named boolean masks of the parts, for tests that check one structure.
    parts: dict[str, np.ndarray] = field(default_factory=dict)


def _grid(shape: tuple[int, int, int], spacing: tuple[float, float, float]):
    """Voxel-centre coordinates in mm, (z, y, x) broadcastable, origin at the volume centre."""
    nz, ny, nx = shape
    sx, sy, sz = spacing
    z = (np.arange(nz) - (nz - 1) / 2.0)[:, None, None] * sz
    y = (np.arange(ny) - (ny - 1) / 2.0)[None, :, None] * sy
    x = (np.arange(nx) - (nx - 1) / 2.0)[None, None, :] * sx
    return z, y, x


def _box(z, y, x, lo, hi) -> tuple[slice, slice, slice]:
    """Index slices of the voxels whose centres lie within [lo, hi] (mm, (z, y, x))."""
    out = []
    for axis, a in enumerate((z.ravel(), y.ravel(), x.ravel())):
        i0 = int(np.searchsorted(a, lo[axis], side="left"))
        i1 = int(np.searchsorted(a, hi[axis], side="right"))
        out.append(slice(i0, max(i0, i1)))
    return tuple(out)  # type: ignore[return-value]


def _tube(z, y, x, p0, p1, radius: float) -> np.ndarray:
    """Voxels within ``radius`` mm of the segment p0-p1 (points given as (z, y, x) in mm).

    Computed only inside the segment's bounding box, so a thin vessel costs little on a big grid.
    """
    p0 = np.asarray(p0, float)
    p1 = np.asarray(p1, float)
    shape = (z.shape[0], y.shape[1], x.shape[2])
    mask = np.zeros(shape, bool)
    bz, by, bx = _box(z, y, x, np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius)
    zs, ys, xs = z[bz].astype(np.float32), y[:, by].astype(np.float32), x[:, :, bx].astype(np.float32)
    d = p1 - p0
    L2 = float(d @ d) or 1e-9
    t = ((zs - p0[0]) * d[0] + (ys - p0[1]) * d[1] + (xs - p0[2]) * d[2]) / L2
    t = np.clip(t, 0.0, 1.0)
    dist2 = (zs - (p0[0] + t * d[0])) ** 2
    dist2 += (ys - (p0[1] + t * d[1])) ** 2
    dist2 += (xs - (p0[2] + t * d[2])) ** 2
    mask[bz, by, bx] = dist2 <= radius * radius
    return mask


def _ball(z, y, x, c, r: float) -> np.ndarray:
    c = np.asarray(c, float)
    shape = (z.shape[0], y.shape[1], x.shape[2])
    mask = np.zeros(shape, bool)
    bz, by, bx = _box(z, y, x, c - r, c + r)
    mask[bz, by, bx] = (z[bz] - c[0]) ** 2 + (y[:, by] - c[1]) ** 2 + (x[:, :, bx] - c[2]) ** 2 <= r * r
    return mask


def _rib_cage(z, y, x, s: float, lz_c: float, lz_r: float, *, gap_mm: float = 3.0,
              rib_mm: float = 6.0, rib_height_mm: float = 10.0,
              rib_period_mm: float = 20.0) -> np.ndarray:
    """Ribs 3 mm outside each lung (not on its medial side), a vertebral body and a sternum.

    Each rib follows the lung's cross-section in its slice (the ellipsoid's, never smaller than
    half of the widest), so the gap between lung and rib is the same from apex to base; the
    ribs are horizontal bands ``rib_height_mm`` high every ``rib_period_mm`` (the intercostal
    spaces hold the chest wall's soft tissue, as intercostal muscle does).
    """
    shape = (z.shape[0], y.shape[1], x.shape[2])
    bone = np.zeros(shape, bool)
    zz = z.ravel()
    on_rib = np.mod(zz - lz_c, rib_period_mm) < rib_height_mm
    f = np.sqrt(np.clip(1.0 - ((zz - lz_c) / lz_r) ** 2, 0.25, 1.0))
    y2, x2 = y[0], x[0]
    for k in np.flatnonzero(on_rib):
        for side in (-1, 1):
            ax, ay = 48 * s * f[k], 72 * s * f[k]
            cx = side * 62 * s
            e_in = ((x2 - cx) / (ax + gap_mm)) ** 2 + ((y2 + 5 * s) / (ay + gap_mm)) ** 2
            e_out = ((x2 - cx) / (ax + gap_mm + rib_mm)) ** 2 + ((y2 + 5 * s) / (ay + gap_mm + rib_mm)) ** 2
            bone[k] |= (e_in > 1.0) & (e_out <= 1.0) & (side * x2 >= 26 * s)
    spine = ((x / (16 * s)) ** 2 + ((y - 64 * s) / (13 * s)) ** 2 <= 1.0)
    spine |= (np.abs(x) <= 4 * s) & (y >= 64 * s) & (y <= 90 * s)  # spinous process
    sternum = (np.abs(x) <= 12 * s) & (y >= -92 * s) & (y <= -84 * s)
    in_z = np.abs(z - lz_c) <= 1.1 * lz_r
    bone |= np.broadcast_to((spine | sternum) & in_z, shape)
    return bone


def make_chest_phantom(
    shape: tuple[int, int, int] = (80, 160, 160),
    spacing: tuple[float, float, float] = (2.0, 2.0, 2.5),
    *,
    noise_hu: float = 15.0,
    lesions: bool = True,
    pad_fov: bool = True,
    seed: int = 0,
    mediastinal_fat: bool = True,
    dependent_consolidation: bool = False,
    dependent_gradient_hu: float = 0.0,
    liver_dome: bool = False,
    fov_crop_mm: float = 0.0,
    ribs_at_pleura: bool = False,
    hilar_vessels: bool = False,
) -> Phantom:
    """A chest phantom on a (z, y, x) grid with spacing (x, y, z) mm.

    The anatomy scales with the field of view (x-extent), so the same call at 512x512 gives a
    realistic size. y grows posteriorly, as in DICOM's LPS with the patient supine.

    ``mediastinal_fat`` wraps the aorta in fat, so it shows as the round structure that the
    calibration check looks for. ``dependent_consolidation`` adds a large consolidation against
    the posterior chest wall of the low-x lung (``parts["dependent_consolidation"]``, also in
    ``parts["consolidation"]``). ``dependent_gradient_hu`` raises the aerated lung's HU linearly
    from 0 at its front to this value at its back, as gravity does in a supine patient.
    ``liver_dome`` pushes a liver dome (and a smaller spleen dome on the other side) up into the
    lung bases from below, medially, so each lung base wraps it as a C open towards the
    mediastinum: the organ must never become lung (``parts["liver"]``).
    ``fov_crop_mm`` lays the anatomy out for a field of view that much wider on every side than
    the image, which then shows only its central part, as a small reconstruction field of view
    on a large patient does: beyond about 0.03 x FOV (10 mm at 320 mm) the image edge cuts the
    chest wall at the sides, beyond about 0.23 x FOV (73 mm) the lungs as well, and beyond about
    0.26 x FOV (83 mm) the body's front and back.
    ``ribs_at_pleura`` replaces the bony ring deep in the chest wall (about 20 mm outside the
    lungs, which no real chest shows) by a rib cage as in real anatomy: ribs (10 mm high, 10 mm
    apart in z, intercostal muscle between them) that follow each lung's lateral, anterior and
    posterior surface 3 mm outside it, a vertebral body and a sternum (``parts["bone"]``). Dense
    lung against the chest wall can then be bounded by the ribs as a reader does.
    ``hilar_vessels`` adds the hila as a CT shows them: on each side a pulmonary artery (about
    20 mm wide) entering the lung from the mediastinum beside the main bronchus, dividing into
    lobar arteries (10-12 mm) that taper into the lung, and a pulmonary vein below it
    (``parts["hilar_vessels"]``; lung in the truth, never lesion).
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    z, y, x = _grid(shape, spacing)
    fov = min(nx * spacing[0], ny * spacing[1])
    zext = nz * spacing[2]
    s = (fov + 2.0 * fov_crop_mm) / 320.0  # anatomy scale: designed for a 320 mm field of view

    hu = np.full(shape, AIR_HU, dtype=np.float32)
    body_a, body_b = 150 * s, 105 * s
    body = (x / body_a) ** 2 + (y / body_b) ** 2 <= 1.0
    body = np.broadcast_to(body, shape)
    fat_inner = (x / (body_a - 8 * s)) ** 2 + (y / (body_b - 8 * s)) ** 2 <= 1.0
    hu[body] = FAT_HU
    hu[np.broadcast_to(fat_inner, shape)] = TISSUE_HU
    # Ribs: a thin bony ring inside the chest wall, interrupted every so often.
    ring_out = (x / (body_a - 14 * s)) ** 2 + (y / (body_b - 14 * s)) ** 2 <= 1.0
    ring_in = (x / (body_a - 18 * s)) ** 2 + (y / (body_b - 18 * s)) ** 2 <= 1.0
    angle = np.arctan2(y, x)
    ribs = ring_out & ~ring_in & (np.cos(angle * 14) > 0.2)
    if not ribs_at_pleura:
        hu[np.broadcast_to(ribs, shape)] = BONE_HU
    # Table under the patient (posterior = +y).
    table = (y > body_b + 12 * s) & (y < body_b + 22 * s) & (np.abs(x) < 140 * s)
    hu[np.broadcast_to(table, shape)] = 150

    # Lungs: two ellipsoids, z from near the top to near the bottom of the volume.
    lz_c, lz_r = 0.05 * zext, 0.42 * zext
    lungs = np.zeros(shape, bool)
    for side in (-1, 1):
        cx = side * 62 * s
        inplane = (((x - cx) / (48 * s)) ** 2 + ((y + 5 * s) / (72 * s)) ** 2).astype(np.float32)
        lungs |= inplane + (((z - lz_c) / lz_r) ** 2).astype(np.float32) <= 1.0
    domes = np.zeros(shape, bool)
    if liver_dome:
        # (centre x, centre y, radius y, top above the lung's lowest point (fraction of its
        # half-height), radius x), lengths in units of s; anterior, so the lung behind reaches
        # lower (the posterior recess), and medial, so the lung is a C open medially; the
        # dome's ellipsoid reaches below the volume, so the organ continues under the lungs
        for cxd, cyd, ryd, rise, rxd in ((-30, -25, 60, 0.55, 55), (35, -20, 45, 0.4, 40)):
            rzd = 0.6 * lz_r
            czd = lz_c - lz_r + rise * lz_r - rzd
            domes |= ((((x - cxd * s) / (rxd * s)) ** 2 + ((y - cyd * s) / (ryd * s)) ** 2
                       + ((z - czd) / rzd) ** 2) <= 1.0)
        domes |= (z < czd) & ((x / (body_a - 20 * s)) ** 2 + (y / (body_b - 20 * s)) ** 2 <= 1.0)
        domes = np.broadcast_to(domes, shape) & np.broadcast_to(fat_inner, shape)
        lungs &= ~domes
    bone = _rib_cage(z, y, x, s, lz_c, lz_r) if ribs_at_pleura else None
    if bone is not None:
        hu[bone] = BONE_HU
    hu[lungs] = LUNG_HU
    if dependent_gradient_hu:
        frac = np.clip((y + 77 * s) / (144 * s), 0.0, 1.0).astype(np.float32)
        hu += np.where(lungs, frac * np.float32(dependent_gradient_hu), np.float32(0.0))

    # Vessels inside the lungs (part of the lung label, excluded from lesions).
    vessels = np.zeros(shape, bool)
    for side in (-1, 1):
        hilum = (lz_c, 0.0, side * 35 * s)
        for _k, (dz, dy, dx, r) in enumerate(
            [(0.6, -40, 40, 3.0), (-0.6, 30, 45, 3.0), (0.1, -55, 20, 2.0), (-0.3, 50, 10, 2.0),
             (0.35, 10, 55, 1.5), (-0.7, -20, 30, 1.5)]
        ):
            end = (lz_c + dz * lz_r, dy * s, side * (35 + dx) * s)
            vessels |= _tube(z, y, x, hilum, end, r * s)
    hilar = np.zeros(shape, bool)
    if hilar_vessels:
        zc = lz_c + 0.1 * lz_r
        for side in (-1, 1):
            root = (zc + 8 * s, -5 * s, side * 8 * s)  # in the mediastinum
            hil = (zc + 4 * s, 0.0, side * 40 * s)  # at the lung's medial surface
            hilar |= _tube(z, y, x, root, hil, 10 * s)
            for dz, dy, dx, r in ((0.45, -25, 30, 6.0), (-0.4, 20, 28, 6.0), (0.0, 35, 20, 5.0),
                                  (-0.1, -30, 15, 4.5)):
                end = (zc + dz * lz_r, dy * s, side * (40 + dx) * s)
                hilar |= _tube(z, y, x, hil, end, r * s)
                hilar |= _tube(z, y, x, end, (end[0] + 0.3 * dz * lz_r, end[1] + 0.6 * dy * s,
                                             end[2] + side * 0.8 * dx * s), 0.5 * r * s)
            vein = (zc - 18 * s, 8 * s, side * 12 * s)
            vhil = (zc - 16 * s, 8 * s, side * 40 * s)
            hilar |= _tube(z, y, x, vein, vhil, 7 * s)
            hilar |= _tube(z, y, x, vhil, (zc - 0.5 * lz_r, 30 * s, side * 70 * s), 4 * s)
        hilar &= body
        hu[hilar & ~lungs] = TISSUE_HU  # the mediastinal part of the vessels
    vessels |= hilar & lungs
    vessels &= lungs
    hu[vessels] = BLOOD_HU

    # Aorta (blood, for the calibration check) in the mediastinum.
    aorta = ((x - 12 * s) ** 2 + (y - 30 * s) ** 2 <= (12 * s) ** 2) & (np.abs(z - lz_c) < lz_r)
    aorta = np.broadcast_to(aorta, shape) & ~lungs
    if mediastinal_fat:
        fat = ((x - 12 * s) ** 2 + (y - 30 * s) ** 2 <= (17 * s) ** 2) & (np.abs(z - lz_c) < lz_r)
        hu[np.broadcast_to(fat, shape) & ~lungs] = FAT_HU
    hu[aorta] = BLOOD_HU

    # Trachea from above the lungs to the carina, then the main bronchi into each lung.
    carina = (lz_c + 0.35 * lz_r, -15 * s, 0.0)
    top = (z.max() + 10, -15 * s, 0.0)
    airway_lumen = _tube(z, y, x, top, carina, 8 * s)
    airway_wall = _tube(z, y, x, top, carina, 10 * s)
    for side in (-1, 1):
        end = (lz_c + 0.1 * lz_r, -10 * s, side * 45 * s)
        airway_lumen |= _tube(z, y, x, carina, end, 5 * s)
        airway_wall |= _tube(z, y, x, carina, end, 6.5 * s)
    airway_wall &= body
    hu[airway_wall & ~airway_lumen] = TISSUE_HU
    hu[airway_lumen & body] = AIR_HU

    lung_truth = lungs & ~airway_wall
    truth = np.zeros(shape, np.uint8)
    truth[lung_truth] = Label.LUNG

    parts: dict[str, np.ndarray] = {
        "lungs": lung_truth,
        "vessels": vessels & lung_truth,
        "hilar_vessels": hilar & lung_truth,
        "airway": airway_lumen & body,
        "aorta": aorta,
        "body": np.ascontiguousarray(body),
    }
    if bone is not None:
        parts["bone"] = bone & (hu == BONE_HU)
    if liver_dome:
        hu[domes] = LIVER_HU
        parts["liver"] = np.ascontiguousarray(domes)
    if lesions:
        def ball(c, r):
            return _ball(z, y, x, c, r)

        ggo = (ball((lz_c + 0.3 * lz_r, 10 * s, -70 * s), 16 * s)
               | ball((lz_c - 0.35 * lz_r, -20 * s, 75 * s), 12 * s)) & lung_truth & ~vessels
        cons = ball((lz_c - 0.1 * lz_r, 30 * s, -55 * s), 10 * s) & lung_truth
        # Against the lateral chest wall of the right-hand lung (+x): the dropped-out case.
        pleural = ball((lz_c - 0.15 * lz_r, 0.0, 110 * s), 22 * s) & lung_truth
        cons |= pleural
        ggo &= ~cons
        hu[ggo] = GGO_HU
        hu[cons] = CONSOLIDATION_HU
        truth[ggo] = Label.GGO
        truth[cons] = Label.CONSOLIDATION
        parts.update(ggo=ggo, consolidation=cons, pleural_consolidation=pleural)
    if dependent_consolidation:
        # A big posterior bite of the low-x lung: what gravity-dependent COVID-19 lesions do.
        c0 = np.array([lz_c - 0.1 * lz_r, 67 * s, -62 * s])
        dep = np.zeros(shape, bool)
        rz, ry, rx = 0.3 * lz_r, 22 * s, 30 * s
        bz, by, bx = _box(z, y, x, c0 - (rz, ry, rx), c0 + (rz, ry, rx))
        dep[bz, by, bx] = (((z[bz] - c0[0]) / rz) ** 2 + ((y[:, by] - c0[1]) / ry) ** 2
                           + ((x[:, :, bx] - c0[2]) / rx) ** 2) <= 1.0
        dep &= lung_truth
        hu[dep] = CONSOLIDATION_HU
        truth[dep] = Label.CONSOLIDATION
        if "ggo" in parts:
            parts["ggo"] = parts["ggo"] & ~dep
            parts["consolidation"] = parts["consolidation"] | dep
        else:
            parts["consolidation"] = dep
        parts["dependent_consolidation"] = dep

    if noise_hu > 0:
        hu += rng.standard_normal(size=shape, dtype=np.float32) * np.float32(noise_hu)
    out = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    if pad_fov:
        outside_fov = np.broadcast_to(x * x + y * y > (0.5 * fov) ** 2, shape)
        out[outside_fov] = PADDING_HU
        truth[outside_fov] = 0
    vol = CTVolume(
        hu=np.ascontiguousarray(out),
        spacing=spacing,
        origin=(-(nx - 1) / 2 * spacing[0], -(ny - 1) / 2 * spacing[1], -(nz - 1) / 2 * spacing[2]),
        series_uid="2.25.1000" + str(seed),
        study_uid="2.25.2000" + str(seed),
        meta={"source": "phantom"},
    )
    return Phantom(volume=vol, truth=truth, parts=parts)
