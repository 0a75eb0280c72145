"""The label map of PROTOCOL.md and the density bins, in one place.

Everything that paints, segments or measures refers to these names rather than to bare numbers.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Label(IntEnum):
    OUTSIDE = 0
    LUNG = 1
    GGO = 2
    CONSOLIDATION = 3


LABEL_DTYPE = np.uint8
HU_DTYPE = np.int16

#: Lung = labels 1..3; lesion = labels 2..3 (PROTOCOL.md, "Masks").
LUNG_LABELS = (Label.LUNG, Label.GGO, Label.CONSOLIDATION)
LESION_LABELS = (Label.GGO, Label.CONSOLIDATION)

#: Density-histogram bin edges in HU (PROTOCOL.md): [-inf,-750), [-750,-300), [-300,50), [50,inf).
BIN_EDGES_HU = (-750, -300, 50)
BIN_NAMES = ("below_-750", "-750_to_-300", "-300_to_50", "50_and_above")
N_BINS = 4

#: Candidate HU ranges the protocol names for the automatic lesion proposal and the HU-limited brush.
GGO_RANGE_HU = (-750, -300)
CONSOLIDATION_RANGE_HU = (-300, 50)
LABEL_HU_RANGE = {
    Label.LUNG: (-1024, -750),
    Label.GGO: GGO_RANGE_HU,
    Label.CONSOLIDATION: CONSOLIDATION_RANGE_HU,
}

#: Voxels below this are padding outside the scanner's field of view (for example -2048 or
#: -3024 HU), never air or lung. Real air reads about -1000 HU with noise well above -1500.
PADDING_BELOW_HU = -1500

LABEL_NAMES = {
    Label.OUTSIDE: "outside",
    Label.LUNG: "lung",
    Label.GGO: "ggo",
    Label.CONSOLIDATION: "consolidation",
}


def hu_bin(hu: int) -> int:
    """Index of the density-histogram bin holding one HU value."""
    for i, edge in enumerate(BIN_EDGES_HU):
        if hu < edge:
            return i
    return N_BINS - 1
