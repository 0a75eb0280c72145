"""The 3D view: lungs as a translucent surface, GGO and consolidation as solid surfaces.

Surfaces come from a downsampled label map (at most about 160 voxels along an axis) through
vtkSurfaceNets3D, which smooths as it extracts; rebuilding after an edit is throttled (edits only
mark the view stale; a timer rebuilds at most every ``throttle_ms``) and redoes only the slabs the
edit touched, so painting never waits on the 3D view. Lesions are max-pooled when downsampled, so
a small lesion does not vanish.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6 import QtCore, QtWidgets
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from .slice_view import axis_flips
from .state import COLOURS
from .vtk_canvas import VtkCanvas

MAX_DIM = 160


class VolumeView(QtWidgets.QFrame):
    maximize_requested = QtCore.Signal()

    def __init__(self, controller, parent=None, throttle_ms: int = 400) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.controller = controller
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.header = QtWidgets.QLabel("3D")
        self.header.setObjectName("viewHeader")
        self.header.setToolTip("3D view: left drag rotates, wheel zooms, double-click maximizes")
        self.canvas = VtkCanvas(self)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(1, 1, 1, 1)
        lay.setSpacing(0)
        lay.addWidget(self.header)
        lay.addWidget(self.canvas, 1)
        self.canvas.SetInteractorStyle(vtkInteractorStyleTrackballCamera())
        self.canvas.installEventFilter(self)
        r = self.canvas.renderer
        r.SetBackground(0.06, 0.07, 0.09)
        r.SetBackground2(0.18, 0.2, 0.24)
        r.GradientBackgroundOn()
        self.image = vtkImageData()
        self.actors: dict[int, vtkActor] = {}
        self.nets: dict[int, vtkSurfaceNets3D] = {}
        specs = {
            1: ((0.75, 0.8, 0.9), 0.18),
            2: (tuple(c / 255 for c in COLOURS["ggo"]), 1.0),
            3: (tuple(c / 255 for c in COLOURS["consolidation"]), 1.0),
        }
        for value, (rgb, opacity) in specs.items():
            net = vtkSurfaceNets3D()
            net.SetInputData(self.image)
            net.SetValue(0, value)
            net.SetOutputMeshTypeToTriangles()
            net.SetNumberOfIterations(12)
            net.SetBackgroundLabel(0)
            m = vtkPolyDataMapper()
            m.SetInputConnection(net.GetOutputPort())
            m.ScalarVisibilityOff()
            a = vtkActor()
            a.SetMapper(m)
            p = a.GetProperty()
            p.SetColor(*rgb)
            p.SetOpacity(opacity)
            if value == 1:
                p.BackfaceCullingOn()
            a.VisibilityOff()  # until the first rebuild gives the filters an image
            r.AddActor(a)
            self.nets[value] = net
            self.actors[value] = a
        self.throttle_ms = throttle_ms
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.rebuild)
        self._stale = True
        self._camera_set = False
        self.last_rebuild_ms = 0.0
        self._small: np.ndarray | None = None
        self._small_key: tuple | None = None
        self._dirty_z: tuple[int, int] | None = None

    def eventFilter(self, obj, ev) -> bool:  # type: ignore[no-untyped-def]  # noqa: N802
        if obj is self.canvas and ev.type() == QtCore.QEvent.Type.MouseButtonDblClick:
            self.maximize_requested.emit()
            return True
        return False

    def note_change(self, flat_idx: np.ndarray) -> None:
        """Remember which slices an edit touched: only their blocks are downsampled again."""
        if flat_idx.size == 0 or self.controller.session is None:
            return
        ny, nx = self.controller.session.labels.shape[1:]
        z0, z1 = int(flat_idx.min()) // (ny * nx), int(flat_idx.max()) // (ny * nx)
        d = self._dirty_z
        self._dirty_z = (z0, z1) if d is None else (min(d[0], z0), max(d[1], z1))

    def mark_stale(self) -> None:
        """An edit happened: rebuild soon, at most once per ``throttle_ms``."""
        self._stale = True
        if not self._timer.isActive():
            self._timer.start(self.throttle_ms)

    def _downsampled(self, labels: np.ndarray, spacing) -> tuple[np.ndarray, int, int]:  # type: ignore[no-untyped-def]
        """Block maximum of the label map; after edits only the touched z-blocks are redone."""
        factor = max(1, int(np.ceil(max(labels.shape[1:]) / MAX_DIM)))
        fz = min(max(1, int(round(factor * spacing[0] / spacing[2]))), factor)
        key = (labels.shape, factor, fz, id(labels))
        if self._small is None or self._small_key != key:
            self._small = self._down_xy_z(labels, factor, fz)
            self._small_key = key
        elif self._dirty_z is not None:
            zb0 = self._dirty_z[0] // fz
            zb1 = min(self._dirty_z[1] // fz + 1, self._small.shape[0])
            if zb1 > zb0:
                self._small[zb0:zb1] = self._down_xy_z(labels[zb0 * fz : zb1 * fz], factor, fz)
        self._dirty_z = None
        return self._small, factor, fz

    def rebuild(self) -> None:
        session = self.controller.session
        if session is None:
            return
        t0 = time.perf_counter()
        small, factor, fz = self._downsampled(session.labels, session.volume.spacing)
        # Lung surface: everything labelled (so lesions sit inside it), drawn as label 1.
        lung_like = (small > 0).astype(np.uint8)
        # Axes stored against LPS (towards R, A or I) are mirrored so the camera below shows
        # the patient from the front, right on the viewer's left, whatever the scan's order.
        fx, fy, fz_ = axis_flips(tuple(getattr(session.volume, "direction", (1, 0, 0, 0, 1, 0, 0, 0, 1))))
        mirror = (slice(None, None, -1 if fz_ else 1), slice(None, None, -1 if fy else 1),
                  slice(None, None, -1 if fx else 1))
        data = np.ascontiguousarray(small[mirror])  # the lesion surfaces read labels 2 and 3
        lung_like = np.ascontiguousarray(lung_like[mirror])
        nz, ny, nx = data.shape
        sx, sy, sz = session.volume.spacing
        img = self.image
        img.SetDimensions(nx, ny, nz)
        img.SetSpacing(sx * factor, sy * factor, sz * fz)
        arr = numpy_to_vtk(data.reshape(-1), deep=1)
        img.GetPointData().SetScalars(arr)
        img.Modified()
        # Lung: label 1 together with the lesions inside it, via a second image.
        lung_img = vtkImageData()
        lung_img.CopyStructure(img)  # geometry only: its scalars are set just below
        lung_img.GetPointData().SetScalars(numpy_to_vtk(lung_like.reshape(-1), deep=1))
        self.nets[1].SetInputData(lung_img)
        for net in self.nets.values():
            net.Modified()
        for a in self.actors.values():
            a.VisibilityOn()
        if not self._camera_set:
            self._reset_camera(img)
        self._stale = False
        self.canvas.render_now()
        self.last_rebuild_ms = (time.perf_counter() - t0) * 1000

    @staticmethod
    def _down_xy_z(labels: np.ndarray, f: int, fz: int) -> np.ndarray:
        nz, ny, nx = labels.shape[0] // fz * fz, labels.shape[1] // f * f, labels.shape[2] // f * f
        v = labels[:nz, :ny, :nx].reshape(nz // fz, fz, ny // f, f, nx // f, f)
        return v.max(axis=(1, 3, 5))

    def _reset_camera(self, img: vtkImageData) -> None:
        r = self.canvas.renderer
        x0, x1, y0, y1, z0, z1 = img.GetBounds()
        c = ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2)
        cam = r.GetActiveCamera()
        # Looking at the patient from the front (anterior = -y), head up (+z), patient's right on
        # the viewer's left as in radiological convention.
        cam.SetFocalPoint(*c)
        cam.SetPosition(c[0], c[1] - 3 * max(x1 - x0, z1 - z0, 1.0), c[2])
        cam.SetViewUp(0, 0, 1)
        r.ResetCamera()
        cam.Zoom(1.3)
        self._camera_set = True

    def reset(self) -> None:
        """A new scan or label map: full rebuild and camera reset."""
        self._camera_set = False
        self._small = None
        self.rebuild()
