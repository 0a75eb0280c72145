"""The reader's main window: four views, tools, live numbers, forms, help.

Slots gather input and call the core; errors from bad input reach the reader as one dialog
(:meth:`MainWindow.show_error`), never a traceback. ``interactive=False`` (tests, ``--screenshot``)
replaces every modal dialog with a recorded message and a policy given up front.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..editing.session import LabelOrigin, ReadingSession
from ..errors import ReaderAppError
from ..slicenum import image_label
from .actions import MODES, TOOLS, TypingGuard, build_actions
from .brush_style import brush_style
from .controller import EditController
from .densitometry_panel import DensitometryPanel
from .forms_panel import FormsPanel
from .loader import LoadWorker, start_worker
from .slice_view import SliceView
from .state import ViewState
from .theme import apply_theme
from .tools_panel import MODE_ACTIONS, TOOL_ACTIONS, ToolsPanel, help_html
from .volume_view import VolumeView

log = logging.getLogger(__name__)
MAX_RECENT = 10
#: Settings keys of older versions that held scan or read paths (removed on start).
_IDENTIFYING_KEYS = ("recent", "last_dir", "last_read_dir")
#: Tool settings kept between sessions: the 3D fill's reach and the size above which to ask.
_REMEMBERED_TOOL_SETTINGS = ("fill_radius_mm", "confirm_ml")
LABEL_NAMES = {0: "outside", 1: "lung", 2: "GGO", 3: "consolidation"}


class _PressWatcher(QtCore.QObject):
    """Calls ``fn`` on every mouse press in the watched widget (and lets the press through)."""

    def __init__(self, fn, parent: QtCore.QObject) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self._fn = fn

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802
        if ev.type() == QtCore.QEvent.Type.MouseButtonPress:
            self._fn()
        return False


class MainWindow(QtWidgets.QMainWindow):
    session_ready = QtCore.Signal()
    first_image = QtCore.Signal()  # the CT is drawn (segmentation may still be running)
    load_failed = QtCore.Signal(str)
    read_saved = QtCore.Signal(object)  # the read folder, once written
    save_failed = QtCore.Signal(str)

    def __init__(
        self,
        *,
        backend: str = "auto",
        journal_root: Path | None = None,
        use_journal: bool = True,
        restore_policy: str = "ask",  # ask | restore | discard
        interactive: bool = True,
        settings: QtCore.QSettings | None = None,
    ) -> None:
        super().__init__()
        app = QtWidgets.QApplication.instance()
        apply_theme(app if isinstance(app, QtWidgets.QApplication) else None)
        self.backend = backend
        self.journal_root = journal_root
        self.use_journal = use_journal
        self.restore_policy = restore_policy
        self.interactive = interactive
        self.settings = settings or QtCore.QSettings("ReaderApp", "ReaderApp")
        self.errors: list[str] = []
        #: Questions asked without dialogs (``interactive=False``) and the answer they get.
        self.questions: list[str] = []
        self.confirm_answer = True
        self.restored_edits = 0
        self.state = ViewState()
        self.controller = EditController()
        for key in _REMEMBERED_TOOL_SETTINGS:  # the reader's limits come back (plain numbers)
            value = self.settings.value(f"tools/{key}")
            if value is not None:
                with contextlib.suppress(TypeError, ValueError):  # a damaged value: the default
                    setattr(self.controller.settings, key, float(value))
        self.actions_ = build_actions(self)
        self._typing_guard = TypingGuard(self)
        if app is not None:
            app.installEventFilter(self._typing_guard)
        self._thread: QtCore.QThread | None = None
        self._worker: LoadWorker | None = None
        self._saver: tuple[QtCore.QThread, Any] | None = None
        self._close_after_save = False
        self.active_axis = 0  # the slice view the arrow keys scroll
        self.active_view = 0  # the view X maximizes: a slice view (0-2) or the 3D view (3)
        self.last_read_folder: Path | None = None
        #: Recent scans and the last folders, for this session only: a scan's path can name the
        #: patient, so none is ever written into the user's settings (older keys are removed).
        self._recent: list[str] = []
        self._last_dir: str | None = None
        for key in _IDENTIFYING_KEYS:
            self.settings.remove(key)
        self._journal_error_shown: str | None = None
        self.compare_window: Any = None

        self.setWindowTitle("ReaderApp")
        self.setAcceptDrops(True)
        self._build_views()
        for n in ("slice_next", "slice_prev"):  # arrows stay with the form's widgets elsewhere
            act = self.actions_[n]
            self.removeAction(act)
            self.stack.addAction(act)
            act.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._build_docks()
        self._build_menus()
        self._build_statusbar()
        self._connect()
        self.notes: list[str] = []  # informational messages (tests read them)
        from .display_tools import DisplayTools

        self.display_tools = DisplayTools(self)  # PACS habits: cine, slab, layouts, W/L typed
        from .icons import apply_icons, icon, install_help_menu

        apply_icons({**self.actions_, **self.display_tools.actions})
        install_help_menu(self)
        self.help_view.setHtml(help_html({**self.actions_, **self.display_tools.actions}))
        main_tb = self.findChild(QtWidgets.QToolBar, "mainToolbar")
        if main_tb is not None:  # icons, and the words beside them for the frequent commands
            main_tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setWindowIcon(icon("readerapp"))
        self.resize(1600, 1000)
        if interactive:  # the reader's own layout comes back (not in tests or screenshots)
            geometry = self.settings.value("window/geometry")
            state = self.settings.value("window/state")
            if geometry is not None:
                self.restoreGeometry(geometry)
            if state is not None:
                self.restoreState(state)

    # --- layout -----------------------------------------------------------------------------
    def _build_views(self) -> None:
        self.slice_views = [SliceView(a, self.state, self.controller) for a in range(3)]
        self.volume_view = VolumeView(self.controller)
        self.views: list[Any] = [*self.slice_views, self.volume_view]
        central = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(central)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(3)
        for w, (r, c) in zip(self.views, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=False):
            self.grid.addWidget(w, r, c)
        self.placeholder = QtWidgets.QLabel(
            "Open a scan: File ▸ Open (Ctrl+O), drop a DICOM folder here, or pick a recent scan."
        )
        self.placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setObjectName("placeholder")
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(central)
        self.setCentralWidget(self.stack)
        self.maximized_view: QtWidgets.QWidget | None = None

    def _build_docks(self) -> None:
        self.tools_panel = ToolsPanel(self.actions_, self.controller, self.state)
        left = QtWidgets.QDockWidget("Tools", self)
        left.setObjectName("toolsDock")
        scroll = QtWidgets.QScrollArea()  # small screens: scroll rather than force the size
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(self.tools_panel)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.tools_panel.minimumSizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width())
        left.setWidget(scroll)
        left.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, left)
        self.numbers = DensitometryPanel()
        self.forms = FormsPanel()
        from .measuring import MeasurementsPanel

        self.measurements = MeasurementsPanel(self.controller.measure, self.state)
        self.help_view = QtWidgets.QTextBrowser()
        self.help_view.setHtml(help_html(self.actions_))
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setMinimumWidth(self.fontMetrics().horizontalAdvance("M") * 22)
        self.tabs.addTab(self.numbers, "Densitometry")
        self.tabs.addTab(self.forms, "Read form")
        self.tabs.addTab(self.measurements, "Measurements")
        self.tabs.addTab(self.help_view, "Help")
        right = QtWidgets.QDockWidget("Read", self)
        right.setObjectName("readDock")
        right.setWidget(self.tabs)
        right.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, right)
        self._docks = (left, right)
        QtCore.QTimer.singleShot(0, self._size_docks)

    def _size_docks(self) -> None:
        em = self.fontMetrics().horizontalAdvance("M")
        left_w = self._docks[0].widget().minimumWidth()
        self.resizeDocks(list(self._docks), [left_w, max(em * 30, self.width() // 4)],
                         QtCore.Qt.Orientation.Horizontal)

    def _build_menus(self) -> None:
        a = self.actions_
        mb = self.menuBar()
        file = mb.addMenu("&File")
        file.addAction(a["open"])
        self.recent_menu = file.addMenu("Open &recent")
        file.addAction(a["open_labels"])
        file.addAction(a["save"])
        compare = file.addAction("&Compare with another scan…")
        compare.setToolTip("Baseline and follow-up side by side, scrolling linked by patient position")
        compare.triggered.connect(self.compare_dialog)
        file.addSeparator()
        pacs = file.addAction("Retrieve from &PACS…")
        pacs.setToolTip("Query a PACS node and open a retrieved CT series")
        pacs.triggered.connect(self.open_pacs_browser)
        site = file.addAction("Site &settings…")
        site.setToolTip("Study database and PACS nodes (the first-run dialog)")
        site.triggered.connect(self.open_site_settings)
        file.addSeparator()
        file.addAction(a["quit"])
        edit = mb.addMenu("&Edit")
        for n in ["undo", "redo", None, *TOOLS, "measure_delete", None, *MODES, None, "opt_sphere", "opt_hu_limited",
                  "opt_keep_inside", "opt_fill_3d", "opt_remove_3d", "apply_preview", "interpolate",
                  "brush_smaller", "brush_larger"]:
            edit.addSeparator() if n is None else edit.addAction(a[n])
        view = mb.addMenu("&View")
        for n in ["preset_lung", "preset_mediastinum", None, "overlay_toggle", "outline_toggle",
                  None, "slice_next", "slice_prev", "maximize", "reset_views"]:
            view.addSeparator() if n is None else view.addAction(a[n])
        mb.addMenu("&Help").addAction(a["help"])
        tb = self.addToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        for n in ["open", "save", None, "undo", "redo", None, "preset_lung", "preset_mediastinum",
                  None, "help"]:
            tb.addSeparator() if n is None else tb.addAction(a[n])
        self._refresh_recent()

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.pos_label = QtWidgets.QLabel("")
        self.pos_label.setObjectName("posLabel")
        sb.addWidget(self.pos_label, 1)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop loading")
        self.cancel_button.clicked.connect(self.cancel_loading)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        self.wl_label = QtWidgets.QLabel("")
        sb.addPermanentWidget(self.wl_label)
        self.progress.hide()
        self.cancel_button.hide()

    def _connect(self) -> None:
        a, c, st = self.actions_, self.controller, self.state
        a["open"].triggered.connect(self.open_dialog)
        a["open_labels"].triggered.connect(self.open_labels_dialog)
        a["save"].triggered.connect(lambda: self.save_read())
        a["quit"].triggered.connect(self.close)
        a["undo"].triggered.connect(c.undo)
        a["redo"].triggered.connect(c.redo)
        for n, tool in TOOLS.items():
            a[n].triggered.connect(lambda _=False, t=tool: c.set_tool(t))
        for n, mode in MODES.items():
            a[n].triggered.connect(lambda _=False, m=mode: c.set_mode(m))
        a["opt_sphere"].toggled.connect(lambda v: c.set_option(sphere=v))
        a["opt_hu_limited"].toggled.connect(lambda v: c.set_option(hu_limited=v))
        a["opt_keep_inside"].toggled.connect(lambda v: c.set_option(keep_inside_lung=v))
        a["opt_fill_3d"].toggled.connect(lambda v: c.set_option(fill_3d=v))
        a["interpolate"].triggered.connect(c.interpolate)
        a["opt_remove_3d"].toggled.connect(lambda v: c.set_option(remove_3d=v))
        a["apply_preview"].triggered.connect(c.apply_pending)
        c.preview_changed.connect(self.refresh_views)
        from .preview_3d import Preview3D

        self.preview_3d = Preview3D(self.volume_view, c)  # the preview in the 3D view too
        c.measure.changed.connect(self.refresh_views)
        c.measure.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        a["measure_delete"].triggered.connect(c.measure.delete_last)
        c.confirm = self.ask_yes_no
        a["brush_smaller"].triggered.connect(lambda: c.change_brush(-1))
        a["brush_larger"].triggered.connect(lambda: c.change_brush(+1))
        a["overlay_toggle"].toggled.connect(lambda v: st.set_overlay(visible=v))
        a["outline_toggle"].toggled.connect(lambda v: st.set_overlay(outline=v))
        a["preset_lung"].triggered.connect(lambda: st.preset("lung"))
        a["preset_mediastinum"].triggered.connect(lambda: st.preset("mediastinum"))
        a["slice_next"].triggered.connect(lambda: st.step_slice(self.active_axis, +1))
        a["slice_prev"].triggered.connect(lambda: st.step_slice(self.active_axis, -1))
        a["maximize"].triggered.connect(lambda: self.toggle_maximize(self.views[self.active_view]))
        a["reset_views"].triggered.connect(self.reset_views)
        a["help"].triggered.connect(lambda: self.tabs.setCurrentWidget(self.help_view))
        st.cursor_changed.connect(self._on_cursor_changed)
        st.display_changed.connect(self.refresh_views)
        c.voxels_changed.connect(self._on_voxels_changed)
        c.step_done.connect(self._on_step_done)
        c.settings_changed.connect(self._on_settings_changed)
        c.message.connect(lambda m: self.statusBar().showMessage(m, 5000))
        for v in self.slice_views:
            v.hovered.connect(self._on_hover)
            v.maximize_requested.connect(lambda v=v: self.toggle_maximize(v))
            v.activated.connect(lambda v=v: self._activate(v.axis))
        # A click in the 3D view makes it the active view: X maximizes it as it does a slice view.
        self._volume_activation = _PressWatcher(lambda: self._activate(3), self)
        self.volume_view.canvas.installEventFilter(self._volume_activation)
        self.volume_view.maximize_requested.connect(lambda: self.toggle_maximize(self.volume_view))

    def _activate(self, view: int) -> None:
        self.active_view = view
        if view < 3:
            self.active_axis = view

    # --- opening ----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = self._last_dir or str(Path.home())
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a DICOM series folder", start)
        if d:
            self.open_series([d])

    def open_labels_dialog(self) -> None:
        if self.controller.session is None:
            return
        f, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open a label map", "", "Label maps (*.nii *.nii.gz *.nrrd *.nhdr)")
        if f:
            self.open_series(self._current_inputs, labels_path=f)

    def open_series(self, inputs, labels_path: str | Path | None = None) -> None:  # type: ignore[no-untyped-def]
        """Load a series folder (or a CTVolume) in the background; ``session_ready`` when done."""
        if self._thread is not None:
            self.show_error("A scan is still loading; cancel it first.")
            return
        if self._saver is not None:
            self.show_error("The read is still being saved.")
            return
        s = self.controller.session
        if self.interactive and s is not None and not self._may_leave(s, "Open the other scan anyway?"):
            return
        self._current_inputs = inputs
        if isinstance(inputs, (list, tuple)) and inputs:
            self._add_recent(str(inputs[0]))
            self._last_dir = str(Path(inputs[0]).parent)
        self._worker = LoadWorker(inputs, labels_path, self.backend, self.journal_root,
                                  self.use_journal)
        self._worker.progress.connect(self._on_progress)
        self._worker.volume_loaded.connect(self._on_volume_loaded)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.failed.connect(self._on_failed)
        # A bound slot, not a lambda: a lambda ran in the worker's thread and touched the status
        # bar from there (Qt: "Cannot create children for a parent in a different thread").
        self._worker.cancelled.connect(self._on_load_cancelled)
        self.progress.setValue(0)
        self.progress.setFormat("Opening… %p%")
        self.progress.show()
        self.cancel_button.show()
        self._thread = start_worker(self, self._worker)
        self._thread.finished.connect(self._on_worker_done)

    def _on_load_cancelled(self) -> None:
        self.statusBar().showMessage("Loading cancelled", 5000)

    def cancel_loading(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{message} %p%")

    def _on_worker_done(self) -> None:
        if self._thread is not None:
            self._thread.wait(1000)
            self._thread.deleteLater()
        self._thread = None
        self._worker = None
        self.progress.hide()
        self.cancel_button.hide()

    def _on_volume_loaded(self, volume) -> None:  # type: ignore[no-untyped-def]
        """The CT is in memory: show it now; the labels follow when segmentation is done."""
        if self.controller.session is not None:
            self.controller.session.close()
        self.controller.show_preview(volume)
        self.numbers.clear("Segmenting…")
        self.state.reset(volume.shape)
        self.stack.setCurrentIndex(1)
        for v in self.slice_views:
            v._geometry_key = None
        self.refresh_views()
        for v in self.slice_views:
            v.sync()  # drawn now: ``first_image`` means the CT is on screen
        self.first_image.emit()

    def _on_failed(self, message: str) -> None:
        self.show_error(message)
        self.load_failed.emit(message)

    def _on_loaded(self, payload) -> None:  # type: ignore[no-untyped-def]
        session, rec, journal_error = payload
        self.restored_edits = 0
        if journal_error:
            self.show_error(f"Edits will not be journaled: {journal_error}")
        if rec is not None:
            policy = self.restore_policy
            if policy == "ask" and self.interactive:
                answer = QtWidgets.QMessageBox.question(
                    self, "Restore unsaved edits?",
                    f"ReaderApp was closed with {rec.n_edits} unsaved edit(s) on this scan.\n"
                    "Restore them?",
                    QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
                )
                policy = "restore" if answer == QtWidgets.QMessageBox.StandardButton.Yes else "discard"
            restore = rec if policy in ("restore", "ask") else None
            try:
                self.restored_edits = session.start_journal(restore)
            except ReaderAppError as exc:
                self.show_error(f"Edits will not be journaled: {exc}")
        self.set_session(session)
        if self.restored_edits:
            self.statusBar().showMessage(f"Restored {self.restored_edits} unsaved edit(s)", 8000)
        self.session_ready.emit()

    def set_session(self, session: ReadingSession) -> None:
        old = self.controller.session
        if old is not None and old is not session:
            old.close()
        preview = self.controller.display
        same_grid = preview is not None and preview.labels.shape == session.labels.shape
        self.controller.set_session(session)
        if not same_grid:  # keep the reader's slice if the preview was already shown
            self.state.reset(session.labels.shape)
        self.stack.setCurrentIndex(1)
        uid = session.volume.series_uid or ""
        tag = hashlib.sha256(uid.encode()).hexdigest()[:8] if uid else "unnamed"
        self.setWindowTitle(f"ReaderApp — scan {tag}")  # never patient identity
        if not same_grid:
            for v in self.slice_views:
                v._geometry_key = None
        self.numbers.set_initial(session.initial_endpoints.to_dict(),
                                 "Auto" if session.prepared.origin == LabelOrigin.AUTO else "Loaded")
        self.numbers.update_values(session)
        self.refresh_views()
        self.volume_view.reset()
        self.tools_panel.sync()
        self.measurements.sync()
        if session.prepared.form is not None:
            self.forms.set_form(session.prepared.form)
        for w in session.prepared.warnings:
            self.statusBar().showMessage(w, 10000)

    # --- comparing two visits ---------------------------------------------------------------
    def open_comparison(self, volume, labels=None, title: str = "Other scan"):  # type: ignore[no-untyped-def]
        """Show the scan being read beside another visit's, scrolling linked by patient position.

        ``labels`` of the other scan: an array on its grid (a saved read's), or None (none drawn).
        """
        from .compare_view import CompareWindow

        s = self.controller.session
        if s is None:
            self.show_error("Open the scan to read first, then the scan to compare it with.")
            return None
        other = labels if labels is not None else np.zeros(volume.shape, np.uint8)
        if self.compare_window is not None:
            self.compare_window.close()
        self.compare_window = CompareWindow(
            ("This scan (being read)", s.volume, lambda: self.controller.session.labels
             if self.controller.session is not None else s.labels),
            (title, volume, other), self)
        self.compare_window.follow(self.state.cursor[0])
        self.compare_window.show()
        return self.compare_window

    def compare_dialog(self) -> None:
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "The other visit's DICOM series folder",
                                                       self._last_dir or str(Path.home()))
        if not d:
            return
        r = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Its saved read folder, for its labels (Cancel: no labels)", str(Path(d).parent))
        try:
            from ..editing.session import prepare

            QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
            try:
                if r:
                    p = prepare([d], labels_path=r)
                    volume, labels = p.volume, p.labels
                else:
                    from ..io.dicom import load_series

                    vols = load_series([d])
                    if not vols:
                        raise ReaderAppError(f"no CT series found in {d}")
                    volume, labels = max(vols, key=lambda v: v.hu.size), None
            finally:
                QtWidgets.QApplication.restoreOverrideCursor()
        except ReaderAppError as exc:
            self.show_error(f"The scan to compare was not opened: {exc}")
            return
        self.open_comparison(volume, labels, "Other visit")

    # --- PACS and site settings (dialogs of the sites part) -------------------------------------
    def open_pacs_browser(self) -> None:
        from .pacs_dialog import PacsBrowser

        dlg = PacsBrowser(self)
        dlg.series_retrieved.connect(lambda folder: self.open_series([folder]))
        dlg.show()

    def open_site_settings(self) -> None:
        from .firstrun import FirstRunDialog

        FirstRunDialog(self).exec()

    # --- recent list and drops --------------------------------------------------------------
    def recent(self) -> list[str]:
        """Scans opened in this session, newest first (kept in memory only, never stored)."""
        return list(self._recent)

    def _add_recent(self, path: str) -> None:
        self._recent = ([path] + [p for p in self._recent if p != path])[:MAX_RECENT]
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent():
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self.open_series([p]))
        self.recent_menu.setEnabled(bool(self.recent()))

    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_series(paths)

    # --- redraw -----------------------------------------------------------------------------
    def refresh_views(self) -> None:
        if self.controller.display is None:
            return
        for v in self.slice_views:
            v.schedule(full=True)  # one redraw per view, however many changes come first
        self._update_wl()

    def _on_cursor_changed(self) -> None:
        if self.controller.display is None:
            return
        if self.compare_window is not None and self.compare_window.isVisible():
            self.compare_window.follow(self.state.cursor[0])
        for v in self.slice_views:
            v.refresh_cursor()

    def _on_voxels_changed(self, idx: np.ndarray) -> None:
        session = self.controller.session
        self.numbers.update_values(session)  # numbers follow the brush at once
        self.volume_view.note_change(idx)
        for v in self.slice_views:
            if v.touches(idx):
                v.schedule(full=True)  # one redraw per view, however many strokes come first

    def _on_step_done(self) -> None:
        self.volume_view.mark_stale()
        if self.compare_window is not None and self.compare_window.isVisible():
            self.compare_window.left.draw()
        self.tools_panel.sync()
        self.numbers.update_values(self.controller.session)
        self._report_journal_error()

    def _report_journal_error(self) -> None:
        """Tell the reader once when the journal stopped (a crash would now lose the edits)."""
        s = self.controller.session
        if s is not None and s.journal_error and s.journal_error != self._journal_error_shown:
            self._journal_error_shown = s.journal_error
            self.show_error(f"Edits are no longer journaled for now ({s.journal_error}). Journaling "
                            "resumes by itself once the disk has room; until then save the read "
                            "soon: after a crash the latest edits could not be restored.")

    def _on_settings_changed(self) -> None:
        st = self.controller.settings
        for key in _REMEMBERED_TOOL_SETTINGS:
            if self.settings.value(f"tools/{key}") != str(getattr(st, key)):
                self.settings.setValue(f"tools/{key}", str(getattr(st, key)))
        a = self.actions_
        a[TOOL_ACTIONS[st.tool]].setChecked(True)
        a[MODE_ACTIONS[st.mode]].setChecked(True)
        for v in self.slice_views:
            v.update_tool_cursor()
        self.tools_panel.sync()
        self.statusBar().showMessage(
            f"Tool: {st.tool.value}, label: {st.mode.value}, brush {st.radius_mm:g} mm "
            f"{brush_style(st).text}", 3000)

    def _on_hover(self, zyx) -> None:  # type: ignore[no-untyped-def]
        s = self.controller.display
        if zyx is None or s is None:
            self.pos_label.setText("")
            return
        z, y, x = zyx
        hu = int(s.volume.hu[z, y, x])
        lab = LABEL_NAMES.get(int(s.labels[z, y, x]), "?")
        self.pos_label.setText(f"x {x}  y {y}  {image_label(s.volume, z)}   {hu} HU   {lab}")

    def go_to_image(self, number: int) -> None:
        """Show image ``number`` as the PACS numbers it (DICOM InstanceNumber)."""
        self.display_tools.go_to_image(number)

    def _update_wl(self) -> None:
        self.wl_label.setText(f"W {self.state.window:.0f}  L {self.state.level:.0f}")

    def toggle_maximize(self, view: QtWidgets.QWidget) -> None:
        if self.maximized_view is None:
            for v in self.views:
                v.setVisible(v is view)
            self.maximized_view = view
        else:
            for v in self.views:
                v.setVisible(True)
            self.maximized_view = None
        QtCore.QTimer.singleShot(0, self.reset_views)

    def reset_views(self) -> None:
        if self.controller.session is None:
            return
        for v in self.slice_views:
            v.fit()
            v.schedule(full=False)
        self.volume_view.reset()

    # --- saving and errors ------------------------------------------------------------------
    def save_read(self, folder: str | Path | None = None, *, wait: bool | None = None) -> Path | None:
        """Save the read in the background (:mod:`.save_worker`). ``wait`` (default: when not
        interactive) returns the folder once saved; otherwise ``read_saved`` tells."""
        s = self.controller.session
        if s is None:
            return None
        missing = self.forms.missing()
        if missing:
            self.tabs.setCurrentWidget(self.forms)
            self.show_error(f"The read cannot be saved yet: {len(missing)} required answer(s) "
                            f"missing ({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}).")
            return None
        if folder is None:
            if not self.interactive:
                return None
            start = str(self.last_read_folder.parent if self.last_read_folder else Path.home())
            d = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder to save the read in", start)
            if not d:
                return None
            folder = d
        return self._save_in_background(s, folder, wait=not self.interactive if wait is None else wait)

    def _save_in_background(self, s: ReadingSession, folder: str | Path, *, wait: bool) -> Path | None:
        """Save in a worker thread with a busy progress bar; edits and closing wait for it.
        ``wait``: return only when saved (a local event loop keeps the window responsive)."""
        from .save_worker import SaveWorker, start_save

        if self._saver is not None:
            self.show_error("The read is still being saved.")
            return None
        worker = SaveWorker(s, folder, self.forms.form(), self.forms.require_fibrosis)
        worker.saved.connect(self._on_saved)
        worker.failed.connect(self._on_save_failed)  # a bound slot: runs in the GUI thread
        self.controller.busy = "the read is being saved"
        self.progress.setRange(0, 0)  # busy: the core's save reports no fractions
        self.progress.setFormat("Saving the read…")
        self.progress.show()
        self.statusBar().showMessage("Saving the read…")
        self._saver = (start_save(self, worker), worker)
        thread = self._saver[0]
        thread.finished.connect(self._on_save_done)
        if wait:
            loop = QtCore.QEventLoop()
            thread.finished.connect(loop.quit)
            if thread.isRunning():
                loop.exec()
            QtCore.QCoreApplication.sendPostedEvents(self)
            if self._saver is not None and self._saver[0] is thread:
                self._on_save_done()
        return worker.out if wait else None

    def run_saving(self, fn: Any, message: str = "Saving the read…") -> Any:
        """Run ``fn`` (a save that must finish before anything else, e.g. into the study
        database) in a worker thread: the window stays responsive with a busy bar, edits are
        refused and closing waits, as for :meth:`save_read`. Returns ``fn``'s result or raises
        its exception here, in the GUI thread."""
        from .save_worker import CallWorker, start_save

        if self._saver is not None:
            raise ReaderAppError("the read is still being saved")
        worker = CallWorker(fn)
        self.controller.busy = "the read is being saved"
        self.progress.setRange(0, 0)
        self.progress.setFormat(message)
        self.progress.show()
        self.statusBar().showMessage(message)
        thread = start_save(self, worker)
        self._saver = (thread, worker)
        loop = QtCore.QEventLoop()
        thread.finished.connect(loop.quit)
        if thread.isRunning():
            loop.exec()
        self._on_save_done()
        self.statusBar().clearMessage()
        if worker.error is not None:
            raise worker.error
        return worker.result

    def _on_save_failed(self, message: str) -> None:
        self.show_error(f"The read was not saved: {message}")
        self.save_failed.emit(message)

    def _on_saved(self, out: Path) -> None:
        self.last_read_folder = Path(out)  # never written to the settings (privacy)
        self.statusBar().showMessage(f"Read saved to {out}", 8000)
        self._report_journal_error()
        self.read_saved.emit(out)

    def _on_save_done(self) -> None:
        if self._saver is None:
            return
        thread, _worker = self._saver
        thread.wait(5000)
        thread.deleteLater()
        self._saver = None
        self.controller.busy = None
        self.progress.setRange(0, 1000)
        if self._thread is None:
            self.progress.hide()
        if self._close_after_save:
            self._close_after_save = False
            QtCore.QTimer.singleShot(0, self.close)

    @property
    def saving(self) -> bool:
        return self._saver is not None

    def _may_leave(self, s: ReadingSession, question: str) -> bool:
        """Ask before leaving a read with unsaved edits (kept in the journal) or unsaved rulers
        and ROIs (lost: only a saved read keeps them). True when nothing is unsaved."""
        parts = []
        if s.modified:
            parts.append("This read has edits that are not saved as a read yet. They stay in the "
                         "journal and are offered again when you reopen this scan.")
        if s.unsaved_measurements:
            parts.append("Its rulers and ROIs are not saved: only a saved read keeps them, they "
                         "will be lost.")
        if not parts:
            return True
        answer = QtWidgets.QMessageBox.question(self, "Unsaved read", " ".join(parts) + "\n\n" + question)
        return answer == QtWidgets.QMessageBox.StandardButton.Yes

    def ask_yes_no(self, question: str) -> bool:
        """A yes/no question to the reader (recorded and answered by policy without dialogs)."""
        if not self.interactive:
            self.questions.append(question)
            return bool(self.confirm_answer)
        answer = QtWidgets.QMessageBox.question(self, "ReaderApp", question)
        return answer == QtWidgets.QMessageBox.StandardButton.Yes

    def show_error(self, message: str) -> None:
        self.errors.append(message)
        log.warning("%s", message)
        self.statusBar().showMessage(message, 10000)
        if self.interactive:
            QtWidgets.QMessageBox.critical(self, "ReaderApp", message)

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        if self._saver is not None:  # never close under a save: the read must be complete
            if self.interactive:
                self.statusBar().showMessage("The read is being saved; the window closes when "
                                             "it is done.", 10000)
                self._close_after_save = True
                ev.ignore()
                return
            self._saver[0].wait()
            self._on_save_done()
        s = self.controller.session
        if self.interactive and s is not None and not self._may_leave(s, "Close anyway?"):
            ev.ignore()
            return
        if self.interactive:
            self.settings.setValue("window/geometry", self.saveGeometry())
            self.settings.setValue("window/state", self.saveState())
        if self._worker is not None:
            self._worker.cancel()
        if self._thread is not None:
            self._thread.wait(10000)
        if self.controller.session is not None:
            self.controller.session.close()
        self.volume_view.shutdown()  # a surface build in its worker thread ends first
        for v in self.views:
            v.canvas.Finalize()
        super().closeEvent(ev)
