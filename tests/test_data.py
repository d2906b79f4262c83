"""dgs_core.data on prepared generated scenes: items, determinism, mirroring, samplers, bad input."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from dgs_core.data import DataConfig, ResumableSampler, ShardDataset, collate, make_loader, to_device
from dgs_core.model.inputs import IMAGE_MEAN, IMAGE_STD, image_to_tensor
from dgs_core.camera import project
from pipeline.shards import SchemaError, ShardReader


def shard_row(ds: ShardDataset, i: int) -> dict:
    frame = ds.frames.iloc[i]
    with ShardReader(ds.manifest.parent / frame.shard) as r:
        return r.read(int(frame.row))


def test_item_draws_valid_points_of_its_frame(prepared_tiny) -> None:
    ds = ShardDataset(prepared_tiny.manifest("scannet", "train"), DataConfig(near_points=100, non_points=20))
    item, row = ds[3], shard_row(ds, 3)
    assert item["image"].shape == (3, 48, 64) and item["depth"].shape == (48, 64)
    # 64×48 at f = 57.6 with a centred principal point is the protocol camera: (1.8, 2.4, 0, 0).
    assert torch.allclose(item["intrinsics"], torch.tensor([1.8, 2.4, 0.0, 0.0]), atol=1e-6)
    pts = row["near_surface_points"][row["near_surface_valid"]]
    labels = row["near_surface_labels"][row["near_surface_valid"]]
    # every drawn point is one of the frame's valid points, with that point's label, none twice
    match = (item["near_points"].numpy()[:, None, :] == pts[None]).all(-1)
    assert (match.sum(1) == 1).all()
    assert np.array_equal(item["near_labels"].numpy(), labels[match.argmax(1)].astype(np.float32))
    assert len(np.unique(match.argmax(1))) == 100
    far = row["non_surface_points"][row["non_surface_valid"]]
    assert ((item["far_points"].numpy()[:, None, :] == far[None]).all(-1).sum(1) == 1).all()
    np.testing.assert_array_equal(item["depth"].numpy(), row["depth"])
    np.testing.assert_array_equal(item["image"].numpy(), row["image"])  # uint8 until to_device


@pytest.mark.parametrize("input_norm", ["none", "imagenet"])
def test_to_device_normalises_the_collated_images(prepared_tiny, input_norm: str) -> None:
    ds = ShardDataset(prepared_tiny.manifest("scannet", "train"))
    batch = to_device(collate([ds[0], ds[1]]), "cpu", input_norm)
    assert batch.images.dtype == torch.float32
    assert torch.allclose(batch.images[1], image_to_tensor(shard_row(ds, 1)["image"], input_norm))


def test_image_normalisation_is_invertible() -> None:
    img = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    x = image_to_tensor(img, "imagenet")
    back = x * torch.tensor(IMAGE_STD).view(3, 1, 1) + torch.tensor(IMAGE_MEAN).view(3, 1, 1)
    np.testing.assert_allclose(back.numpy() * 255, img, atol=1e-4)


def test_release_input_is_rgb_in_unit_range() -> None:
    """The release's convention: RGB/255, no mean/std (what its dataset classes hand the encoder)."""
    img = np.array([0, 51, 255], dtype=np.uint8).reshape(3, 1, 1)
    np.testing.assert_allclose(image_to_tensor(img, "none").numpy().ravel(), [0.0, 0.2, 1.0], atol=1e-7)
    with pytest.raises(ValueError, match="input_norm"):
        image_to_tensor(img, "zscore")


def test_items_depend_on_seed_epoch_and_index_only(prepared_tiny) -> None:
    path = prepared_tiny.manifest("scannet", "train")
    a, b = ShardDataset(path, seed=1), ShardDataset(path, seed=1)
    assert torch.equal(a[2]["near_points"], b[2]["near_points"])
    _ = b[5]  # reading other items first changes nothing
    assert torch.equal(a[4]["far_points"], b[4]["far_points"])
    b.set_epoch(1)
    assert not torch.equal(a[2]["near_points"], b[2]["near_points"])
    assert not torch.equal(a[2]["near_points"], ShardDataset(path, seed=2)[2]["near_points"])


def test_mirroring_keeps_points_on_their_pixels(prepared_tiny) -> None:
    path = prepared_tiny.manifest("scannet", "train")
    plain, mirrored = ShardDataset(path), ShardDataset(path, DataConfig(augment=True))
    flipped = [i for i in range(len(plain))
               if not torch.equal(plain[i]["near_points"], mirrored[i]["near_points"])]
    assert 0 < len(flipped) < len(plain)  # a coin per item
    i = flipped[0]
    p, m = plain[i], mirrored[i]
    assert torch.equal(m["image"], p["image"].flip(-1)) and torch.equal(m["depth"].nan_to_num(), p["depth"].flip(-1).nan_to_num())
    uv_p = project(p["near_points"][None], p["intrinsics"][None])[0]
    uv_m = project(m["near_points"][None], m["intrinsics"][None])[0]
    assert torch.allclose(uv_m[:, 0], -uv_p[:, 0], atol=1e-5) and torch.allclose(uv_m[:, 1], uv_p[:, 1], atol=1e-5)


