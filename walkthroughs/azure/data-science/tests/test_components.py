"""Unit tests of the components' code, run by mlops/devops-pipelines/run-unit-tests.yml."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from prep import split_rows
from promotion import should_promote


def test_split_keeps_every_row_once():
    rows = [[str(i)] for i in range(100)]
    train, test = split_rows(rows, 0.2, seed=1)
    assert len(test) == 20 and len(train) == 80
    assert sorted(train + test) == sorted(rows)


def test_split_is_reproducible():
    rows = [[str(i)] for i in range(50)]
    assert split_rows(rows, 0.3, seed=7) == split_rows(rows, 0.3, seed=7)


def test_first_model_is_promoted():
    assert should_promote(60.0, None, 1.0)


def test_promotion_needs_more_than_min_gain():
    assert should_promote(55.0, 60.0, 1.0)
    assert not should_promote(59.0, 60.0, 1.0)
    assert not should_promote(60.0, 60.0, 0.0)
    assert not should_promote(61.0, 60.0, 0.0)
