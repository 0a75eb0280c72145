"""One slice view (axial, coronal or sagittal): CT with window/level, label overlay, linked cursor.

Mouse as on common PACS consoles: wheel scrolls slices (Shift: 5 at a time, Ctrl: brush size),
right drag zooms, middle drag (or Shift + left drag) pans, left drag in the navigate tool sets
window/level and a left click moves the linked cursor; with an editing tool the left button
paints, fills or removes (Ctrl + left click always moves the cursor). Double-click maximizes.

The slice image is composed in NumPy (lookup tables, a few milliseconds for 512x512) and shown
by one vtkImageActor; only the views whose slice an edit touched are redrawn.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkActor2D,
    vtkImageActor,
    vtkPolyDataMapper,
    vtkPolyDataMapper2D,
    vtkTextActor,
)

from ..slicenum import axial_caption
from .brush_style import BrushStyle, brush_style, qt_pen
from .state import COLOURS, Tool, ViewState
from .vtk_canvas import VtkCanvas

AXIS_NAMES = ("Axial", "Coronal", "Sagittal")
#: Scale bar lengths (mm) to choose from.
SCALE_BAR_MM = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
#: Orientation letters at (left, right, top, bottom) of each view, radiological convention: the
#: patient's right on the viewer's left, anterior up (axial), head up (coronal, sagittal), anterior
#: on the left (sagittal). Every view is drawn this way whatever the scan's own axis directions.
ORIENTATION = (("R", "L", "A", "P"), ("R", "L", "S", "I"), ("A", "P", "S", "I"))
_OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
#: Volume axes (x=0, y=1, z=2) shown horizontally and vertically in each view.
_PLANE_AXES = ((0, 1), (0, 2), (1, 2))


def axis_flips(direction: tuple[float, ...]) -> tuple[bool, bool, bool]:
    """Which volume axes (x, y, z) run against LPS (towards R, A or I), from the direction
    cosines: those are mirrored on screen so that the radiological convention holds."""
    d = np.asarray(direction, float).reshape(3, 3)
    return tuple(bool(d[int(np.argmax(np.abs(d[:, k]))), k] < 0) for k in range(3))  # type: ignore[return-value]


def display_reversal(axis: int, direction: tuple[float, ...]) -> tuple[bool, bool]:
    """(columns reversed, rows reversed) of a view relative to voxel index order, where rows
    count bottom-up (VTK): axial rows run top-down in index order (anterior up)."""
    flips = axis_flips(direction)
    h, v = _PLANE_AXES[axis]
    return flips[h], (axis == 0) != flips[v]


def orientation_letters(axis: int, direction: tuple[float, ...]) -> tuple[str, str, str, str]:
    """Letters at (left, right, top, bottom) of a view as drawn (after :func:`display_reversal`).

    They come from the direction cosines, so a scan whose axes do not follow the patient's
    (a permuted acquisition) is still labelled truthfully."""
    d = np.asarray(direction, float).reshape(3, 3)

    def ends(k: int) -> tuple[str, str]:  # letters at index 0 and index n-1 of volume axis k
        a = int(np.argmax(np.abs(d[:, k])))
        high = ("L", "P", "S")[a] if d[a, k] > 0 else ("R", "A", "I")[a]
        return _OPPOSITE[high], high

    h, v = _PLANE_AXES[axis]
    rev_h, rev_v = display_reversal(axis, direction)
    lo, hi = ends(h)
    left, right = (hi, lo) if rev_h else (lo, hi)
    lo, hi = ends(v)
    top, bottom = (lo, hi) if rev_v else (hi, lo)
    return left, right, top, bottom


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a 2D mask (4-neighbourhood), without SciPy for speed."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def brush_cursor(diameter: int, dpr: float = 1.0, style: BrushStyle | None = None) -> QtGui.QCursor:
    """A mouse cursor drawn as the brush's circle with a dark rim and a centre dot, in the brush's
    style (:func:`.brush_style.brush_style`: disk white, sphere orange, HU-limited dashed)."""
    size = diameter + 4
    pm = QtGui.QPixmap(int(round(size * dpr)), int(round(size * dpr)))
    pm.setDevicePixelRatio(dpr)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    rect = QtCore.QRectF(2, 2, diameter, diameter)
    p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0, 160), 3))
    p.drawEllipse(rect)
    p.setPen(qt_pen(style, 1) if style is not None else QtGui.QPen(QtGui.QColor(*COLOURS["brush"]), 1))
    p.drawEllipse(rect)
    c = size / 2
    p.drawPoint(QtCore.QPointF(c, c))
    p.end()
    return QtGui.QCursor(pm, int(size / 2), int(size / 2))


class SliceView(QtWidgets.QFrame):
    hovered = QtCore.Signal(object)  # (z, y, x) under the mouse, or None
    maximize_requested = QtCore.Signal()
    activated = QtCore.Signal()

    def __init__(self, axis: int, state: ViewState, controller, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.axis = axis
        self.state = state
        self.controller = controller
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.header = QtWidgets.QLabel(AXIS_NAMES[axis])
        self.header.setObjectName("viewHeader")
        # The header's text changes with every slice: it must never resize the views (a resize
        # re-renders every canvas, and the layout would jiggle while scrolling).
        self.header.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                  QtWidgets.QSizePolicy.Policy.Fixed)
        self.header.setMinimumWidth(1)
        self.header.setToolTip(
            f"{AXIS_NAMES[axis]} view: wheel scrolls, right drag zooms, middle drag pans, "
            "double-click maximizes"
        )
        self.canvas = VtkCanvas(self)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(1, 1, 1, 1)
        lay.setSpacing(0)
        lay.addWidget(self.header)
        lay.addWidget(self.canvas, 1)
        self.canvas.installEventFilter(self)
        self.canvas.setMouseTracking(True)

        r = self.canvas.renderer
        r.SetBackground(0.0, 0.0, 0.0)
        self.image = vtkImageData()
        self.actor = vtkImageActor()
        self.actor.GetMapper().SetInputData(self.image)
        self.actor.InterpolateOff()
        # An opaque RGB slice: without this VTK draws it in the translucent pass as well, which
        # doubled a render's time in software OpenGL.
        self.actor.ForceOpaqueOn()
        r.AddActor(self.actor)
        self._cross_pts = vtkPoints()
        self._cross_pts.SetNumberOfPoints(4)
        cross = vtkPolyData()
        cross.SetPoints(self._cross_pts)
        lines = vtkCellArray()
        lines.InsertNextCell(2, [0, 1])
        lines.InsertNextCell(2, [2, 3])
        cross.SetLines(lines)
        self._cross_poly = cross
        # Opaque (a dimmed colour rather than opacity): a translucent actor costs a second pass.
        self.cross_actor = self._line_actor(
            cross, tuple(int(c * 0.6) for c in COLOURS["cursor"]), 1.0)
        r.AddActor(self.cross_actor)
        # Software OpenGL (OSMesa, remote desktops) pays dearly for multisampling, and nearest-
        # neighbour CT pixels and one-pixel lines gain nothing from it.
        self.canvas.GetRenderWindow().SetMultiSamples(0)
        self.canvas.before_pixels = self.sync
        # Scale bar (display coordinates, bottom right): a line with end ticks and its length.
        self._bar_pts = vtkPoints()
        self._bar_pts.SetNumberOfPoints(6)
        bar = vtkPolyData()
        bar.SetPoints(self._bar_pts)
        bar_lines = vtkCellArray()
        for a, b in ((0, 1), (2, 3), (4, 5)):
            bar_lines.InsertNextCell(2, [a, b])
        bar.SetLines(bar_lines)
        self._bar_poly = bar
        bar_mapper = vtkPolyDataMapper2D()
        bar_mapper.SetInputData(bar)
        self.bar_actor = vtkActor2D()
        self.bar_actor.SetMapper(bar_mapper)
        self.bar_actor.GetProperty().SetColor(1.0, 0.85, 0.3)
        r.AddViewProp(self.bar_actor)
        self.bar_text = vtkTextActor()
        tp = self.bar_text.GetTextProperty()
        tp.SetFontSize(11)
        tp.SetColor(1.0, 0.85, 0.3)
        tp.SetJustificationToCentered()
        r.AddViewProp(self.bar_text)
        self.scale_bar_mm = 0.0
        cam = r.GetActiveCamera()
        cam.ParallelProjectionOn()
        self.letters: list[vtkTextActor] = []
        for letter, (x, y, hj, vj) in zip(ORIENTATION[axis], [
            (0.01, 0.5, 0, 1), (0.99, 0.5, 2, 1), (0.5, 0.99, 1, 2), (0.5, 0.01, 1, 0),
        ], strict=True):
            t = vtkTextActor()
            t.SetInput(letter)
            t.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
            t.GetPositionCoordinate().SetValue(x, y)
            prop = t.GetTextProperty()
            prop.SetFontSize(14)  # points: the render window's DPI follows the screen's scale
            prop.SetColor(1.0, 0.85, 0.3)
            prop.SetJustification(hj)
            prop.SetVerticalJustification(vj)
            prop.BoldOn()
            r.AddViewProp(t)
            self.letters.append(t)

        self._gray_lut: np.ndarray | None = None
        self._lut_key: tuple[float, float] | None = None
        self._drag: tuple[str, QtCore.QPointF, tuple] | None = None
        self._shown_slice = -1
        self._geometry_key: tuple | None = None
        self._rev_key: tuple | None = None
        self._click_start: tuple | None = None  # (position, undo depth) at an editing press
        self._click_edit = False
        self._rev = (False, axis == 0)
        self.last_redraw_ms = 0.0
        self.brush_shown_style: BrushStyle | None = None  # the brush outline's style last shown
        self._pending: str | None = None  # "full" (recompose the slice) or "render" (crosshair)
        self._brush_cursor_key: tuple | None = None
        self.renders = 0  # renders done (the benchmark and tests count them)

    @staticmethod
    def _line_actor(poly: vtkPolyData, rgb, opacity: float) -> vtkActor:  # type: ignore[no-untyped-def]
        m = vtkPolyDataMapper()
        m.SetInputData(poly)
        a = vtkActor()
        a.SetMapper(m)
        a.GetProperty().SetColor(*(c / 255 for c in rgb))
        a.GetProperty().SetOpacity(opacity)
        a.PickableOff()
        return a

    # --- geometry ---------------------------------------------------------------------------
    @property
    def session(self):  # type: ignore[no-untyped-def]
        """What is drawn: the reading session, or the CT-only preview while it is prepared."""
        return self.controller.display

    def _plane_spacing(self) -> tuple[float, float]:
        sx, sy, sz = self.session.volume.spacing
        return ((sx, sy), (sx, sz), (sy, sz))[self.axis]

    def _plane_dims(self) -> tuple[int, int]:
        nz, ny, nx = self.session.labels.shape
        return ((nx, ny), (nx, nz), (ny, nz))[self.axis]  # (columns, rows)

    def _reversal(self) -> tuple[bool, bool]:
        direction = tuple(getattr(self.session.volume, "direction", None) or (1, 0, 0, 0, 1, 0, 0, 0, 1))
        if self._rev_key != direction:
            self._rev_key, self._rev = direction, display_reversal(self.axis, direction)
        return self._rev

    def to_world(self, zyx) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """Voxel (z, y, x) to the view's plane (mm), mirrored as the convention needs."""
        z, y, x = zyx
        sc, sr = self._plane_spacing()
        cols, rows = self._plane_dims()
        rev_h, rev_v = self._reversal()
        h, v = ((x, y), (x, z), (y, z))[self.axis]
        col = cols - 1 - h if rev_h else h
        row = rows - 1 - v if rev_v else v
        return col * sc, row * sr

    def from_world(self, wx: float, wy: float) -> tuple[float, float, float]:
        sc, sr = self._plane_spacing()
        cols, rows = self._plane_dims()
        rev_h, rev_v = self._reversal()
        col, row = wx / sc, wy / sr
        h = cols - 1 - col if rev_h else col
        v = rows - 1 - row if rev_v else row
        s = float(self.state.cursor[self.axis])
        if self.axis == 0:
            return (s, v, h)
        if self.axis == 1:
            return (v, s, h)
        return (v, h, s)

    def display_to_voxel(self, pos: QtCore.QPointF) -> tuple[float, float, float]:
        r = self.canvas.renderer
        dpr = self.canvas.devicePixelRatioF()
        h = self.canvas.height() * dpr
        r.SetDisplayPoint(pos.x() * dpr, h - 1 - pos.y() * dpr, 0.0)
        r.DisplayToWorld()
        wx, wy, _, ww = r.GetWorldPoint()
        return self.from_world(wx / ww, wy / ww)

    def voxel_in_volume(self, zyx) -> tuple[int, int, int] | None:  # type: ignore[no-untyped-def]
        v = tuple(int(round(c)) for c in zyx)
        if all(0 <= c < n for c, n in zip(v, self.session.labels.shape, strict=False)):
            return v  # type: ignore[return-value]
        return None

    def fit(self) -> None:
        """Whole slice in view, centred."""
        cols, rows = self._plane_dims()
        sc, sr = self._plane_spacing()
        w, h = (cols - 1) * sc, (rows - 1) * sr
        cam = self.canvas.renderer.GetActiveCamera()
        cam.SetFocalPoint(w / 2, h / 2, 0.0)
        cam.SetPosition(w / 2, h / 2, 1000.0)
        cam.SetViewUp(0, 1, 0)
        aspect = max(self.canvas.width(), 1) / max(self.canvas.height(), 1)
        cam.SetParallelScale(max(h / 2, w / 2 / aspect) * 1.02)
        self.canvas.renderer.ResetCameraClippingRange()

    def zoom(self, factor: float) -> None:
        cam = self.canvas.renderer.GetActiveCamera()
        cam.SetParallelScale(cam.GetParallelScale() / factor)
        self.schedule(full=False)

    def pan(self, dx_px: float, dy_px: float) -> None:
        cam = self.canvas.renderer.GetActiveCamera()
        scale = 2 * cam.GetParallelScale() / max(self.canvas.height(), 1)
        fx, fy, fz = cam.GetFocalPoint()
        px, py, pz = cam.GetPosition()
        cam.SetFocalPoint(fx - dx_px * scale, fy + dy_px * scale, fz)
        cam.SetPosition(px - dx_px * scale, py + dy_px * scale, pz)
        self.schedule(full=False)

    # --- drawing ----------------------------------------------------------------------------
    def _gray(self, hu2d: np.ndarray) -> np.ndarray:
        """Grey RGBA pixels (rows, columns, 4) of HU values through the window: one gather of
        32-bit words from a 65536-entry table (HU as an offset uint16), no float temporaries."""
        key = (self.state.window, self.state.level)
        if self._gray_lut is None or self._lut_key != key:
            w, level = key
            v = np.arange(-32768, 32768, dtype=np.float32)
            g = np.clip((v - (level - w / 2)) / w * 255.0, 0, 255).astype(np.uint32)
            self._gray_lut = (g | (g << 8) | (g << 16) | np.uint32(0xFF000000)).astype("<u4")
            self._lut_key = key
        idx = hu2d.view(np.uint16) ^ np.uint16(0x8000)  # -32768 -> 0, 0 -> 32768
        return self._gray_lut[idx].view(np.uint8).reshape(*hu2d.shape, 4)  # bytes R, G, B, A

    def slice_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(HU, labels) of the current slice as drawn: rows bottom-up for VTK, mirrored so the
        radiological convention holds (see :func:`display_reversal`)."""
        s = self.state.cursor[self.axis]
        hu, lab = self.session.volume.hu, self.session.labels
        if self.axis == 0:
            hu2, lab2 = hu[s], lab[s]
        elif self.axis == 1:
            hu2, lab2 = hu[:, s, :], lab[:, s, :]
        else:
            hu2, lab2 = hu[:, :, s], lab[:, :, s]
        lo, hi = self.slab_range()
        if hi - lo > 1:  # thick slab: MIP or MinIP over the slices around the cursor
            index: list[slice] = [slice(None)] * 3
            index[self.axis] = slice(lo, hi)
            block = hu[tuple(index)]
            hu2 = block.max(axis=self.axis) if self.state.slab_mode == "mip" else block.min(axis=self.axis)
        rev_h, rev_v = self._reversal()
        sl = (slice(None, None, -1 if rev_v else 1), slice(None, None, -1 if rev_h else 1))
        return hu2[sl], lab2[sl]

    def slab_range(self) -> tuple[int, int]:
        """Slices [lo, hi) of the thick slab around the cursor (one slice when it is off)."""
        s = self.state.cursor[self.axis]
        if self.state.slab_mode == "off" or self.session is None:
            return s, s + 1
        step = self._axis_spacing()
        n = max(1, int(round(self.state.slab_mm / step)))
        lo = max(0, s - n // 2)
        return lo, min(self.session.labels.shape[self.axis], lo + n)

    def _axis_spacing(self) -> float:
        sx, sy, sz = self.session.volume.spacing
        return (sz, sy, sx)[self.axis]

    def compose(self) -> np.ndarray:
        """RGB image of the current slice: grey CT, translucent lesions, lung outline."""
        return self._compose_rgba()[..., :3]

    def _compose_rgba(self) -> np.ndarray:
        """The slice as RGBA (opaque): what the image actor shows."""
        hu2d, lab2d = self.slice_arrays()
        rgba = self._gray(hu2d)
        rgb = rgba[..., :3]
        st = self.state
        if st.overlay_visible and self.session is not None:
            a = st.overlay_opacity
            for value, key in ((2, "ggo"), (3, "consolidation")):
                m = lab2d == value
                if m.any():
                    col = np.asarray(COLOURS[key], np.float32)
                    rgb[m] = (rgb[m] * (1 - a) + col * a).astype(np.uint8)
            if st.outline_visible:
                rgb[outline(lab2d > 0)] = COLOURS["lung_outline"]
        rev_h, rev_v = self._reversal()
        for mask, colour in self.controller.overlays(self.axis, self.state.cursor[self.axis]):
            rgb[mask[:: -1 if rev_v else 1, :: -1 if rev_h else 1]] = colour  # preview, measures
        return rgba

    def refresh_cursor(self) -> None:
        """The cursor moved: recompose only if this view's slice changed, else the crosshair.

        Nothing is drawn here: the redraw is scheduled (:meth:`schedule`), so a burst of wheel
        notches or cursor moves queued behind a redraw collapses into one render."""
        if self.session is None:
            return
        full = self.state.cursor[self.axis] != self._shown_slice
        if not full and not self.state.crosshair_visible:
            self.update_header()
            return  # nothing on this view moved: no render at all
        self.schedule(full=full)

    def schedule(self, full: bool = True) -> None:
        """Redraw once control returns to the event loop, however often this is called before.

        The header (slice number) follows at once; the pixels follow in :meth:`sync`."""
        if self.session is None:
            return
        first = self._pending is None
        if full or self._pending is None:
            self._pending = "full" if full else (self._pending or "render")
        self.update_header()
        if first:
            QtCore.QTimer.singleShot(0, self.sync)

    def sync(self) -> None:
        """Do the redraw scheduled, if any (also before the pixels are read back)."""
        if self._pending is not None and not self.isVisible():
            return  # hidden (1x1 layout, another view maximized): drawn when shown again
        pending, self._pending = self._pending, None
        if pending is None or self.session is None:
            return
        if pending == "full" or self.state.cursor[self.axis] != self._shown_slice:
            self.refresh()
        else:
            self._update_cross()
            self.render_view()

    def render_view(self) -> None:
        self.renders += 1
        self._update_scale_bar()
        self.canvas.render_now()

    def _update_scale_bar(self) -> None:
        """A bar of a round length (5 mm to 20 cm) about a fifth of the view wide, bottom right."""
        if self.session is None:
            return
        cam = self.canvas.renderer.GetActiveCamera()
        dpr = self.canvas.devicePixelRatioF()
        h_px, w_px = max(self.canvas.height() * dpr, 1), max(self.canvas.width() * dpr, 1)
        mm_per_px = 2 * cam.GetParallelScale() / h_px
        want = w_px / 5 * mm_per_px
        length = min(SCALE_BAR_MM, key=lambda v: abs(v - want))
        px = length / mm_per_px
        x1, y = w_px - 12 * dpr, 14 * dpr
        pts = self._bar_pts
        pts.SetPoint(0, x1 - px, y, 0)
        pts.SetPoint(1, x1, y, 0)
        pts.SetPoint(2, x1 - px, y - 4 * dpr, 0)
        pts.SetPoint(3, x1 - px, y + 4 * dpr, 0)
        pts.SetPoint(4, x1, y - 4 * dpr, 0)
        pts.SetPoint(5, x1, y + 4 * dpr, 0)
        pts.Modified()
        self._bar_poly.Modified()
        self.bar_text.SetInput(f"{length / 10:g} cm" if length >= 10 else f"{length:g} mm")
        self.bar_text.SetPosition(x1 - px / 2, y + 5 * dpr)
        self.scale_bar_mm = length

    def update_header(self) -> None:
        """Axial: the image number as the PACS shows it (InstanceNumber), position and
        thickness; coronal and sagittal: position in the volume. A thick slab says so."""
        if self.session is None:
            return
        n = self.session.labels.shape[self.axis]
        s = self.state.cursor[self.axis]
        if self.axis == 0:
            text = f"{AXIS_NAMES[0]}  {axial_caption(self.session.volume, s)}"
        else:
            text = f"{AXIS_NAMES[self.axis]}  {s + 1}/{n}"
        lo, hi = self.slab_range()
        if hi - lo > 1:
            text += f"  · {self.state.slab_mode.upper()} {(hi - lo) * self._axis_spacing():.0f} mm"
        self.header.setText(text)

    def refresh(self, render: bool = True) -> None:
        if self.session is None:
            return
        if render and not self.isVisible():
            self._pending = "full"  # hidden: composed and drawn when shown (showEvent)
            return
        self._pending = None
        t0 = time.perf_counter()
        rgba = self._compose_rgba()
        rows, cols = rgba.shape[:2]
        sc, sr = self._plane_spacing()
        img = self.image
        if img.GetDimensions() != (cols, rows, 1):
            img.SetDimensions(cols, rows, 1)
        img.SetSpacing(sc, sr, 1.0)
        img.SetOrigin(0.0, 0.0, 0.0)
        # No copy: the array is new for every redraw and VTK keeps a reference to it.
        arr = numpy_to_vtk(rgba.reshape(-1, 4), deep=0)
        arr.SetName("rgba")
        img.GetPointData().SetScalars(arr)
        img.Modified()
        key = (self.session.labels.shape, self.session.volume.spacing, self._rev_key)
        if key != self._geometry_key:
            self._geometry_key = key
            self.fit()
            for t, letter in zip(self.letters, orientation_letters(
                    self.axis, self.session.volume.direction), strict=True):
                t.SetInput(letter)
        width = max(1.0, self.canvas.devicePixelRatioF())  # lines one logical pixel wide (4K screens)
        self.cross_actor.GetProperty().SetLineWidth(width)
        self._update_cross()
        self.update_header()
        self._shown_slice = self.state.cursor[self.axis]
        if render:
            self.render_view()
        self.last_redraw_ms = (time.perf_counter() - t0) * 1000

    def _update_cross(self) -> None:
        self.cross_actor.SetVisibility(self.state.crosshair_visible)
        cols, rows = self._plane_dims()
        sc, sr = self._plane_spacing()
        wx, wy = self.to_world(self.state.cursor)
        z = 0.5
        self._cross_pts.SetPoint(0, wx, 0, z)
        self._cross_pts.SetPoint(1, wx, (rows - 1) * sr, z)
        self._cross_pts.SetPoint(2, 0, wy, z)
        self._cross_pts.SetPoint(3, (cols - 1) * sc, wy, z)
        self._cross_pts.Modified()
        self._cross_poly.Modified()

    def touches(self, flat_idx: np.ndarray) -> bool:
        """Whether changed voxels lie on this view's current slice."""
        if flat_idx.size == 0:
            return False
        nz, ny, nx = self.session.labels.shape
        s = self.state.cursor[self.axis]
        if self.axis == 0:
            c = flat_idx // (ny * nx)
        elif self.axis == 1:
            c = (flat_idx // nx) % ny
        else:
            c = flat_idx % nx
        return bool(np.any(c == s))

    def update_tool_cursor(self) -> None:
        """The mouse cursor for the tool: the brush's circle, a cross, or the arrow."""
        self._brush_cursor_key = None
        if self.controller.settings.tool is Tool.BRUSH:
            self.show_brush(None)
        else:
            shape = (QtCore.Qt.CursorShape.ArrowCursor if self.controller.settings.tool is Tool.NAVIGATE
                     else QtCore.Qt.CursorShape.CrossCursor)
            self.canvas.setCursor(shape)

    def show_brush(self, zyx) -> None:  # type: ignore[no-untyped-def]
        """The brush outline follows the mouse as the mouse cursor itself, in the brush's style
        (sphere orange, HU-limited dashed): hovering never re-renders the view (the cursor's
        picture changes only with brush size, style or zoom). Other tools: see
        :meth:`update_tool_cursor`."""
        st = self.controller.settings
        if st.tool is not Tool.BRUSH:
            return
        style = brush_style(st)
        cam = self.canvas.renderer.GetActiveCamera()
        mm_per_px = 2 * cam.GetParallelScale() / max(self.canvas.height(), 1)
        diameter = int(round(2 * st.radius_mm / max(mm_per_px, 1e-6)))
        key = (min(max(diameter, 5), 512), self.canvas.devicePixelRatioF(), style)
        self.brush_shown_style = style
        if key == self._brush_cursor_key:
            return
        self._brush_cursor_key = key
        self.canvas.setCursor(brush_cursor(*key))

    def showEvent(self, ev: QtGui.QShowEvent) -> None:  # noqa: N802
        super().showEvent(ev)
        if self._pending is not None:
            QtCore.QTimer.singleShot(0, self.sync)

    # --- mouse ------------------------------------------------------------------------------
    def eventFilter(self, obj, ev) -> bool:  # type: ignore[no-untyped-def]  # noqa: N802
        if obj is not self.canvas or self.session is None:
            return False
        t = ev.type()
        E = QtCore.QEvent.Type
        if t == E.MouseButtonPress:
            self.activated.emit()
            self._press(ev)
            return True
        if t == E.MouseMove:
            self._move(ev)
            return True
        if t == E.MouseButtonRelease:
            self._release(ev)
            return True
        if t == E.MouseButtonDblClick:
            if self._click_edit:  # the double-click's first click must not leave a dab behind
                self._click_edit = False
                self.controller.undo()
            self.maximize_requested.emit()
            return True
        if t == E.Wheel:
            self._wheel(ev)
            return True
        if t == E.Leave:
            self.hovered.emit(None)
            return False
        if t == E.Resize:
            QtCore.QTimer.singleShot(0, self._after_resize)
            return False
        return False

    def _after_resize(self) -> None:
        if self.session is not None:
            self.fit()
            self.schedule(full=False)

    def _press(self, ev: QtGui.QMouseEvent) -> None:
        pos = ev.position()
        b = ev.button()
        mods = ev.modifiers()
        Qt = QtCore.Qt
        zyx = self.display_to_voxel(pos)
        if self._drag is not None and self._drag[0] == "paint":
            # Another button during a stroke: finish the stroke now (one undo step, journaled),
            # else it stayed open, unjournaled, after the left button's release.
            self.controller.end_paint()
        if b == Qt.MouseButton.RightButton:
            self._drag = ("zoom", pos, ())
        elif b == Qt.MouseButton.MiddleButton or (
            b == Qt.MouseButton.LeftButton and mods & Qt.KeyboardModifier.ShiftModifier
        ):
            self._drag = ("pan", pos, ())
        elif b == Qt.MouseButton.LeftButton:
            if mods & Qt.KeyboardModifier.ControlModifier:
                self.state.set_cursor(zyx)
                self._drag = None
                return
            tool = self.controller.settings.tool
            session = self.controller.session
            if tool is not Tool.NAVIGATE and session is not None:
                self._click_start = (pos, session.editor.undo_depth)
            if tool is Tool.NAVIGATE:
                self._drag = ("wl", pos, (self.state.window, self.state.level, zyx))
            elif tool is Tool.BRUSH:
                self._drag = ("paint", pos, ())
                self.controller.begin_paint(self.axis, zyx)
            elif tool in (Tool.RULER, Tool.ROI_ELLIPSE, Tool.ROI_FREEHAND):
                self._drag = ("measure", pos, ())
                self.controller.measure.press(self.axis, zyx)
            else:
                self._drag = None
                self.controller.click_tool(self.axis, zyx)

    def _move(self, ev: QtGui.QMouseEvent) -> None:
        pos = ev.position()
        zyx = self.display_to_voxel(pos)
        self.hovered.emit(self.voxel_in_volume(zyx))
        if self._drag is None:
            self.show_brush(zyx)
            return
        kind, start, extra = self._drag
        d = pos - start
        if kind == "zoom":
            self.zoom(1.0 + (-d.y()) / 200.0 if abs(d.y()) < 150 else 1.0)
            self._drag = (kind, pos, ())
        elif kind == "pan":
            self.pan(d.x(), d.y())
            self._drag = (kind, pos, ())
        elif kind == "wl":
            w0, l0, _ = extra
            self.state.set_window(w0 * (1.0 + d.x() / 300.0), l0 - d.y() * w0 / 600.0)
        elif kind == "paint":
            self.controller.move_paint(zyx)  # the edit schedules the one redraw it needs
        elif kind == "measure":
            self.controller.measure.move(zyx)

    def _release(self, ev: QtGui.QMouseEvent) -> None:
        start_click, self._click_start = self._click_start, None
        self._click_edit = False
        if self._drag is None:
            self._note_click_edit(start_click, ev)
            return
        kind, start, extra = self._drag
        self._drag = None
        if kind == "paint":
            self.controller.end_paint()
            self._note_click_edit(start_click, ev)
        elif kind == "measure":
            self.controller.measure.release(self.display_to_voxel(ev.position()))
        elif kind == "wl":
            d = ev.position() - start
            if abs(d.x()) + abs(d.y()) < 3:  # a click, not a drag: move the cursor
                w0, l0, zyx = extra
                self.state.set_window(w0, l0)
                self.state.set_cursor(zyx)

    def _note_click_edit(self, start, ev: QtGui.QMouseEvent) -> None:  # type: ignore[no-untyped-def]
        """Remember whether this was a plain click that made exactly one edit (a dab, a fill):
        if it turns out to start a double-click (maximize), that edit is taken back."""
        session = self.controller.session
        if start is None or session is None:
            return
        pos, depth = start
        d = ev.position() - pos
        self._click_edit = (abs(d.x()) + abs(d.y()) < 3 and session.editor.undo_depth == depth + 1)

    def _wheel(self, ev: QtGui.QWheelEvent) -> None:
        delta = ev.angleDelta()
        # Shift + wheel arrives as a horizontal scroll on some systems (macOS, some mice).
        steps = (delta.y() or delta.x()) / 120.0
        if steps == 0:
            return
        mods = ev.modifiers()
        Qt = QtCore.Qt
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.controller.change_brush(+1 if steps > 0 else -1)
            self.show_brush(None)
            return
        n = 5 if mods & Qt.KeyboardModifier.ShiftModifier else 1
        self.state.step_slice(self.axis, int(np.sign(steps)) * n)
