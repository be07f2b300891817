"""The stricter guard: noisy leads counted one by one (several: no reliable call; one: a warning), and a
low-familiarity warning band above the refusal cut-off."""
import dataclasses

import numpy as np

from ecgproto.trust.guard import familiarity_reference, verdict

from conftest import PARAMS

GUARD = dataclasses.asdict(PARAMS.guard)


def _ecg(noisy_leads=()):
    rng = np.random.default_rng(1)
    mv = 0.01 * rng.standard_normal((12, 1000))
    mv[:, (np.arange(1000) % 80) < 3] += 1.0
    for lead in noisy_leads:
        mv[lead] += 1.5 * rng.standard_normal(1000)  # broadband noise swamping that lead
    return mv


REFERENCE = familiarity_reference(np.linspace(0.2, 0.9, 500), GUARD["familiarity_percentile"])


def test_several_noisy_leads_refuse_one_warns():
    clean = verdict(_ecg(), 0.8, GUARD, REFERENCE)
    assert clean["reliable"] is True and clean["warnings"] == []
    one = verdict(_ecg([0]), 0.8, GUARD, REFERENCE)
    assert one["reliable"] is True and any(w.startswith("noisy lead I ") for w in one["warnings"])
    two = verdict(_ecg([0, 1]), 0.8, GUARD, REFERENCE)
    assert two["reliable"] is False and any("noise swamps the QRS in 2 leads" in r for r in two["reasons"])


def test_low_familiarity_warns_above_the_cut_off_and_refuses_below():
    cutoff, warn = REFERENCE["cutoff"], GUARD["familiarity_warning_percentile"]
    low = verdict(_ecg(), float(np.percentile(np.linspace(0.2, 0.9, 500), warn / 2)), GUARD, REFERENCE)
    assert low["reliable"] is True and any(w.startswith("low familiarity") for w in low["warnings"])
    assert verdict(_ecg(), cutoff - 0.05, GUARD, REFERENCE)["reliable"] is False
