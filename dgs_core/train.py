"""Training loop and CLI (SPEC §3): Adam on the Eq. 1 (or Eq. 2) loss over prepared shards.

    python -m dgs_core.train --config config/experiments/dgs.yaml \\
        --train-manifest data/prepared/scannet/train/manifest.parquet \\
        --val-manifest data/prepared/scannet/val/manifest.parquet --out data/prepared/models/dgs
    torchrun --standalone --nproc_per_node 4 -m dgs_core.train ...   # DDP, same config

Writes into ``--out``: ``config.yaml`` (the resolved experiment), ``scalars.csv`` and ``tb/``
(:mod:`dgs_core.train_log`), ``checkpoints/step_XXXXXXX.pt`` (the newest ``checkpoint.keep_last``),
``best.pt`` (lowest validation loss) and ``final.pt``, all in the :mod:`dgs_core.checkpoint` format.
``--resume auto`` (default) continues from the newest checkpoint in ``--out``: model, optimiser,
learning-rate schedule, AMP scaler, RNG states and the data position (epoch + frames consumed) are restored, so on CPU the
resumed run reproduces the uninterrupted run's losses exactly. Only rank 0 logs, validates and saves.
Validation uses the val manifest only (never test). An object manifest (``pipeline.prepare_objects``)
trains the same model on single objects, one random view per item (:mod:`dgs_core.object_data`).
"""
from __future__ import annotations

import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as torch_dist
from tqdm import tqdm

from dgs_core.checkpoint import capture_rng, save_checkpoint
from dgs_core.data import Batch, ResumableSampler, collate, make_loader, to_device
from dgs_core.distributed import DEVICES, Rank, amp_dtype, init_rank, mean_over_ranks, set_threads, sync_batchnorm
from dgs_core.experiment import ConfigError, Experiment, load_experiment, to_dict
from dgs_core.losses import occupied, training_loss
from dgs_core.model import DGSNet, ModelConfig, load_pretrained
from dgs_core.object_data import open_dataset
from dgs_core.run_folder import (Progress, checkpoint_path, prune_checkpoints, resolve_resume, restore,
                                 write_config)
from dgs_core.train_log import TrainLog
from pipeline.cli import command_parser
from pipeline.errors import run_main


class LossModule(torch.nn.Module):
    """The network plus its loss as one module, so DDP's ``forward`` sees every parameter use."""

    def __init__(self, net: DGSNet, exp: Experiment) -> None:
        super().__init__()
        self.net, self.loss_config = net, exp.loss

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return training_loss(self.net, batch, self.loss_config)


def surface_purpose(exp: Experiment) -> str | None:
    """Why a run reads the shards' on-surface samples (``"loss.kind=sdf"``, ``"model.color=true"``), or None."""
    needs = [name for name, on in (("loss.kind=sdf", exp.loss.kind == "sdf"), ("model.color=true", exp.model.color))
             if on]
    return " and ".join(needs) or None


