"""Synthetic PTB-XL: rhythm-faithful 12-lead ECGs written in the exact PTB-XL layout.

heart.py (dipoles, waves, beats, rhythms), recording.py (one record: rhythm + nuisance), labelling.py (the
plan and the codes, one reader's errors), tree.py (the files on disk).

Each wave (P, Q, R, S, T, flutter, fibrillation, pacing spike) is a time course times a 3-D cardiac
dipole direction (x left, y inferior, z anterior). Leads are projections of the dipole: I, II and V1-V6
directly, III/aVR/aVL/aVF derived from I and II (Einthoven, Goldberger), so the limb leads are
consistent by construction. Rhythms follow the published criteria (docs/method.md): the beat schedule (RR
intervals, P-wave behaviour, conduction) is what distinguishes the 16 codes.

What makes real rhythms hard is added on top, each scaled by a `SyntheticRealism` value (params.yaml,
data.synthetic_realism; 0 turns it off): morphology that changes QRS and ST-T but not the rhythm (bundle
branch blocks, infarction Q waves, LVH voltages, ST-T changes; per patient, at PTB-XL-like prevalences),
recording nuisance (breathing wander, muscle noise, electrode motion, spread of axis and amplitude between
patients and of gain between leads, an occasional poor lead), borderline cases (rates near 60 and 100/min,
PR near 200 ms, QRS near 110-120 ms, mild sinus arrhythmia, fine fibrillatory waves, variable flutter
conduction, a single premature beat) and one reader's labelling errors. What each record really is stays in
synthetic_truth.csv beside the metadata.
"""
from ecgproto.data.synth.heart import Patient, Waves  # noqa: F401
from ecgproto.data.synth.labelling import CATEGORY_SHARE, codes_of, record_plan  # noqa: F401
from ecgproto.data.synth.recording import simulate  # noqa: F401
from ecgproto.data.synth.tree import DATABASE_COLUMNS, generate, kept_tree  # noqa: F401
