"""The suggestion strip: the engine's ranking shown along the slice axis, a click or a list pick chooses a slice."""

from __future__ import annotations

from gcl_app.widgets.suggestions import Ranking, SuggestionView
from qtpy.QtCore import QPoint, Qt

from gcl_engine import api


def _ranking(n: int = 20, painted=(3, 15)) -> Ranking:
    order = [9, 18, 0, 12, 6]
    scores = [api.SliceScore(k, float(10 - i), 0.5, float(10 - i)) for i, k in enumerate(order)]
    return Ranking.from_scores(scores, n, painted)


def test_the_best_suggestion_skips_slices_painted_since(qtbot):
    r = _ranking()
    assert r.best() == 9
    assert r.best(exclude=[9]) == 18
    assert Ranking.from_scores([], 20, range(20)).best() is None


def test_the_view_lists_the_top_slices_and_a_double_click_chooses_one(qtbot):
    view = SuggestionView()
    qtbot.addWidget(view)
    view.show_ranking(_ranking())
    items = [view.top.item(i).text() for i in range(view.top.count())]
    assert items[0].startswith("slice 9") and len(items) == 5
    with qtbot.waitSignal(view.chosen) as got:
        view.top.itemActivated.emit(view.top.item(1))
    assert got.args == [18]


def test_a_click_on_the_strip_chooses_the_slice_under_the_mouse(qtbot):
    view = SuggestionView()
    qtbot.addWidget(view)
    view.resize(400, 160)
    view.show()
    qtbot.waitExposed(view)
    view.show_ranking(_ranking(n=20))
    strip = view.strip
    x = int(strip.width() * (12.5 / 20))  # the middle of slice 12's bar
    with qtbot.waitSignal(view.chosen) as got:
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(x, strip.height() // 2))
    assert got.args == [12]
    strip.grab()  # paints without error with painted, best and plain bars


def test_no_ranking_says_what_to_do(qtbot):
    view = SuggestionView()
    qtbot.addWidget(view)
    view.show_ranking(None)
    assert "fine-tune first" in view.title.text()
    view.show_ranking(Ranking.from_scores([], 4, range(4)))
    assert "every slice is painted" in view.title.text()
