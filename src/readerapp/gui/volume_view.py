"""The 3D view: lungs as a translucent surface, GGO and consolidation as solid surfaces.

Surfaces come from a downsampled label map (at most about 160 voxels along an axis) through
vtkSurfaceNets3D, which smooths as it extracts; rebuilding after an edit is throttled (edits only
mark the view stale; a timer rebuilds at most every ``throttle_ms``) and redoes only the slabs the
edit touched, so painting never waits on the 3D view. The extraction runs in a worker thread
(VTK releases the GIL in its filters), so the window never waits on it either. Lesions are max-pooled when downsampled, so
a small lesion does not vanish.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6 import QtCore, QtWidgets
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from .slice_view import axis_flips
from .state import COLOURS
from .vtk_canvas import VtkCanvas

MAX_DIM = 160


def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


class VolumeView(QtWidgets.QFrame):
    maximize_requested = QtCore.Signal()
    _built = QtCore.Signal(object)  # a worker thread's surfaces, delivered in the GUI thread

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
        self.mappers: dict[int, vtkPolyDataMapper] = {}
        for value, (rgb, opacity) in specs.items():
            m = vtkPolyDataMapper()
            m.ScalarVisibilityOff()
            a = vtkActor()
            a.SetMapper(m)
            p = a.GetProperty()
            p.SetColor(*rgb)
            p.SetOpacity(opacity)
            if value == 1:
                p.BackfaceCullingOn()
            a.VisibilityOff()  # until the first rebuild gives the mappers surfaces
            r.AddActor(a)
            self.mappers[value] = m
            self.actors[value] = a
        self.throttle_ms = throttle_ms
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.rebuild_async)
        self._built.connect(self._on_built)
        self._worker: threading.Thread | None = None
        self._gen = 0
        self._unapplied: tuple[int, int] | None = None
        self._again = False
        self._closed = False
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
        job = self._take_job(labels, spacing)
        small = self._small_of(job, labels)
        self._small, self._small_key, self._unapplied = small, job["key"], None
        return small, job["factor"], job["fz"]

    def _take_job(self, labels: np.ndarray, spacing) -> dict:  # type: ignore[no-untyped-def]
        """What a rebuild needs, taken in the GUI thread (the edits' dirty range is consumed)."""
        factor = max(1, int(np.ceil(max(labels.shape[1:]) / MAX_DIM)))
        fz = min(max(1, int(round(factor * spacing[0] / spacing[2]))), factor)
        key = (labels.shape, factor, fz, id(labels))
        prev = self._small if self._small is not None and self._small_key == key else None
        # Ranges of jobs still running count too: only the newest job's result is shown, and it
        # starts from the last map shown.
        dirty = _union(self._dirty_z, self._unapplied)
        self._dirty_z, self._unapplied = None, dirty
        self._gen += 1
        return {"key": key, "factor": factor, "fz": fz, "prev": prev, "dirty": dirty,
                "gen": self._gen}

    @classmethod
    def _small_of(cls, job: dict, labels: np.ndarray) -> np.ndarray:
        """The downsampled map for a job (any thread: works on a copy of the previous one)."""
        factor, fz, prev, dirty = job["factor"], job["fz"], job["prev"], job["dirty"]
        if prev is None:
            return cls._down_xy_z(labels, factor, fz)
        if dirty is None:
            return prev
        small = prev.copy()
        zb0 = dirty[0] // fz
        zb1 = min(dirty[1] // fz + 1, small.shape[0])
        if zb1 > zb0:
            small[zb0:zb1] = cls._down_xy_z(labels[zb0 * fz : zb1 * fz], factor, fz)
        return small

    @classmethod
    def _surfaces(cls, job: dict, labels: np.ndarray, spacing, direction) -> dict:  # type: ignore[no-untyped-def]
        """Downsampling and surface extraction, in any thread (VTK's filters release the GIL,
        so the window stays responsive while a worker thread runs this)."""
        small = cls._small_of(job, labels)
        factor, fz = job["factor"], job["fz"]
        # Axes stored against LPS (towards R, A or I) are mirrored so the camera shows the
        # patient from the front, right on the viewer's left, whatever the scan's order.
        fx, fy, fz_ = axis_flips(direction)
        mirror = (slice(None, None, -1 if fz_ else 1), slice(None, None, -1 if fy else 1),
                  slice(None, None, -1 if fx else 1))
        data = np.ascontiguousarray(small[mirror])  # the lesion surfaces read labels 2 and 3
        # Lung surface: everything labelled (so lesions sit inside it), drawn as label 1.
        lung_like = np.ascontiguousarray((data > 0).astype(np.uint8))
        nz, ny, nx = data.shape
        sx, sy, sz = spacing
        polys, images = {}, {}
        for value in (1, 2, 3):
            img = vtkImageData()
            img.SetDimensions(nx, ny, nz)
            img.SetSpacing(sx * factor, sy * factor, sz * fz)
            src = lung_like if value == 1 else data
            img.GetPointData().SetScalars(numpy_to_vtk(src.reshape(-1), deep=1))
            net = vtkSurfaceNets3D()
            net.SetInputData(img)
            net.SetValue(0, value)
            net.SetOutputMeshTypeToTriangles()
            net.SetNumberOfIterations(12)
            net.SetBackgroundLabel(0)
            net.Update()
            poly = vtkPolyData()
            poly.ShallowCopy(net.GetOutput())
            polys[value] = poly
            images[value] = img
        bounds = (0.0, (nx - 1) * sx * factor, 0.0, (ny - 1) * sy * factor, 0.0, (nz - 1) * sz * fz)
        return {"job": job, "small": small, "polys": polys, "bounds": bounds,
                "image": images[2]}

    def _inputs(self):  # type: ignore[no-untyped-def]
        session = self.controller.session
        if session is None:
            return None
        direction = tuple(getattr(session.volume, "direction", None) or (1, 0, 0, 0, 1, 0, 0, 0, 1))
        return session.labels, session.volume.spacing, direction

    def rebuild(self) -> None:
        """Rebuild the surfaces now, in this thread (screenshots, tests, the benchmark)."""
        inputs = self._inputs()
        if inputs is None:
            return
        t0 = time.perf_counter()
        labels, spacing, direction = inputs
        self._apply(self._surfaces(self._take_job(labels, spacing), labels, spacing, direction))
        self.last_rebuild_ms = (time.perf_counter() - t0) * 1000

    def rebuild_async(self) -> None:
        """Rebuild the surfaces in a worker thread; the result is shown when it arrives. One
        build at a time: edits made meanwhile start one more when it is done."""
        inputs = self._inputs()
        if inputs is None:
            return
        if self._worker is not None and self._worker.is_alive():
            self._again = True
            return
        self._again = False
        labels, spacing, direction = inputs
        job = self._take_job(labels, spacing)
        t0 = time.perf_counter()

        def work() -> None:
            try:
                result = self._surfaces(job, labels, spacing, direction)
            except Exception as exc:  # noqa: BLE001 (the 3D view is an aid: the reading goes on)
                result = {"error": str(exc)}
            result["t0"] = t0
            self._built.emit(result)

        self._worker = threading.Thread(target=work, name="readerapp-3d", daemon=True)
        self._worker.start()

    def _on_built(self, result: dict) -> None:
        if self._closed:
            return
        if "error" not in result and self.controller.session is not None \
                and result["job"]["key"][3] == id(self.controller.session.labels):
            self._apply(result)
            self.last_rebuild_ms = (time.perf_counter() - result["t0"]) * 1000
        if self._again or self._stale:
            self._again = False
            QtCore.QTimer.singleShot(0, self.rebuild_async)

    def wait(self, timeout_s: float = 30.0) -> None:
        """Wait for a running build (and show it)."""
        w = self._worker
        if w is not None:
            w.join(timeout_s)
        QtCore.QCoreApplication.sendPostedEvents(self)

    def shutdown(self) -> None:
        """The window closes: no result is shown any more; a running build is waited for."""
        self._closed = True
        self._timer.stop()
        if self._worker is not None:
            self._worker.join(30.0)

    def _apply(self, result: dict) -> None:
        job = result["job"]
        if job["gen"] != self._gen:  # a newer build was started: its result will be shown
            return
        self._small, self._small_key, self._unapplied = result["small"], job["key"], None
        self.image = result["image"]  # the (mirrored) label image the lesion surfaces come from
        for value, poly in result["polys"].items():
            self.mappers[value].SetInputData(poly)
            self.actors[value].VisibilityOn()
        if not self._camera_set:
            self._reset_camera(result["bounds"])
        self._stale = False
        self.canvas.render_now()

    @staticmethod
    def _down_xy_z(labels: np.ndarray, f: int, fz: int) -> np.ndarray:
        nz, ny, nx = labels.shape[0] // fz * fz, labels.shape[1] // f * f, labels.shape[2] // f * f
        v = labels[:nz, :ny, :nx].reshape(nz // fz, fz, ny // f, f, nx // f, f)
        return v.max(axis=(1, 3, 5))

    def _reset_camera(self, bounds: tuple[float, ...]) -> None:
        r = self.canvas.renderer
        x0, x1, y0, y1, z0, z1 = bounds
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

    def reset(self, wait: bool = False) -> None:
        """A new scan or label map: full rebuild (in a worker thread) and camera reset."""
        self._camera_set = False
        self._small = None
        self._dirty_z = self._unapplied = None
        if wait:
            self.rebuild()
        else:
            self.rebuild_async()
