"""Training loops: the joint stage, the classifier stage, the baseline; shared batching and early
stopping. Plain loops, no framework; in several processes through torch.distributed (distributed.py)."""
from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ecgproto.config import LossParams, Params, TrainParams
from ecgproto.errors import TrainingError
from ecgproto.evaluation.metrics import macro_auroc
from ecgproto.files.atomic import raise_if_stopped
from ecgproto.model import distributed
from ecgproto.model.inference import predict
from ecgproto.model.losses import joint_loss, wrong_class_l1

log = logging.getLogger(__name__)


def sample_weights(labels: np.ndarray) -> np.ndarray:
    """Class-balanced sampling: a record weighs 1 / frequency of its rarest class (unlabelled records
    count as a class of their own)."""
    freq = labels.sum(axis=0)
    w = np.where(labels > 0, 1.0 / np.maximum(freq, 1), 0.0).max(axis=1)
    unlabelled = labels.sum(axis=1) == 0
    if unlabelled.any():
        w[unlabelled] = 1.0 / unlabelled.sum()
    return w / w.sum()


def batches(x, y: torch.Tensor, s: TrainParams, gen: torch.Generator, weights=None, share=None):
    """One epoch of (signals, labels) batches: shuffled (or class-balanced) order, random circular
    shifts, random crops. share: this process's DistributedSampler when several train together."""
    n = len(x)
    if share is not None:
        order = torch.as_tensor(list(share), dtype=torch.long)
        n = len(order)
    elif weights is not None:
        order = torch.multinomial(torch.as_tensor(weights), n, replacement=True, generator=gen)
    else:
        order = torch.randperm(n, generator=gen)
    length = x.shape[-1]
    for i in range(0, n, s.batch_size):
        idx = order[i:i + s.batch_size]
        if len(idx) < 2:  # batch norm cannot train on a single record; it joins the next epoch's draw
            break
        # a memory-mapped array (prepare's .npy) is read a batch at a time: training never holds the whole set
        xb = torch.from_numpy(np.asarray(x[idx.numpy()], dtype=np.float32)) if isinstance(x, np.ndarray) else x[idx]
        if s.shift_samples > 0:  # a rhythm has no fixed phase: where the 10 s window starts is arbitrary
            shifts = torch.randint(-s.shift_samples, s.shift_samples + 1, (len(idx),), generator=gen)
            rolled = (torch.arange(length)[None, :] - shifts[:, None]) % length
            xb = torch.gather(xb, 2, rolled[:, None, :].expand(-1, xb.shape[1], -1))
        if s.crop_samples < length:
            starts = torch.randint(0, length - s.crop_samples + 1, (len(idx),), generator=gen)
            window = starts[:, None] + torch.arange(s.crop_samples)[None, :]
            xb = torch.gather(xb, 2, window[:, None, :].expand(-1, xb.shape[1], -1))
        yield xb, y[idx]


