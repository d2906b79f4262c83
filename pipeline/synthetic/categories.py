"""The categories the synthetic scenes use, with the numbers and names of the real label tables.

One row per category: the generator's name, the NYU40 id (what the meshes store), the ScanNet
`scannetv2-labels.combined.tsv` row (`id`, `raw_category`), the Matterport3D
`metadata/category_mapping.tsv` row (`index`, `raw_category`), the NYU raw class (`nyuId`,
`nyuClass`), Eigen13 and mpcat40. The ScanNet and Matterport numbers are those of the real files,
so a real mapping file reads a synthetic house correctly and vice versa; docs/synthetic.md names
the sources. Structure classes (wall, floor, ceiling, door, window) come first.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """One label. `nyu40id` is what the meshes store (uint8, 1..40); `scannet_id` is the `id` column
    of ScanNet's label table; `matterport_index` the `index` column of Matterport's mapping, which
    a house mesh stores as `category_id`."""

    name: str
    nyu40id: int
    scannet_id: int
    scannet_raw: str
    matterport_index: int
    matterport_raw: str
    nyu_id: int
    nyu_class: str
    eigen13id: int
    eigen13class: str
    mpcat40index: int
    mpcat40: str


CATEGORIES: tuple[Category, ...] = (
    Category("wall", 1, 1, "wall", 1, "wall", 21, "wall", 12, "Wall", 1, "wall"),
    Category("floor", 2, 3, "floor", 4, "floor", 11, "floor", 5, "Floor", 2, "floor"),
    Category("ceiling", 22, 41, "ceiling", 3, "ceiling", 4, "ceiling", 3, "Ceiling", 17, "ceiling"),
    Category("door", 8, 5, "door", 2, "door", 28, "door", 12, "Wall", 4, "door"),
    Category("window", 9, 16, "window", 6, "window", 59, "window", 13, "Window", 9, "window"),
    Category("cabinet", 3, 7, "cabinet", 13, "cabinet", 3, "cabinet", 6, "Furniture", 7, "cabinet"),
    Category("bed", 4, 11, "bed", 26, "bed", 157, "bed", 1, "Bed", 11, "bed"),
    Category("chair", 5, 2, "chair", 7, "chair", 5, "chair", 4, "Chair", 3, "chair"),
    Category("sofa", 6, 6, "couch", 24, "couch", 83, "sofa", 9, "Sofa", 10, "sofa"),
    Category("table", 7, 4, "table", 15, "table", 19, "table", 10, "Table", 5, "table"),
    Category("bookshelf", 10, 18, "bookshelf", 88, "bookshelf", 88, "bookshelf", 6, "Furniture", 31, "shelving"),
    Category("desk", 14, 9, "desk", 42, "desk", 36, "desk", 10, "Table", 5, "table"),
    Category("lamp", 35, 28, "lamp", 19, "lamp", 144, "lamp", 7, "Objects", 28, "lighting"),
    Category("ottoman", 39, 67, "ottoman", 80, "ottoman", 359, "ottoman", 6, "Furniture", 19, "stool"),
)
BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
BY_ID: dict[int, Category] = {c.nyu40id: c for c in CATEGORIES}
STRUCTURE_IDS: tuple[int, ...] = (1, 2, 22, 8, 9)
