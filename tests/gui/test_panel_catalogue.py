"""The live panel's rows are the catalogue's, and a null endpoint shows as a dash, never 0."""

from __future__ import annotations

import numpy as np
import pytest

from readerapp import endpoints as catalogue
from readerapp.densitometry import compute_endpoints

pytestmark = pytest.mark.gui


def test_panel_rows_are_the_catalogue_and_nulls_show_as_dashes(qtbot) -> None:
    from readerapp.gui.densitometry_panel import DensitometryPanel

    panel = DensitometryPanel()
    qtbot.addWidget(panel)
    t = panel.table
    heads = [t.verticalHeaderItem(r).text() for r in range(t.rowCount())]  # type: ignore[union-attr]
    scalars = [e for e in catalogue.CATALOGUE if e.scalar]
    assert heads[: len(scalars)] == [e.label for e in scalars]
    assert heads[len(scalars):] == [f"{b.title} (%)" for b in catalogue.BINS]

    hu = np.full((2, 3, 4), -900, np.int16)
    empty = compute_endpoints(hu, np.zeros(hu.shape, np.uint8), 0.001, backend="numpy").to_dict()
    panel.set_initial(empty)
    rows = {e.key: i for i, e in enumerate(scalars)}
    assert t.item(rows["lung_volume_ml"], 0).text() == "0.00"  # type: ignore[union-attr]
    for key in ("lesion_pct", "ggo_pct", "consolidation_pct", "mean_lung_hu"):
        assert t.item(rows[key], 0).text() == "—", key  # type: ignore[union-attr]
    for b in range(len(catalogue.BINS)):
        assert t.item(len(scalars) + b, 0).text() == "—"  # type: ignore[union-attr]
