"""Edits stay where the reader points: exact voxel counts of what changes, and that nothing else does."""

from __future__ import annotations

import numpy as np

from readerapp.editing import (
    LabelEditor,
    Mode,
    PaintOptions,
    brush_indices,
    connected_lesion,
    connected_region,
    describe_edit,
    interpolate_object,
    key_object,
)
from readerapp.labels import Label


def _lattice_count(r: float, dims: int) -> int:
    n = int(r) + 1
    ax = np.arange(-n, n + 1)
    grids = np.meshgrid(*([ax] * dims), indexing="ij")
    return int((sum(g**2 for g in grids) <= r * r).sum())


def _lung(shape=(12, 40, 40)):
    return np.full(shape, -850, np.int16), np.full(shape, Label.LUNG, np.uint8)


def test_remove_on_this_slice_takes_only_that_piece():
    hu, labels = _lung()
    labels[3:8, 5:10, 5:10] = Label.GGO  # lesion A: 5 slices of 25
    labels[5, 6:8, 6:8] = Label.CONSOLIDATION  # a consolidation core in A, slice 5
    labels[3:8, 25:35, 25:35] = Label.GGO  # lesion B elsewhere on the same slices
    before = labels.copy()
    ed = LabelEditor(hu, labels)
    e = ed.apply_mode(connected_lesion(labels, (5, 7, 7), plane_axis=0), Mode.ERASE)
    changed = labels != before
    assert len(e) == changed.sum() == 25 and changed[5, 5:10, 5:10].all()
    assert (labels[changed] == Label.LUNG).all()
    # The 3D variant takes all of A (125 voxels) and still nothing of B.
    ed.undo()
    assert np.array_equal(labels, before)
    plan = ed.plan(connected_lesion(labels, (5, 7, 7)), Mode.ERASE, name="remove lesion 3D")
    assert len(plan) == 125 and np.array_equal(labels, before)  # a plan changes nothing
    assert plan.volume_ml(0.008) == 1.0
    ed.apply_plan(plan)
    assert (labels != before).sum() == 125 and (labels[3:8, 25:35, 25:35] == Label.GGO).all()
    assert ed.undo_depth == 1


def test_fill_is_bounded_by_a_ball_around_the_click():
    hu, labels = _lung((30, 30, 30))
    hu[:] = -500  # one wide ground-glass area
    idx = connected_region(hu, labels, (15, 15, 15), (-750, -300), radius_mm=3.0, spacing_zyx=(1.0, 1.0, 1.0))
    assert idx.size == _lattice_count(3.0, 3)
    # Anisotropic: 2 mm slices, 1 mm pixels, radius 2 mm: a disk of radius 2 plus one pixel above
    # and below.
    idx = connected_region(hu, labels, (15, 15, 15), (-750, -300), radius_mm=2.0, spacing_zyx=(2.0, 1.0, 1.0))
    assert idx.size == _lattice_count(2.0, 2) + 2
    assert connected_region(hu, labels, (15, 15, 15), (-750, -300)).size == 30**3  # unbounded


def _painted_disks(labels, ed, z_list, centre, r, mode):
    keys = []
    for z in z_list:
        e = ed.apply_mode(brush_indices((z, *centre), r, labels.shape, (1.0, 1.0, 1.0), 0), mode)
        keys.append(e.idx.astype(np.int64))
    return keys


