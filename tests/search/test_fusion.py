"""Hybrid fusion: the score method keeps each mode's scale; RRF is normalised to (0, 1]."""

from __future__ import annotations

import pytest

from capdex.search.fusion import ranking, reciprocal_rank_fusion, score_fusion


def test_score_fusion_is_never_below_either_weighted_score() -> None:
    assert score_fusion(0.6, None, 1.0, 0.9) == pytest.approx(0.6)
    assert score_fusion(None, 1.0, 1.0, 0.9) == pytest.approx(0.9)
    both = score_fusion(0.3, 0.5, 1.0, 0.9)
    assert both > max(0.3, 0.45) and both <= 1.0
    # full keyword matches are still ordered by meaning
    assert score_fusion(0.7, 1.0, 1.0, 0.9) > score_fusion(0.2, 1.0, 1.0, 0.9)
    assert score_fusion(-0.4, None, 1.0, 0.9) == 0.0


def test_rrf_favours_items_ranked_high_in_both_and_tops_out_at_one() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [2, 4]], [1.0, 1.0], k=60)
    assert ranking(fused)[0] == 2
    assert fused[2] < 1.0 and fused[1] == pytest.approx(0.5)
    assert reciprocal_rank_fusion([[7], [7]], [1.0, 0.5])[7] == pytest.approx(1.0)
