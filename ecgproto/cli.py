"""The `ecgproto` command."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .ptbxl import RecordError


def _synth(args) -> str:
    from .synth import generate

    generate(Path(args.out), args.records, args.seed, progress=True)
    return f"wrote {args.records} synthetic PTB-XL records to {args.out}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgproto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write a synthetic PTB-XL tree (exact PTB-XL layout, 100 Hz)")
    p.add_argument("out", help="output folder")
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_synth)
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        message = args.func(args)
    except (RecordError, ValueError) as exc:
        print(f"ecgproto {args.command}: error: {exc}", file=sys.stderr)
        return 1
    if message:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
