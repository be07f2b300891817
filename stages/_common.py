"""What every stage script shares: logging, params loading, and turning known errors into exit code 1."""
import logging
import os
import sys
import time
from pathlib import Path

# The ecgproto beside this script, not the installed one: `dvc exp run --temp` runs a copy of the
# repository, and the editable install points at the original, whose code may have moved on since.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgproto.config import load  # noqa: E402
from ecgproto.errors import EcgprotoError  # noqa: E402
from ecgproto.files.atomic import stop_on_sigterm  # noqa: E402

log = logging.getLogger("ecgproto")


def run(name, body, distributed=False):
    """Call body(params) and log one summary line; a bad input ends the stage with its message (exit 1),
    Ctrl-C or SIGTERM with exit 130 after every atomic write has removed its temporary files.
    distributed: a training stage, which reruns itself under torchrun when train.processes > 1 (or a
    function of the params that says whether it trains this time)."""
    from ecgproto.model.distributed import relaunch, stop, under_torchrun

    worker = f"[rank {os.environ['RANK']}]" if under_torchrun() else ""
    quiet = worker and os.environ["RANK"] != "0"  # rank 0 speaks for the group
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format=f"%(asctime)s {name}{worker}: %(message)s", datefmt="%H:%M:%S")
    stop_on_sigterm()
    start = time.perf_counter()
    try:
        params = load(Path("params.yaml"))
        trains = distributed(params) if callable(distributed) else distributed
        if trains and params.train.processes > 1 and not under_torchrun():
            log.info("training in %d processes under torchrun", params.train.processes)
            sys.exit(relaunch(sys.argv[0], params.train.processes))
        summary = body(params)
    except EcgprotoError as exc:
        log.error("%s", exc)
        sys.exit(1)
    except KeyboardInterrupt:
        log.error("interrupted; outputs already written are complete, nothing half-written was kept")
        sys.exit(130)
    finally:
        stop()
    log.info("%s (%.1f s)", summary, time.perf_counter() - start)


def seeded_device(params):
    """The device this stage (or this torchrun worker, which first joins its process group) trains on."""
    from ecgproto.model.distributed import start, under_torchrun
    from ecgproto.model.seeding import pick_device, seed_everything

    seed_everything(params.seed)
    device = pick_device(params.device)
    return start(device) if under_torchrun() else device


def training_curves(name):
    """dvclive logger for per-epoch curves under dvclive/<name>, plotted by `dvc plots show`.
    Returns on_epoch(step, values); on a torchrun worker other than rank 0, one that writes nothing."""
    from dvclive import Live

    from ecgproto.model.distributed import is_writer

    if not is_writer():
        return lambda step, values: None

    live = Live(dir=f"dvclive/{name}", save_dvc_exp=False, dvcyaml=None)

    def on_epoch(step, values):
        live.step = step
        for key, value in values.items():
            live.log_metric(key, value)
        live.next_step()

    return on_epoch


def resolve(folder: str) -> Path:
    """A relative folder from params.yaml (transfer.folder, external.folder) is taken from the repository the run
    belongs to: `dvc exp run --temp`
    runs in <repository>/.dvc/tmp/exps/<run>, where ../shared would point elsewhere."""
    path = Path(folder)
    if path.is_absolute():
        return path
    here = Path.cwd().resolve()
    for parent in (here, *here.parents):
        if parent.name == "exps" and parent.parent.name == "tmp" and parent.parent.parent.name == ".dvc":
            return parent.parent.parent.parent / path
    return path


def side_measurement(path: Path, skipped_because, compute) -> dict:
    """An optional measurement on data that may be absent (stages transfer and external): the metrics file
    says why it was skipped, or why it failed (a RecordError from the data), instead of stopping the
    pipeline; otherwise it holds compute()'s result, marked computed."""
    from ecgproto.errors import RecordError
    from ecgproto.files.atomic import write_json

    if skipped_because:
        result = {"computed": False, "reason": skipped_because}
    else:
        try:
            result = {"computed": True, **compute()}
        except RecordError as exc:
            result = {"computed": False, "reason": str(exc)}
    write_json(Path(path), result)
    return result