def test_sampler_splits_an_epoch_across_ranks_and_resumes() -> None:
    ranks = [list(ResumableSampler(10, seed=3, rank=r, world_size=3)) for r in range(3)]
    flat = sum(ranks, [])
    assert len(flat) == 9 and len(set(flat)) == 9 and all(len(r) == 3 for r in ranks)
    s = ResumableSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    assert sorted(full) == list(range(10))
    s.set_epoch(2, start=4)
    assert list(s) == full[4:] and len(s) == 6
    s.set_epoch(3)
    assert list(s) != full
    with pytest.raises(ValueError, match="rank"):
        ResumableSampler(10, rank=2, world_size=2)


def test_loader_workers_give_the_same_batches(prepared_tiny) -> None:
    ds = ShardDataset(prepared_tiny.manifest("scannet", "train"), DataConfig(near_points=64, non_points=16))
    batches = []
    for workers in (0, 2):
        sampler = ResumableSampler(len(ds), seed=0)
        sampler.set_epoch(1, start=2)
        ds.set_epoch(1)
        batches.append(list(make_loader(ds, 3, sampler=sampler, workers=workers)))
    assert len(batches[0]) == (len(ds) - 2) // 3
    for x, y in zip(*batches):
        assert x.images.shape == (3, 3, 48, 64) and x.near_points.shape == (3, 64, 3)
        assert torch.equal(x.near_points, y.near_points) and torch.equal(x.images, y.images)


def test_bad_inputs_name_the_file(prepared_tiny, tmp_path) -> None:
    src = prepared_tiny.manifest("scannet", "val").parent
    dst = tmp_path / "val"
    shutil.copytree(src, dst)
    manifest = dst / "manifest.parquet"
    shard = dst / pd.read_parquet(manifest).shard.iloc[0]
    with pytest.raises(ValueError, match="width is 64, expected 256"):
        ShardDataset(manifest, expect={"width": 256})
    with h5py.File(shard, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(SchemaError, match=str(shard)):
        ShardDataset(manifest)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="shard"):
        ShardDataset(manifest)
    df = pd.read_parquet(manifest)
    df["status"] = "skipped"
    df.to_parquet(manifest)
    with pytest.raises(ValueError, match="no usable frame"):
        ShardDataset(manifest)


def test_surface_samples_and_offsets_of_an_item(prepared_tiny) -> None:
    path = prepared_tiny.manifest("scannet", "train")
    cfg = DataConfig(near_points=100, non_points=20, surface_points=40)
    plain, ds = ShardDataset(path, cfg), ShardDataset(path, cfg, surface="loss.kind=sdf")
    item, row = ds[3], shard_row(ds, 3)
    for key, value in plain[3].items():  # the surface draw comes last: the other fields are unchanged
        assert torch.equal(value.nan_to_num(), item[key].nan_to_num()), key
    assert "surface_points" not in plain[3]
    match = (item["surface_points"].numpy()[:, None, :] == row["surface_points"][None]).all(-1)
    assert (match.sum(1) == 1).all() and len(np.unique(match.argmax(1))) == 40
    which = match.argmax(1)
    np.testing.assert_array_equal(item["surface_normals"].numpy(), row["surface_normals"][which])
    assert row["surface_colored"]  # the generator's meshes carry vertex colours
    np.testing.assert_allclose(item["surface_colors"].numpy(), row["surface_colors"][which] / 255.0, atol=1e-7)
    near = (item["near_points"].numpy()[:, None, :] == row["near_surface_points"][None]).all(-1).argmax(1)
    np.testing.assert_array_equal(item["near_offsets"].numpy(), row["near_surface_offsets"][near])
    np.testing.assert_array_equal(item["near_labels"].numpy(), (item["near_offsets"].numpy() < 0).astype(np.float32))
    batch = collate([ds[0], ds[1]])
    assert batch.surface_points.shape == batch.surface_normals.shape == batch.surface_colors.shape == (2, 40, 3)
    assert batch.near_offsets.shape == (2, 100) and collate([plain[0]]).surface_points is None
    mirrored = ShardDataset(path, DataConfig(near_points=100, non_points=20, surface_points=40, augment=True),
                            surface="loss.kind=sdf")
    i = next(i for i in range(len(ds)) if not torch.equal(ds[i]["near_points"], mirrored[i]["near_points"]))
    m, row, flip = mirrored[i], shard_row(ds, i), np.array([-1.0, 1.0, 1.0], np.float32)
    match = ((m["surface_points"].numpy() * flip)[:, None, :] == row["surface_points"][None]).all(-1)
    assert (match.sum(1) == 1).all()  # mirrored x of the frame's own samples, normals mirrored alike
    np.testing.assert_array_equal(m["surface_normals"].numpy() * flip, row["surface_normals"][match.argmax(1)])


def test_surface_samples_from_version_1_shards_name_the_shard(prepared_tiny, tmp_path, as_version_1) -> None:
    dst = tmp_path / "train"
    shutil.copytree(prepared_tiny.manifest("scannet", "train").parent, dst)
    shards = sorted(dst.rglob("shard_*.h5"))
    for shard in shards:
        as_version_1(shard)
    ShardDataset(dst / "manifest.parquet")[0]  # occupancy training still reads them
    with pytest.raises(SchemaError, match=rf"{shards[0]}: loss.kind=sdf needs .*surface_points.*python -m "
                                          r"pipeline.prepare --dataset scannet --split train"):
        ShardDataset(dst / "manifest.parquet", surface="loss.kind=sdf")
