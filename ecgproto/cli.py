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


def _gate(args) -> str:
    """CI's regression gate: a metric in a JSON metrics file against its value at a git revision."""
    import json
    import subprocess

    def value(doc, dotted):
        for key in dotted.split("."):
            doc = doc[key]
        return float(doc)

    current = value(json.loads(Path(args.file).read_text()), args.metric)
    shown = subprocess.run(["git", "show", f"{args.against}:{args.file}"], capture_output=True, text=True)
    if shown.returncode != 0:
        return f"no committed {args.file} at {args.against}: nothing to compare {args.metric} = {current:.4f} with"
    committed = value(json.loads(shown.stdout), args.metric)
    line = f"{args.metric}: {current:.4f} now, {committed:.4f} at {args.against} (allowed drop {args.max_drop})"
    if current < committed - args.max_drop:
        raise ValueError(f"regression: {line}")
    return f"ok: {line}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgproto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write a synthetic PTB-XL tree (exact PTB-XL layout, 100 Hz)")
    p.add_argument("out", help="output folder")
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_synth)

    p = sub.add_parser("gate", help="fail when a metric dropped more than --max-drop below a git revision's")
    p.add_argument("--file", default="metrics/evaluate.json")
    p.add_argument("--metric", default="final.macro_auroc")
    p.add_argument("--against", default="HEAD")
    p.add_argument("--max-drop", type=float, default=0.02)
    p.set_defaults(func=_gate)
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
