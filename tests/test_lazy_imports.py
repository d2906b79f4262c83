"""Open3D is imported only when an Embree method runs, so raster-only prepare jobs skip its ~1.5 s.

Each check runs in a fresh interpreter: in the pytest process another test may have imported open3d.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> None:
    """Run ``code`` in a fresh interpreter at the repo root; fail with its stderr if it fails."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_prepare_import_does_not_load_open3d():
    _run("""
        import sys
        import pipeline.prepare
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "open3d")
        assert not loaded, loaded
    """)


def test_embree_paths_load_open3d_on_first_use():
    # A square z = 2 (two triangles, x, y in [-1, 1]); analytic answers: depth 2 along +z from the
    # origin, NaN along -z, and distance 1 from (0, 0, 3) and sqrt(0.5² + 1²) from (1.5, 0, 3).
    _run("""
        import sys
        import numpy as np
        from pipeline.geometry.scene import SceneGeometry, distance_to_mesh, first_hit_depth
        v = np.array([[-1, -1, 2], [1, -1, 2], [1, 1, 2], [-1, 1, 2]], float)
        scene = SceneGeometry.from_mesh(v, np.array([[0, 1, 2], [0, 2, 3]]), None, [])
        assert "open3d" not in sys.modules
        d = first_hit_depth(scene, np.zeros(3), np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]]))
        assert "open3d" in sys.modules
        assert abs(d[0, 0] - 2.0) < 1e-6 and np.isnan(d[0, 1]), d
        dist = distance_to_mesh(scene, np.array([[0.0, 0.0, 3.0], [1.5, 0.0, 3.0]]))
        assert np.allclose(dist, [1.0, np.hypot(0.5, 1.0)], atol=1e-6), dist
    """)
