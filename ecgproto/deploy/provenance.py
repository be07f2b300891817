"""What a model file says it was trained on, as every answer shows it: a model trained on simulated ECGs
says so ("DEMO MODEL"), a real-data model names its data and commit, a model file without the record says
that. The block comes from a file from outside: only known fields, of plain types and bounded length, are
shown."""
from __future__ import annotations

DEMO = "DEMO MODEL: trained on simulated ECGs; not for patients"
FIELDS = ("data", "description", "manifest_sha256", "records", "commit", "params_sha256")


def _plain(value, depth: int = 0):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 10 ** 12 else None
    if isinstance(value, str):
        return value[:80]
    if isinstance(value, dict) and depth == 0:
        return {str(k)[:20]: _plain(v, 1) for k, v in list(value.items())[:8]}
    return None


def model_note(provenance) -> dict:
    """{'warning': DEMO or None, 'trained_on': one line, and the known fields} for an answer."""
    if not isinstance(provenance, dict):
        return {"warning": "this model file does not say what it was trained on (written before provenance was "
                           "recorded): check where it came from before using it on patients",
                "trained_on": "unknown"}
    fields = {k: _plain(provenance.get(k)) for k in FIELDS}
    records = fields["records"] if isinstance(fields["records"], dict) else {}
    counts = ", ".join(f"{k} {v}" for k, v in records.items() if isinstance(v, int))
    commit = f", commit {fields['commit'][:12]}" if isinstance(fields["commit"], str) else ""
    line = f"{fields['description'] or fields['data']} ({counts or 'record counts unknown'}){commit}"
    warning = DEMO if fields["data"] == "synthetic" else None
    return {"warning": warning, "trained_on": line, **fields}
