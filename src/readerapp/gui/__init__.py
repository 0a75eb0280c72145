"""The workstation window: PySide6 + VTK views over the Qt-free core.

Nothing here holds logic the core does not: slots gather input, call ``readerapp.editing`` /
``readerapp.densitometry``, and show results or errors. Importing this package imports nothing
heavy; use ``readerapp.gui.app.run`` or ``readerapp.gui.main_window.MainWindow``.
"""
