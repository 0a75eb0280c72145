"""Qt Designer forms (``ui/*.ui``) loaded at run time with QUiLoader.

Why at run time rather than ``pyside6-uic``: the .ui files stay the single source (edited in
Designer, shipped as data like the other resources), with no generated Python to regenerate and
keep in step, and no build step on any of the three packaging paths. The dialogs keep their
behaviour in Python: :func:`load_into` puts the form into the dialog and binds its named widgets
as attributes, so code and tests use ``dialog.user`` exactly as before.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets
from PySide6.QtUiTools import QUiLoader

from ..assets import AssetError, ui_file


def load_ui(name: str, parent: QtWidgets.QWidget | None = None) -> QtWidgets.QWidget:
    f = QtCore.QFile(str(ui_file(name)))
    if not f.open(QtCore.QIODevice.OpenModeFlag.ReadOnly):
        raise AssetError(f"ui/{name}: cannot be read ({f.errorString()})")
    try:
        loader = QUiLoader()
        form = loader.load(f, parent)
    finally:
        f.close()
    if form is None:
        raise AssetError(f"ui/{name}: not a valid Designer form ({loader.errorString()})")
    return form


def load_into(host: QtWidgets.QWidget, name: str, layout: QtWidgets.QBoxLayout | None = None,
              bind: tuple[str, ...] = ()) -> QtWidgets.QWidget:
    """Load ``ui/<name>`` into ``host`` (added to ``layout``, else to a new one) and set each
    widget named in ``bind`` as an attribute of ``host``."""
    form = load_ui(name, host)
    if layout is None:
        layout = QtWidgets.QVBoxLayout(host)
        layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(form)
    for n in bind:
        w = form.findChild(QtCore.QObject, n)
        if w is None:
            raise AssetError(f"ui/{name}: no widget named {n!r}")
        setattr(host, n, w)
    return form
