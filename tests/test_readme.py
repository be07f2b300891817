"""The README quotes figures from the committed metrics files: they must agree (another machine's arithmetic
may move the last digits of a rerun, within the CI gate's tolerance; the committed files are the source)."""
import json
import re

from conftest import REPO

README = (REPO / "README.md").read_text()


def _row(prefix: str) -> list:
    line = next(ln for ln in README.splitlines() if ln.startswith(prefix))
    return [c.strip() for c in line.strip("|").split("|")]


def _metrics(name):
    return json.loads((REPO / "metrics" / name).read_text())


def test_the_synthetic_results_row_quotes_metrics_evaluate_json():
    cells = _row("| synthetic (`make repro`)")
    evaluation = _metrics("evaluate.json")
    assert (cells[3] == f"{evaluation['final']['macro_auroc']:.4f}"
            and cells[4] == f"{evaluation['baseline']['macro_auroc']:.4f}")
    transfer = _metrics("transfer.json")
    cells = _row("| the same synthetic-trained models")
    assert (cells[3] == f"{transfer['final']['macro_auroc']:.3f}"
            and cells[4] == f"{transfer['baseline']['macro_auroc']:.3f}")


def test_the_cross_validation_row_quotes_metrics_real_subset_cv_json():
    cells = _row("| real subset, params.yaml's recipe (recorded as `pretrain2000-cap50`")
    mean = _metrics("real_subset_cv.json")["pretrain2000-cap50"]["mean_over_seeds"]
    for cell, model in ((cells[3], "final"), (cells[4], "baseline")):
        m = mean[model]
        assert cell == f"{m['macro_auroc_mean']:.3f} ({m['macro_auroc_min']:.3f}-{m['macro_auroc_max']:.3f})"
    cells = _row("| the same recipe rerun at later commits (recorded as `params`)")
    runs = _metrics("real_subset_cv.json")["params"]
    for cell, model in ((cells[3], "final"), (cells[4], "baseline")):
        m = runs["mean_over_seeds"][model]
        assert cell == f"{m['macro_auroc_mean']:.3f} ({m['macro_auroc_min']:.3f}-{m['macro_auroc_max']:.3f})"
    own = [runs[f"seed{k}"]["interpretability"]["own_class_share_of_evidence"] for k in (1, 2, 3)]
    assert cells[5] == f"{sum(own) / 3:.3f}"


def test_readme_commands_name_real_subcommands():
    from ecgproto.cli import build_parser

    known = set(build_parser()._subparsers._group_actions[0].choices)
    used = set(re.findall(r"^ecgproto ([a-z-]+)", README, flags=re.M))
    assert used and used <= known, used - known
