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
#: The one set of edges: the bins (names, titles: :data:`readerapp.endpoints.BINS`), the HU ranges
#: below, the densitometry backends and the panel's histogram all derive from it.
BIN_EDGES_HU: tuple[int, int, int] = (-750, -300, 50)
N_BINS = len(BIN_EDGES_HU) + 1

#: Candidate HU ranges the protocol names for the automatic lesion proposal and the HU-limited brush
#: (the ground-glass and solid bins).
GGO_RANGE_HU = (BIN_EDGES_HU[0], BIN_EDGES_HU[1])
CONSOLIDATION_RANGE_HU = (BIN_EDGES_HU[1], BIN_EDGES_HU[2])
LABEL_HU_RANGE = {
    Label.LUNG: (-1024, BIN_EDGES_HU[0]),
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
