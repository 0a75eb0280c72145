"""Linking baseline and follow-up slices by patient position."""

from __future__ import annotations

import numpy as np

from readerapp.compare import SliceLink, slice_positions
from readerapp.volume import CTVolume


def _vol(n, dz, z0, flip=False):
    d = (1, 0, 0, 0, 1, 0, 0, 0, -1) if flip else (1, 0, 0, 0, 1, 0, 0, 0, 1)
    return CTVolume(hu=np.zeros((n, 4, 4), np.int16), spacing=(1.0, 1.0, dz), origin=(0.0, 0.0, z0),
                    direction=d)


def test_positions_follow_origin_direction_and_spacing():
    assert slice_positions(_vol(3, 2.0, -10.0)).tolist() == [-10.0, -8.0, -6.0]
    assert slice_positions(_vol(3, 2.0, 10.0, flip=True)).tolist() == [10.0, 8.0, 6.0]


def test_link_maps_by_position_across_spacing_order_and_coverage():
    base = _vol(50, 2.0, -100.0)  # -100 .. -2 mm, head last
    follow = _vol(40, 1.25, -20.0, flip=True)  # -20 .. -68.75 mm, head first
    link = SliceLink(base, follow)
    assert link.b_for_a(40) == 0  # -20 mm
    assert link.b_for_a(30) == 16  # -40 mm
    assert link.b_for_a(29) == 18  # -42 mm: the nearest is -42.5 mm (not -41.25 mm)
    assert link.b_for_a(0) is None  # -100 mm: the follow-up does not reach that far
    assert link.a_for_b(16) == 30 and link.a_for_b(0) == 40
    # The table moved 10 mm between visits: the reader links two slices, the offset is kept.
    link.relink(30, 8)  # -40 mm in A is -30 mm in B
    assert link.offset_mm == 10.0 and link.b_for_a(31) == 6 and link.a_for_b(8) == 30
