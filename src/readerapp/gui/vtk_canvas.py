"""The VTK render widget shared by the slice and 3D views, and reading its pixels back.

``QWidget.grab()`` cannot see VTK's pixels (STACK.md), so screenshots and tests read them
through ``vtkWindowToImageFilter`` here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import vtkmodules.vtkInteractionStyle  # noqa: F401  (registers the interactor styles)
import vtkmodules.vtkRenderingFreeType  # noqa: F401
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (the OpenGL backend)
from PySide6 import QtCore, QtGui
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkWindowToImageFilter

_SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "Software Rasterizer", "SwiftShader")


def is_software_gl(rw) -> bool:  # type: ignore[no-untyped-def]
    """Whether OpenGL is drawn by the CPU (Mesa llvmpipe and the like: remote desktops, no GPU)."""
    try:
        caps = rw.ReportCapabilities() or ""
    except Exception:  # noqa: BLE001 (a driver that cannot say: assume hardware)
        return False
    head = "\n".join(caps.splitlines()[:3])  # vendor, renderer and version strings
    return any(s in head for s in _SOFTWARE_GL)


class VtkCanvas(QVTKRenderWindowInteractor):
    """A render widget that renders only once Qt has shown it (OSMesa crashed otherwise)."""

    def __init__(self, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.renderer = vtkRenderer()
        self.GetRenderWindow().AddRenderer(self.renderer)
        self._initialised = False
        self._gl_checked = False
        #: Called before the pixels are read back (a view draws what it has scheduled).
        self.before_pixels: Callable[[], None] | None = None
        self.setMinimumSize(120, 120)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)

    def ensure_initialised(self) -> bool:
        if self._initialised:
            return True
        if not self.isVisible():
            return False
        self.Initialize()
        self._initialised = True
        return True

    def render_now(self) -> None:
        """Render if shown; otherwise the next show renders (never before, see STACK.md)."""
        if self.ensure_initialised():
            rw = self.GetRenderWindow()
            rw.MakeCurrent()  # several OSMesa windows: never draw into another one's buffer
            rw.Render()
            if not self._gl_checked:
                self._gl_checked = True
                if is_software_gl(rw):
                    # Multisampling doubles a render's time in software OpenGL (the 3D view:
                    # 49 -> 26 ms), and each render holds up the window's input.
                    rw.SetMultiSamples(0)

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802
        """Resize through the render window's own (virtual) SetSize.

        QVTKRenderWindowInteractor calls the base ``vtkRenderWindow.SetSize``, which skips
        vtkOSOpenGLRenderWindow's reallocation of its offscreen buffer: after a view grew,
        OSMesa drew past the end of the old buffer (heap corruption, crashes at exit). This is
        the same method with the derived call, so every render window resizes its buffers.
        """
        scale = self.devicePixelRatioF()
        w, h = max(int(round(scale * self.width())), 1), max(int(round(scale * self.height())), 1)
        rw = self.GetRenderWindow()
        rw.SetDPI(int(round(72 * scale)))
        rw.SetSize(w, h)
        iren = rw.GetInteractor()
        if iren is not None:
            iren.SetSize(w, h)
            iren.ConfigureEvent()
        self.update()

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        """Keys belong to the window's actions, never to VTK's interactor styles (whose 'e'/'q'
        end the event loop, 'w' turns surfaces to wireframe, '3' switches to stereo...)."""
        ev.ignore()

    def keyReleaseEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        ev.ignore()

    def showEvent(self, ev: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(ev)
        QtCore.QTimer.singleShot(0, self.render_now)

    def pixels(self) -> np.ndarray:
        """The rendered RGB pixels, (height, width, 3) uint8, top row first."""
        if self.before_pixels is not None:
            self.before_pixels()
        if not self.ensure_initialised():
            return np.zeros((max(self.height(), 1), max(self.width(), 1), 3), np.uint8)
        rw = self.GetRenderWindow()
        rw.MakeCurrent()
        rw.Render()
        f = vtkWindowToImageFilter()
        f.SetInput(rw)
        f.SetInputBufferTypeToRGBA()  # 4 bytes a pixel: no row-alignment overrun (OSMesa)
        f.ReadFrontBufferOff()
        f.Update()
        img = f.GetOutput()
        w, h, _ = img.GetDimensions()
        arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)[..., :3]
        return np.ascontiguousarray(arr[::-1])
