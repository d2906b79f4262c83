"""benchmarks/bench_structure.py: its two measures on hand-made inputs, and the script at a tiny size."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_structure import amodal_agreement, main, structure_iou


def test_face_area_iou():
    areas = np.array([1.0, 2.0, 3.0, 4.0])
    labelled = np.array([True, True, False, False])
    inferred = np.array([False, True, True, False])
    assert structure_iou(areas, labelled, inferred) == pytest.approx(2.0 / 6.0)  # ∩ = face 1, ∪ = 0, 1, 2
    assert np.isnan(structure_iou(areas, ~labelled & False, inferred & False))


def test_amodal_agreement_counts_pixels_with_a_labels_depth():
    labels = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    inferred = np.array([[1.04, 2.2, 7.0], [np.nan, 4.0, 4.95]])
    # 1.04 and 5 − 4.95 agree within 5 cm, 4.0 exactly; 2.2 is 20 cm off; NaN against 3.0 disagrees;
    # the pixel without a labels depth does not count.
    assert amodal_agreement(labels, inferred) == (3, 5)


def test_script_runs_at_a_tiny_size(capsys):
    assert main(["--preset", "tiny", "--scenes", "1", "--frames", "2", "--noise", "0.005", "--yaw"]) == 0
    out = capsys.readouterr().out
    assert "scene0000_00" in out and "goal IoU ≥ 0.9 and ≥ 95 % of pixels: met" in out
