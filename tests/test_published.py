"""The published figures quoted by the lessons: each table is well formed and carries its source."""

import pytest

from pconv_lessons.course import published


@pytest.mark.parametrize("name", sorted(published.TABLES))
def test_every_table_is_rectangular_numeric_and_sourced(name):
    table = published.TABLES[name]
    assert table.source
    for row in table.rows:
        assert len(row) == len(table.columns), row
    text = published.markdown(name)
    assert text.count("\n|") == len(table.rows) + 2
    assert f"Source: {table.source}." in text


def test_figures_as_the_sources_print_them():
    # spot checks against the papers' text (LaMa Table 1 first row, Table 2 regular row; mmagic's PConv row)
    assert published.LAMA_TABLE1.rows[0] == ("LaMa-Fourier", "27", "0.63", "0.090", "2.21", "0.135", "5.35", "0.058")
    assert published.LAMA_TABLE2.rows[2][-2:] == ("3.51", "0.139")
    assert published.MMAGIC_PLACES.rows[0][1:] == ("8.78", "22.76", "0.801")


def test_an_unknown_table_is_named():
    with pytest.raises(ValueError, match="name must be one of .*got 'pconv_table9'"):
        published.markdown("pconv_table9")
