"""The NYU40 categories the synthetic scenes use, with the names the label tables need.

One row per category: NYU40 id, ScanNet raw category, NYU40 class name, Eigen13 id and class, and
Matterport's mpcat40 index and name. Structure classes (wall, floor, ceiling, door, window) come
first; the rest are furniture.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """One label: `nyu40id` is what the meshes store (uint8, 1..40)."""

    nyu40id: int
    raw_category: str
    nyu40class: str
    eigen13id: int
    eigen13class: str
    mpcat40index: int
    mpcat40: str


CATEGORIES: tuple[Category, ...] = (
    Category(1, "wall", "wall", 12, "Wall", 1, "wall"),
    Category(2, "floor", "floor", 5, "Floor", 2, "floor"),
    Category(22, "ceiling", "ceiling", 3, "Ceiling", 17, "ceiling"),
    Category(8, "door", "door", 12, "Wall", 4, "door"),
    Category(9, "window", "window", 13, "Window", 9, "window"),
    Category(3, "cabinet", "cabinet", 6, "Furniture", 7, "cabinet"),
    Category(4, "bed", "bed", 1, "Bed", 11, "bed"),
    Category(5, "chair", "chair", 4, "Chair", 3, "chair"),
    Category(6, "sofa", "sofa", 9, "Sofa", 10, "sofa"),
    Category(7, "table", "table", 10, "Table", 5, "table"),
    Category(10, "bookshelf", "bookshelf", 6, "Furniture", 31, "shelving"),
    Category(14, "desk", "desk", 10, "Table", 5, "table"),
    Category(35, "lamp", "lamp", 7, "Objects", 28, "lighting"),
    Category(39, "ottoman", "otherfurniture", 6, "Furniture", 36, "furniture"),
)
BY_NAME: dict[str, Category] = {c.raw_category: c for c in CATEGORIES}
BY_ID: dict[int, Category] = {c.nyu40id: c for c in CATEGORIES}
STRUCTURE_IDS: tuple[int, ...] = (1, 2, 22, 8, 9)
