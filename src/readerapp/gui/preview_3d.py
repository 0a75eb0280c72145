"""The previewed 3D edit (3D remove, 3D fill) in the 3D view too: its voxels as red points.

Kept out of :mod:`.volume_view` (whose surfaces it only sits among): the 3D view draws the
patient from the front with axes stored against LPS mirrored, and this does the same.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from .slice_view import axis_flips
from .state import COLOURS

#: At most this many points are drawn (a large preview is subsampled evenly).
MAX_POINTS = 40_000


class Preview3D:
    def __init__(self, volume_view, controller) -> None:  # type: ignore[no-untyped-def]
        self.view = volume_view
        self.controller = controller
        self.poly = vtkPolyData()
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(self.poly)
        self.actor = vtkActor()
        self.actor.SetMapper(mapper)
        prop = self.actor.GetProperty()
        prop.SetColor(*(c / 255 for c in COLOURS["preview"]))
        prop.SetPointSize(3.0)
        prop.LightingOff()
        self.actor.PickableOff()
        self.actor.VisibilityOff()
        volume_view.canvas.renderer.AddActor(self.actor)
        controller.preview_changed.connect(self.update)

    @property
    def n_points(self) -> int:
        return int(self.poly.GetNumberOfPoints()) if self.actor.GetVisibility() else 0

    def update(self) -> None:
        plan, s = self.controller.pending, self.controller.session
        if plan is None or s is None or len(plan) == 0:
            if self.actor.GetVisibility():
                self.actor.VisibilityOff()
                self._render()
            return
        idx = plan.idx.astype(np.int64)
        if idx.size > MAX_POINTS:
            idx = idx[:: int(np.ceil(idx.size / MAX_POINTS))]
        z, y, x = np.unravel_index(idx, s.labels.shape)
        nz, ny, nx = s.labels.shape
        fx, fy, fz = axis_flips(tuple(s.volume.direction))
        sx, sy, sz = s.volume.spacing
        xyz = np.stack([(nx - 1 - x if fx else x) * sx, (ny - 1 - y if fy else y) * sy,
                        (nz - 1 - z if fz else z) * sz], axis=1).astype(np.float64)
        pts = vtkPoints()
        pts.SetData(numpy_to_vtk(np.ascontiguousarray(xyz), deep=1))
        verts = vtkCellArray()
        n = len(xyz)
        verts.SetData(numpy_to_vtkIdTypeArray(np.arange(n + 1, dtype=np.int64), deep=1),
                      numpy_to_vtkIdTypeArray(np.arange(n, dtype=np.int64), deep=1))
        self.poly.SetPoints(pts)
        self.poly.SetVerts(verts)
        self.poly.Modified()
        self.actor.VisibilityOn()
        self._render()

    def _render(self) -> None:
        if self.view.isVisible():
            self.view.canvas.render_now()