def val_batches(manifest: Path, exp: Experiment, expect: dict[str, int], batch_size: int) -> list[Batch]:
    """``validation.frames`` evenly spaced val frames (fixed point draws), in batches, read once."""
    ds = open_dataset(manifest, exp.data, seed=exp.optim.seed, expect=expect, surface=surface_purpose(exp))
    picks = np.unique(np.linspace(0, len(ds) - 1, min(exp.validation.frames, len(ds))).round().astype(int))
    items = [ds[int(i)] for i in picks]
    return [collate(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]


@torch.no_grad()
def validate(net: DGSNet, batches: list[Batch], exp: Experiment, device: torch.device,
             amp: torch.dtype | None) -> dict[str, float]:
    """Mean loss (and terms) over the val frames, plus near-surface occupancy accuracy and IoU of
    the occupied class (o > 0.5, or s < 0 for an SDF; pooled over all near-surface points)."""
    was_training = net.training
    net.eval()
    sums: dict[str, float] = {}
    hits = inter = union = count = 0.0
    for batch in batches:
        batch = to_device(batch, device, exp.model.input_norm)
        with torch.autocast(device.type, dtype=amp) if amp else nullcontext():
            loss, terms = training_loss(net, batch, exp.loss)
            features = net.encode(batch.images, batch.intrinsics).features
            logits = net.query(features, batch.near_points, batch.intrinsics)
        n = batch.images.shape[0]
        for name, value in {"loss": loss, **terms}.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
        pred, label = occupied(logits.float(), exp.loss.kind), batch.near_labels > 0.5
        hits += float((pred == label).sum())
        inter += float((pred & label).sum())
        union += float((pred | label).sum())
        count += label.numel()
    net.train(was_training)
    frames = sum(b.images.shape[0] for b in batches)
    out = {k: v / frames for k, v in sums.items()}
    out["accuracy"] = hits / count
    out["iou"] = inter / union if union else float("nan")
    return out


def train_step(module, opt, scaler, batch: Batch, exp: Experiment, amp: torch.dtype | None,
               scheduler=None) -> dict[str, float]:
    """One optimiser step (then one scheduler step); returns the loss, its terms, the
    parameter-gradient norm (before clipping) and the learning rate the step used."""
    lr = opt.param_groups[0]["lr"]
    opt.zero_grad(set_to_none=True)
    with torch.autocast(batch.images.device.type, dtype=amp) if amp else nullcontext():
        loss, terms = module(batch)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    params = [p for p in module.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, exp.optim.grad_clip or math.inf)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    if scheduler is not None:
        scheduler.step()
    return {"loss": float(loss.detach()), **{k: float(v) for k, v in terms.items()}, "grad_norm": float(norm),
            "lr": lr}


def build(exp: Experiment, device: torch.device, rank: Rank):
    """Seeded network (SyncBatchNorm under CUDA DDP), its (DDP-wrapped) loss module, Adam and the AMP
    grad scaler (fp16 only)."""
    torch.manual_seed(exp.optim.seed)
    net = DGSNet(exp.model)
    if exp.init.encoder:
        report = load_pretrained(net.encoder, exp.init.encoder, strict=exp.init.strict)
        if rank.main:  # say what was taken and, after a partial load, what was skipped
            detail = report.describe(limit=None)
            print(f"init.encoder: {len(report.loaded)} tensors from {report.source} ({report.layout})"
                  + (f"\n{detail}" if detail else ""))
    net = sync_batchnorm(net.to(device), device, rank.world_size)
    if exp.optim.compile:  # the decoder is differentiated twice (gradient term), which compiled graphs do not support
        net.encoder.compile()
    module: torch.nn.Module = LossModule(net, exp)
    if rank.world_size > 1:
        # the depth head (colour head) gets no gradient when its loss weight is 0; voxel-only
        # features leave the image maps unused
        unused = (not exp.loss.depth_weight or exp.model.features == "voxel"
                  or (exp.model.color and not exp.loss.color_weight))
        module = torch.nn.parallel.DistributedDataParallel(module, find_unused_parameters=unused)
    opt = torch.optim.Adam(net.parameters(), lr=exp.optim.lr, betas=tuple(exp.optim.betas),
                           weight_decay=exp.optim.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype(exp.optim.amp, device) == torch.float16 else None
    return net, module, opt, scaler


def make_scheduler(exp: Experiment, opt: torch.optim.Optimizer, total: int):
    """The learning-rate schedule over ``total`` steps: None for ``constant``; for ``one_cycle`` a
    cosine rise from ``lr`` to ``max_lr`` over ``warmup_fraction`` of the steps, then a cosine decay
    to ``lr / final_div`` at the last step (torch's OneCycleLR, momentum not cycled)."""
    o = exp.optim
    if o.schedule == "constant":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=o.max_lr, total_steps=total, pct_start=o.warmup_fraction,
                                               anneal_strategy="cos", cycle_momentum=False,
                                               div_factor=o.max_lr / o.lr, final_div_factor=o.final_div)


def total_steps(exp: Experiment, steps_per_epoch: int) -> int:
    """The stop step: the smaller of ``optim.iterations`` and ``optim.epochs`` × steps per epoch."""
    limits = [exp.optim.iterations] if exp.optim.iterations else []
    if exp.optim.epochs:
        limits.append(exp.optim.epochs * steps_per_epoch)
    return min(limits)


class Trainer:
    """One run: data, model and state set up (and resumed) in ``__init__``; :meth:`run` trains."""

    def __init__(self, exp: Experiment, train_manifest: str | os.PathLike, val_manifest: str | os.PathLike,
                 out: str | os.PathLike, *, resume: str = "auto", device: str = "auto", views: Sequence = ()) -> None:
        self.exp, self.out, self.val_manifest, self.views = exp, Path(out), Path(val_manifest), tuple(views)
        self.rank, self.device = init_rank(device)
        self.global_batch = exp.optim.batch_size
        if self.global_batch % self.rank.world_size:
            raise ConfigError(f"optim.batch_size={self.global_batch} is the global batch and must divide evenly "
                              f"across {self.rank.world_size} ranks")
        self.per_rank = self.global_batch // self.rank.world_size
        self.data = open_dataset(train_manifest, exp.data, seed=exp.optim.seed, surface=surface_purpose(exp))
        expect = {"width": self.data.width, "height": self.data.height}
        self.sampler = ResumableSampler(len(self.data), seed=exp.optim.seed, rank=self.rank.rank,
                                        world_size=self.rank.world_size)
        self.steps_per_epoch = self.sampler.per_rank // self.per_rank
        if self.steps_per_epoch < 1:
            raise ConfigError(f"{train_manifest}: {len(self.data)} frames give no full batch of "
                              f"{self.global_batch}; lower optim.batch_size")
        self.total = total_steps(exp, self.steps_per_epoch)
        self.net, self.module, self.opt, self.scaler = build(exp, self.device, self.rank)
        self.scheduler = make_scheduler(exp, self.opt, self.total)
        self.amp = amp_dtype(exp.optim.amp, self.device)
        main = self.rank.main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        start = resolve_resume(resume, self.out) if main or resume != "none" else None
        self.state = (restore(start, exp, self.rank, self.net, self.opt, self.scaler, self.scheduler) if start
                      else Progress())
        self.val = val_batches(Path(val_manifest), exp, expect, self.per_rank) if main else []
        if main:
            write_config(self.out, exp)
        self.log = TrainLog(self.out, resume_step=self.state.step, enabled=main)
        if self.rank.world_size > 1:
            torch_dist.barrier()  # every rank has read its checkpoint before rank 0 writes new ones

    def save(self, path: Path) -> None:
        s = self.state
        save_checkpoint(path, model=self.net, optimizer=self.opt, scaler=self.scaler, scheduler=self.scheduler,
                        step=s.step, epoch=s.epoch,
                        position=s.position, config=to_dict(self.exp), rng=capture_rng(), best=s.best,
                        world_size=self.rank.world_size)

    def _advance(self) -> None:
        s = self.state
        s.step, s.position = s.step + 1, s.position + self.global_batch
        if s.position // self.global_batch >= self.steps_per_epoch:  # the rest cannot fill a batch
            s.epoch, s.position = s.epoch + 1, 0

    def _after_step(self, scalars: dict[str, float], seconds: float, bar: tqdm) -> None:
        """Log (every rank joins the average), then validate, keep the best and checkpoint (rank 0)."""
        exp, step, last = self.exp, self.state.step, self.state.step == self.total
        if step % exp.log.every == 0 or last:
            scalars = mean_over_ranks(scalars, self.rank, self.device)
            scalars.update(samples_per_s=self.global_batch / seconds)
            self.log.scalars(step, scalars, "train")
            bar.set_postfix(loss=f"{scalars['loss']:.4f}")
        if not self.rank.main:
            return
        if step % exp.validation.every == 0 or last:
            metrics = validate(self.net, self.val, exp, self.device, self.amp)
            self.log.scalars(step, metrics, "val")
            self.log.views(step, self.views, self)  # hook(writer, step, trainer): images, meshes
            if self.state.best is None or metrics["loss"] < self.state.best:
                self.state.best = metrics["loss"]
                self.save(self.out / "best.pt")
        if step % exp.checkpoint.every == 0 or last:
            self.save(checkpoint_path(self.out, step))
            prune_checkpoints(self.out, exp.checkpoint.keep_last)

    def run(self) -> Path:
        """Train until the stop step; returns ``final.pt``."""
        bar = tqdm(total=self.total, initial=self.state.step, desc=f"train {self.out.name}", unit="it",
                   disable=not self.rank.main, mininterval=1.0, dynamic_ncols=True)
        self.module.train()
        while self.state.step < self.total:
            self.data.set_epoch(self.state.epoch)
            self.sampler.set_epoch(self.state.epoch, self.state.position // self.rank.world_size)
            loader = make_loader(self.data, self.per_rank, sampler=self.sampler, workers=self.exp.data.workers)
            tick = time.perf_counter()
            for batch in loader:
                scalars = train_step(self.module, self.opt, self.scaler,
                                     to_device(batch, self.device, self.exp.model.input_norm), self.exp,
                                     self.amp, self.scheduler)
                now = time.perf_counter()
                self._advance()
                bar.update(1)
                self._after_step(scalars, now - tick, bar)
                tick = time.perf_counter()
                if self.state.step >= self.total:
                    break
        bar.close()
        self.log.close()
        if self.rank.main:
            self.save(self.out / "final.pt")
        if self.rank.world_size > 1:
            torch_dist.barrier()
        return self.out / "final.pt"


CPU_REFUSAL = (
    "this is the release-size model (model.d_hidden ≥ 512, SPEC §3) and no GPU is in use: one step of batch 32 "
    "takes ~45 s on 2 CPU cores, so the release schedule would take weeks. Train it on a GPU (a CUDA machine, "
    "or the SLURM profile: docs/scaleout.md), or train the small CPU model (make demo, i.e. snakemake "
    "--configfile config/demo.yaml; or put config/experiments/tiny.yaml first in --config), or pass "
    "--allow-cpu (workflow: train.allow_cpu: true) to train it on the CPU all the same")


def release_size(exp: Experiment) -> bool:
    """True for a model of the release's width (``model.d_hidden`` ≥ 512): a GPU job (SPEC §3)."""
    return exp.model.d_hidden >= ModelConfig.d_hidden


def train(exp: Experiment, train_manifest: str | os.PathLike, val_manifest: str | os.PathLike,
          out: str | os.PathLike, *, resume: str = "auto", device: str = "auto", views: Sequence = ()) -> Path:
    """Train ``exp`` (see the module docstring) and return the path of ``final.pt``; each of ``views``
    is called at each validation as ``view(writer, step, trainer)`` (TensorBoard images, meshes)."""
    return Trainer(exp, train_manifest, val_manifest, out, resume=resume, device=device, views=views).run()


def main(argv: list[str] | None = None, views: Sequence = ()) -> None:
    ap = command_parser("python -m dgs_core.train", __doc__.splitlines()[0])
    ap.add_argument("--config", nargs="+", default=[], metavar="YAML",
                    help="experiment files applied in order over the release defaults (overlay first, e.g. tiny.yaml)")
    ap.add_argument("--train-manifest", required=True, type=Path, help="merged manifest of the train split")
    ap.add_argument("--val-manifest", required=True, type=Path, help="merged manifest of the val split (validation)")
    ap.add_argument("--out", required=True, type=Path, help="run folder (config, logs, checkpoints, final.pt)")
    ap.add_argument("--resume", default="auto", help="auto (newest checkpoint in --out) | none | PATH")
    ap.add_argument("--device", default="auto", choices=DEVICES, help="auto = CUDA when available")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads of torch and the Numba kernels, shared by the local ranks (0 = library default)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", dest="sets",
                    help="overrides after the files, e.g. optim.iterations=1000 loss.grad_weight=0.02")
    ap.add_argument("--allow-cpu", action="store_true",
                    help="train a release-size model on the CPU all the same (weeks; refused otherwise)")
    args = ap.parse_args(argv)
    exp = load_experiment(args.config, args.sets)
    on_cpu = args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available())
    if on_cpu and release_size(exp) and not args.allow_cpu:
        raise ConfigError(CPU_REFUSAL)
    if args.threads:
        set_threads(max(1, args.threads // int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    try:
        final = train(exp, args.train_manifest, args.val_manifest, args.out, resume=args.resume, device=args.device,
                      views=views)
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"final model: {final}")


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m dgs_core.train"))
