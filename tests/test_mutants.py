"""Every spec: the reference passes, and every mutant is rejected by the hidden cases and
diagnosed as itself (mutation score 100%)."""
import pytest

from grader.checks import all_specs, invoke, run_spec

SPECS = all_specs()
SEEDS = (0, 12345)
PAIRS = [(sid, m) for sid, s in SPECS.items() for m in s.mutants]


def _run(spec, fn, seed):
    return run_spec(spec, lambda c: invoke(fn, spec.framework, c.args, c.kwargs), seed=seed, hidden=True)


@pytest.mark.parametrize("spec_id", sorted(SPECS))
def test_reference_passes_its_own_spec(spec_id):
    spec = SPECS[spec_id]
    for seed in SEEDS:
        res = _run(spec, spec.reference(), seed)
        assert res.passed, res.report()


@pytest.mark.parametrize("spec_id", sorted(SPECS))
def test_spec_is_complete(spec_id):
    spec = SPECS[spec_id]
    assert spec.doc, "the case generator needs a docstring saying what is checked"
    assert len(spec.hints) >= 2, "give at least two progressive hints"
    assert spec.mutants, "every exercise ships a catalogue of known mistakes"
    names = [m.name for m in spec.mutant_objects()]
    assert len(set(names)) == len(names), "mutant names must be distinct"


@pytest.mark.parametrize("spec_id,mutant", PAIRS, ids=[f"{s}:{m}" for s, m in PAIRS])
def test_mutant_is_rejected_and_diagnosed(spec_id, mutant):
    spec = SPECS[spec_id]
    m = next(x for x in spec.mutant_objects() if x.key == mutant)
    for seed in SEEDS:
        res = _run(spec, m.fn, seed)
        assert not res.passed, f"mutant {mutant} ({m.name}) passes the hidden tests of {spec_id}"
        assert res.diagnosis is m, (f"mutant {mutant} diagnosed as "
                                    f"{res.diagnosis.name if res.diagnosis else None}, expected {m.name}")


@pytest.mark.parametrize("spec_id", sorted(SPECS))
def test_stub_is_not_attempted(spec_id):
    spec = SPECS[spec_id]
    if spec.framework == "value":
        pytest.skip("plain values have no stub")

    def stub(*a, **k):
        raise NotImplementedError()

    assert _run(spec, stub, 0).status == "not attempted"
