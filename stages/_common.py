"""What every stage script shares: logging, params loading, and turning known errors into exit code 1."""
import logging
import sys
import time
from pathlib import Path

from ecgproto.config import ConfigError, load
from ecgproto.ptbxl import RecordError

log = logging.getLogger("ecgproto")


def run(name, body):
    """Call body(params) and log one summary line; a bad input ends the stage with its message."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name}: %(message)s", datefmt="%H:%M:%S")
    start = time.perf_counter()
    try:
        params = load(Path("params.yaml"))
        summary = body(params)
    except (ConfigError, RecordError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    log.info("%s (%.1f s)", summary, time.perf_counter() - start)
