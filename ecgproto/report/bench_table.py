"""`make bench`'s result as the table the CLI prints and the report quotes (no PyTorch import: the report
stage reads benchmarks/bench.json, it never runs the benchmark)."""
from __future__ import annotations


def table(result: dict) -> str:
    """The result as a Markdown table (models side by side, then ratios and goals)."""
    names = list(result["models"])
    keys = list(dict.fromkeys(k for n in names for k in result["models"][n]))
    lines = ["| measure | " + " | ".join(names) + " | ratio (better = > 1) |", "| --- |" + " --- |" * (len(names) + 1)]
    for k in keys:
        values = " | ".join(f"{result['models'][n][k]:,}" if k in result["models"][n] else "-" for n in names)
        lines.append(f"| {k} | {values} | {result['ratios'].get(k, '')} |")
    lines.append("")
    lines += [f"- {'met' if ok else 'NOT met'}: {goal}" for goal, ok in result["goals"].items()]
    return "\n".join(lines)
