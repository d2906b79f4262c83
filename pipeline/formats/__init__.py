"""Readers and writers of the on-disk formats the pipeline consumes (one module per format).

`sens` (ScanNet .sens v4), `ply` (triangle meshes), `scannet` (ScanNet v2 layout, splits, label
table, labelled meshes), `matterport` (Matterport3D v1 houses), `images` (JPEG/PNG codecs).
Every reader raises `FormatError` for bad input; see docs/formats.md.
"""
from .errors import FormatError

__all__ = ["FormatError"]
