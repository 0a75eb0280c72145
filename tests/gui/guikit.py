"""Helpers for driving the real window with the mouse in tests."""

from __future__ import annotations


def voxel_to_widget(view, zyx):
    """Where on a slice view's canvas (Qt logical pixels) a voxel is drawn."""
    from PySide6 import QtCore

    wx, wy = view.to_world(zyx)
    r = view.canvas.renderer
    r.SetWorldPoint(wx, wy, 0.0, 1.0)
    r.WorldToDisplay()
    dx, dy, _ = r.GetDisplayPoint()
    dpr = view.canvas.devicePixelRatioF()
    h = view.canvas.height() * dpr
    return QtCore.QPoint(int(round(dx / dpr)), int(round((h - 1 - dy) / dpr)))


def drag(qtbot, view, voxels, button=None):
    """Press at the first voxel, move through the others, release at the last."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    button = button or QtCore.Qt.MouseButton.LeftButton
    pts = [voxel_to_widget(view, v) for v in voxels]
    QTest.mousePress(view.canvas, button, QtCore.Qt.KeyboardModifier.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(view.canvas, p)
    QTest.mouseRelease(view.canvas, button, QtCore.Qt.KeyboardModifier.NoModifier, pts[-1])
