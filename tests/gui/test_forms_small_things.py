"""Small things readers noticed in the form, the numbers panel and the views."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_severity_grid_pairs_right_and_left_lobes(qtbot):
    from readerapp.gui.forms_panel import FormsPanel

    p = FormsPanel()
    qtbot.addWidget(p)
    grid = p.severity["RUL"].parentWidget().layout()

    def cell(lobe):
        r, c, _, _ = grid.getItemPosition(grid.indexOf(p.severity[lobe]))
        return r, c

    assert cell("RUL")[0] == cell("LUL")[0] < cell("RML")[0] < cell("RLL")[0] == cell("LLL")[0]
    assert cell("RUL")[1] == cell("RML")[1] == cell("RLL")[1] < cell("LUL")[1] == cell("LLL")[1]
    # Nothing beside RML: the left lung has no middle lobe.
    assert grid.itemAtPosition(cell("RML")[0], cell("LUL")[1]) is None


def test_missing_answers_are_named_as_the_form_shows_them(qtbot):
    from readerapp.forms import FIBROSIS_FEATURES
    from readerapp.gui.forms_panel import FormsPanel

    p = FormsPanel()
    qtbot.addWidget(p)
    p.day90.setChecked(True)
    text = p.missing_label.text()
    assert "Severity RUL" in text and "_" not in text
    assert any(m.startswith(FIBROSIS_FEATURES[0].title) for m in p.missing())


def test_fibrosis_header_stays_visible_when_scrolling(qtbot):
    from readerapp.gui.forms_panel import FormsPanel

    p = FormsPanel()
    qtbot.addWidget(p)
    p.resize(420, 300)
    p.show()
    qtbot.waitExposed(p)
    p.day90.setChecked(True)
    qtbot.wait(20)
    assert not p.frozen_header.isVisible()  # the real header is in view (or below it)
    bar = p.verticalScrollBar()
    # Scroll into the middle of the fibrosis grid: its header row is above the top now.
    top_of_grid = p.fib_headers[0].mapTo(p.widget(), p.fib_headers[0].rect().topLeft()).y()
    bar.setValue(min(bar.maximum(), top_of_grid + 200))
    qtbot.waitUntil(p.frozen_header.isVisible, timeout=2000)
    assert p.frozen_header.geometry().top() == 0
    vp = p.viewport()
    for real, copy in zip(p.fib_headers, p.frozen_labels, strict=True):
        assert copy.text() == real.text()
        assert copy.mapTo(vp, copy.rect().topLeft()).x() == real.mapTo(vp, real.rect().topLeft()).x()
    bar.setValue(0)
    qtbot.waitUntil(lambda: not p.frozen_header.isVisible(), timeout=2000)


def test_histogram_log_scale(qtbot):
    import numpy as np

    from readerapp.gui.densitometry_panel import DensitometryPanel

    p = DensitometryPanel()
    qtbot.addWidget(p)
    h = p.hist
    n = (h.HI - h.LO) // h.STEP
    counts = np.zeros((3, n), np.int64)
    counts[0, 5], counts[2, 60] = 99_999, 9  # a big lung peak and a few consolidation voxels
    h.counts = counts
    lin = h.bar_fractions()
    assert lin[2, 5] == 1.0 and lin[2, 60] == pytest.approx(9 / 99_999)
    p.log_scale.setChecked(True)
    log = h.bar_fractions()
    assert log[2, 5] == 1.0 and log[2, 60] == pytest.approx(1 / 5)  # log10(10) / log10(100000)
    h.resize(300, 150)
    h.grab()  # paints in both modes without error
    p.log_scale.setChecked(False)
    assert not h.log_scale
