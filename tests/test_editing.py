"""Editing tools and undo on synthetic volumes with exactly known voxel counts."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from readerapp.editing import (
    LabelEditor,
    Mode,
    PaintOptions,
    ball_offsets,
    brush_indices,
    brush_tool,
    connected_lesion,
    connected_region,
    interpolate_between,
)
from readerapp.labels import Label
from readerapp.volume import PADDING_HU


def _lattice_count(r: float, dims: int) -> int:
    """Integer points within radius r (unit spacing), counted the obvious way."""
    n = int(r) + 1
    ax = np.arange(-n, n + 1)
    grids = np.meshgrid(*([ax] * dims), indexing="ij")
    return int((sum(g**2 for g in grids) <= r * r).sum())


def _box(shape=(20, 40, 40), lung=True):
    hu = np.full(shape, -850, np.int16)
    labels = np.full(shape, Label.LUNG if lung else Label.OUTSIDE, np.uint8)
    return hu, labels


@pytest.mark.parametrize("r", [0.4, 1, 2, 3, 5.5])
def test_brush_shapes_exact_counts(r):
    assert len(ball_offsets(r, (1.0, 1.0, 1.0), 0)) == _lattice_count(r, 2)
    assert len(ball_offsets(r, (1.0, 1.0, 1.0), None)) == _lattice_count(r, 3)
    # Anisotropic: 5 mm slices, 1 mm pixels: a 4 mm sphere is one slice thick.
    assert len(ball_offsets(4.0, (5.0, 1.0, 1.0), None)) == _lattice_count(4.0, 2)
    # Coronal disk (normal to y) with 2 mm z spacing and r = 4: x in -4..4 and z in -2..2.
    off = ball_offsets(4.0, (2.0, 1.0, 1.0), 1)
    assert set(off[:, 1]) == {0} and off[:, 0].min() == -2 and off[:, 2].max() == 4


def test_brush_clips_at_volume_edge():
    idx = brush_indices((0, 0, 0), 3, (10, 10, 10), (1.0, 1.0, 1.0), 0)
    # Quarter disk: points with dy, dx >= 0 and dy^2 + dx^2 <= 9.
    assert idx.size == sum(1 for a in range(4) for b in range(4) if a * a + b * b <= 9)


def test_paint_modes_and_keep_inside_lung():
    hu, labels = _box()
    labels[:, :, :20] = Label.OUTSIDE  # left half not lung
    ed = LabelEditor(hu, labels)
    centre = (10, 20, 20)  # disk straddles the lung edge at x = 20
    cand = brush_indices(centre, 3, labels.shape, (1.0, 1.0, 1.0), 0)
    in_lung = int((np.unravel_index(cand, labels.shape)[2] >= 20).sum())
    ed.apply_mode(cand, Mode.GGO, PaintOptions(keep_inside_lung=True))
    assert (labels == Label.GGO).sum() == in_lung
    ed.undo()
    ed.apply_mode(cand, Mode.CONSOLIDATION, PaintOptions(keep_inside_lung=False))
    assert (labels == Label.CONSOLIDATION).sum() == cand.size == 29
    ed.apply_mode(cand, Mode.ERASE)
    assert (labels >= Label.GGO).sum() == 0 and (labels == Label.LUNG).sum() > 0
    before = int((labels == Label.LUNG).sum())
    ed.apply_mode(cand, Mode.LUNG_REMOVE)
    assert (labels == Label.LUNG).sum() == before - 29
    ed.apply_mode(cand, Mode.LUNG_ADD)
    assert (labels == Label.LUNG).sum() == before


def test_hu_limited_brush_and_padding_never_painted():
    hu, labels = _box()
    hu[10, 20, 17:20] = -500  # three GGO-range voxels under the disk
    hu[10, 20, 21] = PADDING_HU  # a padding voxel wrongly labelled lung
    ed = LabelEditor(hu, labels)
    cand = brush_indices((10, 20, 20), 3, labels.shape, (1.0, 1.0, 1.0), 0)
    ed.apply_mode(cand, Mode.GGO, PaintOptions(hu_range=(-750, -300)))
    assert (labels == Label.GGO).sum() == 3
    for mode in Mode:
        ed.apply_mode(cand, mode, PaintOptions(keep_inside_lung=False))
        assert labels[10, 20, 21] == Label.LUNG, mode


def test_connected_region_fill_exact():
    hu, labels = _box()
    hu[5:9, 10:16, 10:20] = -500  # 4 x 6 x 10 = 240 voxels in range
    hu[5:9, 10:16, 25:30] = -500  # a separate block, not connected
    hu[7, 12, 14] = -900  # one hole inside the first block
    idx = connected_region(hu, labels, (6, 12, 12), (-750, -300))
    assert idx.size == 239
    assert connected_region(hu, labels, (6, 12, 12), (-750, -300), plane_axis=0).size == 60
    assert connected_region(hu, labels, (7, 12, 12), (-750, -300), plane_axis=0).size == 59
    assert connected_region(hu, labels, (0, 0, 0), (-750, -300)).size == 0  # seed out of range
    # A bounded search: 2 voxels around the seed in z, 3 in y and x.
    assert connected_region(hu, labels, (6, 12, 12), (-750, -300), max_radius_vox=(2, 3, 3)).size == (
        4 * 6 * 6 - 1)  # x 10..15 of the block, minus the hole
    labels[:, :, :15] = Label.OUTSIDE
    assert connected_region(hu, labels, (6, 12, 17), (-750, -300)).size == 4 * 6 * 5
    ed = LabelEditor(hu, labels)
    ed.apply_mode(idx, Mode.CONSOLIDATION)
    assert (labels == Label.CONSOLIDATION).sum() == 4 * 6 * 5  # keep inside lung


def test_remove_connected_lesion():
    hu, labels = _box()
    labels[2:5, 5:10, 5:10] = Label.GGO  # 75
    labels[5, 5:10, 5:10] = Label.CONSOLIDATION  # touching: same lesion, 25 more
    labels[12:14, 20:30, 20:30] = Label.GGO  # separate lesion, 200
    idx = connected_lesion(labels, (3, 7, 7))
    assert idx.size == 100
    assert connected_lesion(labels, (3, 7, 7), plane_axis=0).size == 25
    assert connected_lesion(labels, (0, 0, 0)).size == 0
    ed = LabelEditor(hu, labels)
    ed.apply_mode(idx, Mode.ERASE)
    assert (labels >= Label.GGO).sum() == 200


def test_interpolate_between_slices():
    hu, labels = _box()
    disk = brush_indices((0, 20, 20), 5, labels.shape, (1.0, 1.0, 1.0), 0)
    area = disk.size
    labels.reshape(-1)[disk] = Label.GGO
    labels.reshape(-1)[disk + 10 * 40 * 40] = Label.GGO
    idx = interpolate_between(labels, Label.GGO, 0, 0, 10)
    assert idx.size == 9 * area
    z = np.unravel_index(idx, labels.shape)[0]
    assert set(z) == set(range(1, 10))
    # Growing from radius 2 to radius 6: the middle slice lies between the two areas.
    labels[:] = Label.LUNG
    labels.reshape(-1)[brush_indices((0, 20, 20), 2, labels.shape, (1, 1, 1), 0)] = Label.GGO
    labels.reshape(-1)[brush_indices((10, 20, 20), 6, labels.shape, (1, 1, 1), 0)] = Label.GGO
    z = np.unravel_index(interpolate_between(labels, Label.GGO, 0, 10, 0), labels.shape)[0]
    counts = np.bincount(z, minlength=10)[1:10]
    assert np.all(np.diff(counts) >= 0) and 13 < counts[4] < 113
    assert interpolate_between(labels, Label.CONSOLIDATION, 0, 0, 10).size == 0


def test_brush_stroke_generator_is_one_undo_step():
    hu, labels = _box()
    ed = LabelEditor(hu, labels)
    stroke = brush_tool(ed, Mode.GGO, 2.0, (1.0, 1.0, 1.0), plane_axis=0)
    next(stroke)
    first = stroke.send((10, 20, 5))
    assert first == _lattice_count(2, 2) and (labels == Label.GGO).sum() == first
    stroke.send((10, 20, 30))  # a drag across: no gaps along the line
    with pytest.raises(StopIteration):
        stroke.send(None)
    assert ed.undo_depth == 1
    assert np.all(labels[10, 20, 5:31] == Label.GGO)
    expected = sum(1 for dy in range(-2, 3) for x in range(3, 33) if min(
        (dy * dy + (x - cx) ** 2) for cx in range(5, 31)) <= 4)
    assert (labels == Label.GGO).sum() == expected
    ed.undo()
    assert (labels == Label.GGO).sum() == 0
    ed.redo()
    assert (labels == Label.GGO).sum() == expected


def test_random_edits_undo_redo_match_recomputation():
    from readerapp.densitometry import DensityAccumulator, compute_table

    rng = np.random.default_rng(7)
    shape = (16, 48, 48)
    hu = rng.integers(-1000, 120, size=shape).astype(np.int16)
    hu[:, :3, :] = PADDING_HU
    labels = rng.choice([0, 1, 1, 1, 2, 3], size=shape).astype(np.uint8)
    ed = LabelEditor(hu, labels)
    acc = DensityAccumulator(hu, labels, backend="numpy", voxel_volume_ml=0.001)
    ed.subscribe(acc.apply)
    states = [labels.copy()]  # states[i]: labels after i steps in the undo stack
    pos = 0
    for _ in range(150):
        r = rng.random()
        if r < 0.2 and ed.can_undo:
            ed.undo()
            pos -= 1
        elif r < 0.3 and ed.can_redo:
            ed.redo()
            pos += 1
        else:
            mode = list(Mode)[rng.integers(len(Mode))]
            opts = PaintOptions(keep_inside_lung=bool(rng.integers(2)),
                                hu_range=(-750, -300) if rng.random() < 0.3 else None)
            stroke = brush_tool(ed, mode, float(rng.uniform(1, 4)), (1.0, 1.0, 1.0),
                                plane_axis=None if rng.random() < 0.5 else 0, options=opts)
            next(stroke)
            for _ in range(int(rng.integers(1, 4))):
                stroke.send(tuple(rng.uniform(0, s - 1) for s in shape))
            with contextlib.suppress(StopIteration):
                stroke.send(None)
            if ed.undo_depth > pos:  # something changed: a new step
                del states[pos + 1 :]
                pos += 1
                states.append(labels.copy())
        assert np.array_equal(labels, states[pos])
        assert not np.any(labels[:, :3, :] != states[0][:, :3, :])  # padding untouched
    assert acc.table == compute_table(hu, labels, backend="numpy")
    while ed.can_undo:
        ed.undo()
    assert np.array_equal(labels, states[0])
    assert acc.table == compute_table(hu, labels, backend="numpy")


def test_undo_memory_is_proportional_to_changed_voxels():
    shape = (64, 256, 256)  # 4 Mi voxels
    hu = np.full(shape, -850, np.int16)
    labels = np.ones(shape, np.uint8)
    ed = LabelEditor(hu, labels)
    total = 0
    for z in range(0, 60, 6):
        e = ed.apply_mode(brush_indices((z, 128, 128), 10, shape, (1, 1, 1), 0), Mode.GGO)
        total += len(e)
    assert ed.history_bytes == total * (4 + 1 + 1)  # uint32 index + old + new, nothing else
    assert ed.history_bytes < labels.nbytes / 100


def test_undo_budget_drops_oldest_steps():
    hu, labels = _box()
    ed = LabelEditor(hu, labels, undo_budget_bytes=6 * 29 * 3)
    for z in range(6):
        ed.apply_mode(brush_indices((z, 20, 20), 3, labels.shape, (1, 1, 1), 0), Mode.GGO)
    assert ed.undo_depth == 3 and ed.dropped_steps == 3
    while ed.can_undo:
        ed.undo()
    assert (labels == Label.GGO).sum() == 3 * 29  # the oldest three stay
