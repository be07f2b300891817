"""DVC stage `pretrain`: the plain baseline on synthetic ECGs, whose backbone stage `baseline` starts from
(models/pretrained/baseline.pt); with pretrain.synthetic_records 0 the folder holds only a note."""
from pathlib import Path

from ecgproto.files.atomic import atomic_dir
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.distributed import is_writer
from ecgproto.model.pretrain import MODEL_FILE, pretrain

from _common import run, seeded_device


def main(params):
    out = Path("models/pretrained")
    if params.pretrain.synthetic_records == 0:
        with atomic_dir(out) as tmp:
            (tmp / "OFF.txt").write_text("pretrain.synthetic_records is 0: the baseline starts from random weights\n")
        return "off (pretrain.synthetic_records = 0)"
    dev = seeded_device(params)
    Path("data").mkdir(exist_ok=True)
    model, meta, best, epoch = pretrain(params, Path("data"), dev)
    if not is_writer():  # the other torchrun workers trained beside it; rank 0 writes
        return "trained"
    with atomic_dir(out) as tmp:
        save_checkpoint(tmp / MODEL_FILE, model, meta, best_epoch=epoch, pretrained_on="synthetic")
    return (f"{params.pretrain.synthetic_records} synthetic ECGs: best validation macro-AUROC {best:.4f} "
            f"at epoch {epoch}")


run("pretrain", main, distributed=lambda params: params.pretrain.synthetic_records > 0)
