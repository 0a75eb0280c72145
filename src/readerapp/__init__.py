"""ReaderApp: a CT reader workstation for blinded clinical-trial reads.

The package root holds the domain core (loading, segmentation, densitometry, editing, study
workflow), which imports neither Qt nor VTK so it runs headless and in batch; the GUI lives in
``readerapp.gui`` and only adapts it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
