"""The book's table style: exact text and HTML for each rule."""

import math

import pandas as pd

from mpm.analysis.tables import book_table, mean_sd


def test_a_range_index_is_dropped_and_whole_floats_read_as_integers():
    table = book_table(pd.DataFrame({"images": [1961.0, 454.0], "share": [0.125, 0.5]}))
    assert repr(table) == "images  share\n  1961   0.12\n   454   0.50"


def test_a_labelled_index_becomes_the_first_column():
    frame = pd.DataFrame({"R1 (%)": [71.25, 100.0]}, index=pd.Index(["person", "image"], name="features"))
    assert repr(book_table(frame)) == "features  R1 (%)\nperson      71.2\nimage      100.0"


def test_percentages_one_decimal_missing_as_dash_and_booleans_as_words():
    frame = pd.DataFrame({"mAP (%)": [12.345, math.nan], "chosen": [True, False], "name": ["a", None]})
    assert book_table(frame).cells.to_dict("list") == {"mAP (%)": ["12.3", "–"], "chosen": ["yes", "no"],
                                                       "name": ["a", "–"]}


def test_decimals_can_be_set_per_column_and_multi_level_headers_are_joined():
    frame = pd.DataFrame([[0.12345, 2.5, 0.001]],
                         columns=pd.MultiIndex.from_tuples([("IoU", "mean"), ("IoU", ""), ("lr", "")]))
    assert book_table(frame, decimals={"IoU mean": 3, "lr": "g"}).cells.to_dict("list") == {
        "IoU mean": ["0.123"], "IoU": ["2.50"], "lr": ["0.001"]}


def test_mean_and_sd_stay_on_one_line():
    assert mean_sd(71.234, 0.41) == "71.2\u00a0±\u00a00.4"
    assert mean_sd(71.234, math.nan) == "71.2" and mean_sd(math.nan, 1.0) == "–"


def test_html_has_no_index_full_text_and_numbers_marked_for_right_alignment():
    text = "a long cell that is never cut " * 3
    frame = pd.DataFrame({"what": [text, "<b>"], "seeds": [2, 1], "R1": [mean_sd(71.2, 0.4), mean_sd(70.0, 1.0)]})
    assert book_table(frame)._repr_html_() == (
        '<div class="book-table"><table><thead><tr><th>what</th><th class="num">seeds</th>'
        '<th class="num">R1</th></tr></thead><tbody>'
        f'<tr><td>{text}</td><td class="num">2</td><td class="num">71.2\u00a0±\u00a00.4</td></tr>'
        '<tr><td>&lt;b&gt;</td><td class="num">1</td><td class="num">70.0\u00a0±\u00a01.0</td></tr>'
        '</tbody></table></div>')


def test_a_long_table_scrolls_and_a_series_is_a_table():
    table = book_table(pd.Series(range(21), name="epoch"))
    assert table._repr_html_().startswith('<div class="book-table long">')
    assert repr(table).splitlines()[:2] == ["epoch", "    0"]
