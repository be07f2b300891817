"""DVC stage `report`: reports/report.md and its figures, from the metrics, plots and explanations."""
from pathlib import Path

from ecgproto.files.atomic import atomic_dir, atomic_path, read_json, write_json
from ecgproto.report import markdown as report

from _common import run

OUT = Path("reports")


def main(params):
    ctx = {
        "source": params.data.source, "folder": params.data.folder, "joint_backbone": params.joint.backbone,
        "classifier_retrain": params.classifier.retrain,
        "data": read_json("metrics/data.json"), "evaluation": read_json("metrics/evaluate.json"),
        "per_label": read_json("metrics/per_label.json"), "sizes": read_json("metrics/model_size.json"),
        "interpretability": read_json("metrics/interpretability.json"),
        "transfer": read_json("metrics/transfer.json"), "external": read_json("metrics/external.json"),
        "cases": read_json(OUT / "explain/cases.json"),
        "gallery": {p.stem for p in (OUT / "explain/gallery").glob("*.png")},
        "bench": read_json("benchmarks/bench.json") if Path("benchmarks/bench.json").is_file() else None,
    }
    with atomic_dir(OUT / "figures") as tmp:
        report.roc_figure({m: read_json(f"plots/roc/{m}.json") for m in report.MODELS}, tmp / "roc.png")
        report.curves_figure(report.read_curves(Path("dvclive")), tmp / "curves.png",
                              params.classifier.retrain)
    with atomic_path(OUT / "report.md") as tmp:
        tmp.write_text(report.render(ctx))
    write_json(Path("metrics/summary.json"), report.headline(ctx))
    return f"wrote {OUT / 'report.md'} ({'synthetic' if params.data.source == 'synthetic' else 'real'} data)"


run("report", main)
