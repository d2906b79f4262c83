"""Face chunks: skipping chunks out of view never changes which faces pass the per-face tests."""
from __future__ import annotations

import numpy as np

from pipeline.geometry.chunks import build_chunks, faces_in_view, frustum_planes
from pipeline.geometry.kernels import cull_face_centroids


def test_chunk_culling_keeps_every_face_the_full_test_keeps():
    rng = np.random.default_rng(7)
    centres = rng.uniform(-4, 4, size=(3000, 1, 3))
    v = (centres + rng.normal(scale=0.05, size=(3000, 3, 3))).reshape(-1, 3)
    f = np.arange(v.shape[0]).reshape(-1, 3)
    chunks = build_chunks(v, f, np.zeros(len(f), bool), size=16)
    assert np.array_equal(np.sort(chunks.face_ids), np.arange(len(f)))
    assert np.array_equal(chunks.faces, f[chunks.face_ids])
    tri = v[f]
    for c in range(len(chunks.starts) - 1):  # every chunk box holds its faces' vertices
        members = tri[chunks.face_ids[chunks.starts[c]:chunks.starts[c + 1]]].reshape(-1, 3)
        assert (members >= chunks.lo[c]).all() and (members <= chunks.hi[c]).all()
    centroids = tri.mean(1)
    proj = np.array([1.8, 0.02, 2.4, -0.03])
    sizes = []
    for _ in range(5):
        r, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        r *= np.sign(np.linalg.det(r))
        t = -r @ rng.uniform(-1, 1, 3)
        lo, hi = rng.uniform(-4, -1, 3), rng.uniform(1, 4, 3)
        args = (r, t, proj, 1.05, 0.05, lo, hi)
        full = np.flatnonzero(cull_face_centroids(centroids, np.arange(len(f)), *args))
        near = faces_in_view(chunks, r, t, frustum_planes(proj, 1.05, 0.05), lo, hi)
        assert len(near) < 0.7 * len(f)  # chunks are culled
        kept = np.flatnonzero(cull_face_centroids(centroids, near, *args))
        np.testing.assert_array_equal(kept, full)
        sizes.append(full.size)
    assert min(sizes) > 0  # every case keeps some faces