def test_fill_between_slices_takes_only_the_painted_object_and_paints_only_lung():
    hu, labels = _lung((12, 40, 40))
    labels[0, 25:35, 25:35] = Label.GGO  # another lesion on both key slices
    labels[10, 25:35, 25:35] = Label.GGO
    labels[3:6, 9:12, 9:12] = Label.CONSOLIDATION  # consolidation in the way of the shape
    ed = LabelEditor(hu, labels)
    ka, kb = _painted_disks(labels, ed, (0, 10), (10, 10), 3, Mode.GGO)
    disk = _lattice_count(3, 2)
    assert ka.size == kb.size == disk
    before = labels.copy()
    idx = interpolate_object(labels, 0, 0, ka, 10, kb, int(Label.GGO))
    e = ed.apply_mode(idx, Mode.GGO, PaintOptions(only_labels=(int(Label.LUNG),)))
    changed = labels != before
    # 9 slices of the disk, less the 3 x 3 x 3 consolidation block inside it.
    assert len(e) == changed.sum() == 9 * disk - 27
    assert (labels[changed] == Label.GGO).all() and (before[changed] == Label.LUNG).all()
    assert (labels[3:6, 9:12, 9:12] == Label.CONSOLIDATION).all()  # not turned into GGO
    assert not changed[:, 20:, 20:].any()  # the other lesion's slices in between untouched
    ed.undo()
    assert np.array_equal(labels, before)


def test_key_object_is_the_painted_lesion_whole_but_not_its_neighbours():
    _, labels = _lung((3, 30, 30))
    labels[1, 5:10, 5:10] = Label.GGO  # lesion extended by the stroke
    labels[1, 20:25, 20:25] = Label.GGO  # another lesion
    painted = np.ravel_multi_index(([1], [9], [9]), labels.shape)
    m = key_object(labels, 0, 1, painted, int(Label.GGO))
    assert m.sum() == 25 and m[5:10, 5:10].all()


def test_fill_between_erased_slices_erases_only_inside_the_erased_shape():
    hu, labels = _lung((12, 40, 40))
    labels[:, 5:16, 5:16] = Label.GGO  # an 11 x 11 column of GGO through every slice
    labels[:, 25:30, 25:30] = Label.CONSOLIDATION  # another lesion, left alone
    ed = LabelEditor(hu, labels)
    ka, kb = _painted_disks(labels, ed, (0, 10), (10, 10), 3, Mode.ERASE)
    before = labels.copy()
    idx = interpolate_object(labels, 0, 0, ka, 10, kb, None)
    e = ed.apply_mode(idx, Mode.ERASE)
    changed = labels != before
    assert len(e) == changed.sum() == 9 * _lattice_count(3, 2)
    assert (labels[changed] == Label.LUNG).all() and not (labels == Label.GGO)[1:10, 7:14, 10].any()
    assert not changed[:, 20:, 20:].any()


def test_only_labels_rule_and_edit_description():
    hu, labels = _lung((4, 10, 10))
    labels[1, :5] = Label.CONSOLIDATION
    ed = LabelEditor(hu, labels)
    e = ed.apply_mode(np.arange(labels.size), Mode.GGO, PaintOptions(only_labels=(int(Label.LUNG),)))
    assert len(e) == labels.size - 50 and (labels[1, :5] == Label.CONSOLIDATION).all()
    assert describe_edit(e, 0.5) == f"{len(e) * 0.5:.2f} mL changed: GGO +{len(e) * 0.5:.2f} mL"
    assert describe_edit(e, 0.5, reverse=True).endswith(f"GGO -{len(e) * 0.5:.2f} mL")


def test_provenance_loaded_auto_corrected(tmp_path):
    from readerapp.editing.session import Prepared, ReadingSession
    from readerapp.volume import CTVolume

    hu, labels = _lung((4, 10, 10))
    vol = CTVolume(hu=hu, spacing=(1.0, 1.0, 1.0), series_uid="1.2.3")
    s = ReadingSession(Prepared(vol, labels.copy(), "file"), backend="numpy", use_journal=False)
    assert s.source == "loaded"  # loaded with zero edits is not "corrected"
    s.editor.apply_mode(np.arange(5), Mode.GGO)
    assert s.source == "corrected"
    s.editor.undo()
    assert s.source == "loaded"  # every edit taken back: the labels are the loaded ones
    a = ReadingSession(Prepared(vol, labels.copy(), "auto"), backend="numpy", use_journal=False)
    assert a.source == "auto"
