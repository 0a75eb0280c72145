"""The completion steps' guards against organs, on small constructed masks with known answers.

Hull completion and the closing along z add dense tissue to a lung; on the real chest CT they
once added a flat slab of the liver dome and wedges of it under the posterior recesses. These
tests build those shapes directly.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as sndi

from readerapp.segmentation._depth import body_depth_mm, keep_outer_additions
from readerapp.segmentation._grid import Grid
from readerapp.segmentation._hull import complete_side


def test_hull_does_not_cut_a_slab_out_of_an_organ():
    """A lung base wrapping the liver as a C (lateral arm, posterior lung, paravertebral lung):
    the row-wise medial limit would cut a flat-topped slab out of the liver; it must not be
    added, while a real bite into the lateral pleura of the same lung is."""
    side = np.zeros((1, 60, 60), bool)
    side[0, 5:56, 5:13] = True  # lateral arm (lateral is low x)
    side[0, 45:56, 5:51] = True  # posterior lung
    side[0, 35:56, 44:51] = True  # paravertebral lung reaching forward
    bite = np.zeros_like(side)
    bite[0, 15:25, 5:9] = True  # dense consolidation against the lateral chest wall
    side &= ~bite
    hu = np.full(side.shape, 50.0, np.float32)  # organ and consolidation: soft tissue
    body = np.ones_like(side)
    add = complete_side(side, hu, body, -1, 1.0, max_area_mm2=3000.0, max_hu=100.0,
                        pleura_px=(0, 0))
    liver_slab = np.zeros_like(side)
    liver_slab[0, 35:45, 13:44] = True
    assert not (add & liver_slab).any()
    assert add[bite].mean() > 0.9


def test_only_additions_on_the_chest_wall_side_are_kept():
    """A wedge of organ in front of a posterior lung crescent is deeper below the body surface
    than that lung (dropped); a consolidation between the lung and the back wall is not (kept);
    a piece bordering no lung is dropped."""
    yy, xx = np.mgrid[:80, :80]
    body = ((yy - 40) ** 2 + (xx - 40) ** 2 <= 38 ** 2)[None]
    lung = np.zeros_like(body)
    lung[0, 55:66, 20:61] = True
    wedge = np.zeros_like(body)
    wedge[0, 50:55, 25:56] = True
    back = np.zeros_like(body)
    back[0, 66:71, 30:51] = True
    lonely = np.zeros_like(body)
    lonely[0, 10:15, 35:45] = True
    grid = Grid((1, 1, 1), body.shape, (1.0, 1.0, 1.0))
    depth = body_depth_mm(body, grid, slice(0, 1))
    assert depth[0, 40, 40] > 30 and depth[0, 3, 40] < 3
    kept = keep_outer_additions(np, sndi, wedge | back | lonely, lung, depth)
    assert kept[back].all()
    assert not kept[wedge].any() and not kept[lonely].any()


def test_liver_dome_phantom_never_becomes_lung():
    from readerapp.phantom import make_chest_phantom
    from readerapp.segmentation import get_segmenter

    ph = make_chest_phantom((40, 200, 200), (1.6, 1.6, 5.0), seed=1, liver_dome=True,
                            dependent_consolidation=True)
    res = get_segmenter().propose(ph.volume, backend="numpy")
    vox = ph.volume.voxel_volume_ml
    assert (res.labels[ph.parts["liver"]] > 0).sum() * vox < 1.0  # mL; measured 0.1
    assert not (res.labels[ph.parts["liver"]] >= 2).any()
    lung, truth = res.labels > 0, ph.truth > 0
    assert 2 * (lung & truth).sum() / (lung.sum() + truth.sum()) >= 0.97
    assert (res.labels[ph.parts["dependent_consolidation"]] > 0).mean() >= 0.7