def fit(model, train, val, settings: TrainParams, loss_fn: Callable, device, seed: int,
        on_epoch: Callable = lambda epoch, values: None):
    """Adam + cosine schedule, early stopping on validation macro-AUROC; restores the best epoch.

    loss_fn(model, xb, yb) -> (loss, dict of floats). Only parameters with requires_grad train.
    Returns (best validation AUROC, best epoch).

    In a process group (train.processes > 1) each rank trains a DistributedDataParallel copy on its share of
    every epoch, with train.batch_size / processes records per batch, so that a step averages the same
    number of records as one process does; rank 0 measures the validation AUROC and every rank uses it."""
    size = distributed.world_size()
    gen = torch.Generator().manual_seed(seed + 7919 * distributed.rank())  # rank 0 crops as one process does
    x = train.signals  # memory-mapped: each batch reads its own records (the page cache keeps them warm)
    y = torch.as_tensor(train.labels)
    weights = sample_weights(train.labels) if settings.balanced_sampling else None
    share = distributed.sampler(len(x), seed) if size > 1 else None
    per_rank = dataclasses.replace(settings, batch_size=settings.batch_size // size)
    net = distributed.wrap(model, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.max_epochs)
    best = (-np.inf, 0, None)
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        sums, n = {}, 0
        if share is not None:
            share.set_epoch(epoch)
        for batch, (xb, yb) in enumerate(batches(x, y, per_rank, gen, weights, share), 1):
            raise_if_stopped()
            xb, yb = xb.to(device), yb.to(device)
            loss, terms = loss_fn(net, xb, yb)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite training loss ({float(loss.detach())}) at epoch {epoch}, "
                                    f"batch {batch} "
                                    f"(terms {terms}); nothing was saved. Check the input data and the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in {"loss": float(loss.detach()), **terms}.items():
                sums[k] = sums.get(k, 0.0) + v * len(xb)
            n += len(xb)
        sched.step()
        *totals, n = distributed.summed([*sums.values(), n])
        val_auroc = distributed.from_writer(macro_auroc(val.labels, predict(model, val.signals, device)["probs"])
                                            if distributed.is_writer() else np.nan)
        values = {**{f"train_{k}": v / n for k, v in zip(sums, totals)}, "val_macro_auroc": val_auroc}
        on_epoch(epoch, values)
        log.info("epoch %d: loss %.4f, val macro-AUROC %.4f", epoch, values["train_loss"], val_auroc)
        if best[2] is None or val_auroc > best[0]:  # NaN (no evaluable label) keeps the first epoch
            best = (val_auroc, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= settings.patience:
            log.info("early stop: no improvement for %d epochs", settings.patience)
            break
    model.load_state_dict(best[2])
    return best[0], best[1]


def bce_loss(pos_weight):
    def loss_fn(model, xb, yb):
        loss = F.binary_cross_entropy_with_logits(model(xb), yb, pos_weight=pos_weight)
        return loss, {"bce": float(loss.detach())}
    return loss_fn


def prototype_loss(pos_weight, cooccurrence, weights: LossParams):
    def loss_fn(model, xb, yb):
        logits, sims = model(xb)
        return joint_loss(logits, sims, yb, distributed.unwrap(model), pos_weight, cooccurrence, weights)
    return loss_fn


def freeze_all_but(model, *modules) -> None:
    for p in model.parameters():
        p.requires_grad_(False)
    for m in modules:
        for p in (m.parameters() if isinstance(m, torch.nn.Module) else [m]):
            p.requires_grad_(True)


@torch.no_grad()
def start_classifier_stage(model, params: Params) -> torch.Tensor:
    """Prepare the last layer per classifier.wrong_class and return the (C, P) 0/1 mask of the weights
    that may train (the others are 0 and stay 0): a pruned prototype's weights never train; keep: the
    wrong-class weights start where the joint stage left them; sparse: they start at 0 and L1 grows
    only those the data needs; zero: they are 0 and stay 0, so a class's logit rests on its own
    prototypes alone."""
    mask = model.active()[None, :].expand_as(model.last_layer.weight).clone()
    if params.classifier.wrong_class == "zero":
        mask *= model.class_identity().T
    if params.classifier.wrong_class in ("sparse", "zero"):
        model.last_layer.weight.mul_(model.class_identity().T)
    model.last_layer.weight.mul_(mask)
    return mask


def train_last_layer(model, train_sims, train_labels, val_sims, val_labels, pos_weight, params: Params, device,
                     on_step: Callable = lambda step, values: None, eval_every: int = 10) -> float:
    """The classifier stage with classifier.retrain = last_layer: the backbone and prototypes are frozen,
    so the similarities are fixed features and the last layer is a convex problem (BCE + loss.l1 x
    wrong-class L1). Solved full batch with Adam (classifier.lr, classifier.steps); keeps the step with
    the best validation macro-AUROC. Returns that AUROC. Pruned prototypes keep weight 0."""
    l1, lr, steps = params.loss.l1, params.classifier.lr, params.classifier.steps
    mask = start_classifier_stage(model, params)
    s_tr = torch.as_tensor(train_sims, device=device)
    y_tr = torch.as_tensor(train_labels, device=device)
    s_va = torch.as_tensor(val_sims, device=device)
    weight = model.last_layer.weight
    hook = weight.register_hook(lambda grad: grad * mask)  # a masked weight gets no gradient: it stays 0
    identity = model.class_identity()
    opt = torch.optim.Adam([weight], lr=lr)
    best = (macro_auroc(val_labels, (s_va @ weight.T).detach().cpu().numpy()), weight.detach().clone())
    try:
        for step in range(1, steps + 1):
            bce = F.binary_cross_entropy_with_logits(s_tr @ weight.T, y_tr, pos_weight=pos_weight)
            loss = bce + l1 * wrong_class_l1(weight, identity)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite training loss ({float(loss.detach())}) at step {step} "
                                    "of the last layer; "
                                    "nothing was saved")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % eval_every == 0 or step == steps:
                with torch.no_grad():
                    val = macro_auroc(val_labels, (s_va @ weight.T).cpu().numpy())
                on_step(step, {"train_loss": float(loss.detach()), "train_bce": float(bce.detach()),
                               "val_macro_auroc": val})
                if val > best[0]:
                    best = (val, weight.detach().clone())
    finally:
        hook.remove()
    with torch.no_grad():
        weight.copy_(best[1])
    return best[0]


def train_addon_after_projection(model, train, val, source_x, pos_weight, params: Params, device,
                                 on_epoch: Callable = lambda epoch, values: None):
    """The classifier stage with classifier.retrain = addon: the add-on and the last layer train on BCE +
    loss.l1 x wrong-class L1, with every projected prototype tied to its source ECG (source_x, one row
    per prototype), so that it stays exactly that ECG's latent. The backbone is fixed. Batches, crops and
    early stopping as in `fit`, at classifier.addon_lr. Returns (best AUROC, epoch). Pruned prototypes
    keep weight 0."""
    l1 = params.loss.l1
    settings = dataclasses.replace(params.train, lr=params.classifier.addon_lr)
    mask = start_classifier_stage(model, params)
    model.freeze_backbone()
    model.tie_to_sources(torch.as_tensor(np.asarray(source_x), device=device), model.prototype_source >= 0)
    freeze_all_but(model, model.addon, model.last_layer.weight)
    weight = model.last_layer.weight
    hook = weight.register_hook(lambda grad: grad * mask)  # a masked weight gets no gradient: it stays 0
    identity = model.class_identity()

    def loss_fn(model, xb, yb):
        bce = F.binary_cross_entropy_with_logits(model(xb)[0], yb, pos_weight=pos_weight)
        l1_term = wrong_class_l1(distributed.unwrap(model).last_layer.weight, identity)
        return bce + l1 * l1_term, {"bce": float(bce.detach())}

    try:
        return fit(model, train, val, settings, loss_fn, device, params.seed, on_epoch)
    finally:
        hook.remove()
        model.untie()
