"""probe_statistics' estimate for an id nobody has, asked once a login and relation: every
comparison gets it, whether its own EXPLAIN was judged before or after it."""

from __future__ import annotations

from provisioner.verify.probes.statistics import Reference
from provisioner.verify.session import Outcome


def explained(rows: float) -> Outcome:
    return Outcome("ok", [([{"Plan": {"Plan Rows": rows}}],)])


def test_comparisons_before_and_after_the_reference_each_get_it_once():
    reference, got = Reference(), []
    reference.then(lambda unknown: got.append(("before", unknown)))
    reference.settle(explained(1))
    reference.then(lambda unknown: got.append(("after", unknown)))
    assert got == [("before", 1.0), ("after", 1.0)] and reference.waiting == []


def test_a_refused_reference_compares_as_no_estimate():
    reference, got = Reference(), []
    reference.settle(Outcome("denied", sqlstate="42501"))
    reference.then(got.append)
    assert got == [None]
