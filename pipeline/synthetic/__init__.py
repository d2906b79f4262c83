"""Synthetic scene generator: rooms written as genuine ScanNet v2 / Matterport3D files.

Modules (one job each): `config` (GeneratorConfig, presets), `categories` (NYU40 labels used),
`primitives` (subdivided rectangles, boxes, cylinders), `texture` (procedural albedo), `scene`
(layout + mesh), `trajectory` (handheld scan, panoramas), `render` + `shading` (Embree ray casting,
sensor model), `generate` (dataset writers), `cli` (`dgs-synth`). See docs/synthetic.md.
"""
