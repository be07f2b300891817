"""What every stage script shares: logging, params loading, and turning known errors into exit code 1."""
import logging
import sys
import time
from pathlib import Path

# The ecgproto beside this script, not the installed one: `dvc exp run --temp` runs a copy of the
# repository, and the editable install points at the original, whose code may have moved on since.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgproto.config import ConfigError, load  # noqa: E402
from ecgproto.download import DownloadError  # noqa: E402
from ecgproto.explain import ModelError  # noqa: E402
from ecgproto.ptbxl import RecordError  # noqa: E402

log = logging.getLogger("ecgproto")


def run(name, body):
    """Call body(params) and log one summary line; a bad input ends the stage with its message."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name}: %(message)s", datefmt="%H:%M:%S")
    start = time.perf_counter()
    try:
        params = load(Path("params.yaml"))
        summary = body(params)
    except (ConfigError, RecordError, DownloadError, ModelError, FileNotFoundError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    log.info("%s (%.1f s)", summary, time.perf_counter() - start)


def device(params):
    from ecgproto.train import pick_device, seed_everything

    seed_everything(params.seed)
    return pick_device(params.device)


def backbone_config(params):
    from ecgproto.model import BackboneConfig

    m = params.model
    return BackboneConfig(widths=m.widths, depths=m.depths, stem_kernel=m.stem_kernel)


def prototype_config(params, n_classes):
    from ecgproto.model import PrototypeConfig

    m = params.model
    return PrototypeConfig(n_classes=n_classes, prototypes_per_class=m.prototypes_per_class,
                           latent_dim=m.latent_dim, latent_activation=m.latent_activation)


def training_curves(name):
    """dvclive logger for per-epoch curves under dvclive/<name>, plotted by `dvc plots show`.
    Returns on_epoch(step, values)."""
    from dvclive import Live

    live = Live(dir=f"dvclive/{name}", save_dvc_exp=False, dvcyaml=None)

    def on_epoch(step, values):
        live.step = step
        for key, value in values.items():
            live.log_metric(key, value)
        live.next_step()

    return on_epoch
