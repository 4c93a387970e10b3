"""What `ctr evaluate` prints: a line per value, a line per entry of a table of tables."""

from __future__ import annotations

from cli.reports import report_lines


def test_a_table_of_tables_is_a_heading_and_a_line_per_entry():
    report = {
        "model": "ctr",
        "true_ctr_mean": 0.0312345,
        "training_position_ctr": {"1": 0.05, "2": 0.03},
        "methods": {"naive": {"auc": 0.61234, "model": {"lam": 0.0}}, "served": {"auc": 0.63}},
    }
    assert report_lines(report) == [
        "model                        ctr",
        "true_ctr_mean                0.0312",
        "training_position_ctr        1=0.0500  2=0.0300",
        "methods:",
        '  naive                      auc=0.6123  model={"lam":0.0}',
        "  served                     auc=0.6300",
    ]
