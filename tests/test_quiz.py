"""The interview quiz bank and the terminal quiz.

The bank validates and is big enough; every multiple-choice question has exactly one right
option (or is multi-select); numeric answers are recomputed from independent oracles
(PyTorch modules for parameter counts, torch's flop counter, sacrebleu for BLEU); the
terminal quiz and the mock interview, driven by piped stdin, give the expected scores; and
questions answered wrong come back first.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
import torch
import yaml
from rich.console import Console

from grader.course import ROOT, load_course
from grader.selfstudy import quiz as quiz_mod
from grader.selfstudy.bank import TIERS, BankError, Bank, banks, load_bank, questions

QS = questions()
NUMERIC = [q for q in QS if q.kind == "numeric"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---------------------------------------------------------------- the bank validates

def test_every_assignment_references_a_valid_bank():
    course = load_course()
    for a in course.assignments:
        assert a.quiz == f"quizzes/{a.id}.yml", f"{a.id}: course.yml should reference its bank"
        b = load_bank(ROOT / a.quiz)
        assert b.topic == a.id
    assert set(banks()) == {a.id for a in course.assignments}


def test_bank_size_and_coverage():
    assert len(QS) >= 120
    per = Counter((q.topic, q.tier) for q in QS)
    for a in load_course().assignments:
        for t in TIERS:
            assert per[(a.id, t)] >= 4, f"{a.id}/{t} has {per[(a.id, t)]} questions, need >= 4"
    kinds = Counter(q.kind for q in QS)
    assert set(kinds) == {"choice", "numeric", "open"}
    assert len({q.id for q in QS}) == len(QS), "question ids must be unique"


def test_find_the_bug_questions_show_code():
    bugs = [q for q in QS if "find-the-bug" in q.tags]
    assert len(bugs) >= 5
    assert all(q.code and q.code.strip() for q in bugs)
    topics = {q.topic for q in bugs}
    # the seeds' naive snippets: overflowing softmax, a weighted sum that never sums, a
    # self-attention that returns its input
    assert {"softmax", "weighted-sums", "self-attention"} <= topics


def test_choice_questions_have_one_right_option_or_are_multi_select():
    for path in sorted((ROOT / "quizzes").glob("*.yml")):  # raw data, not through the schema
        for q in yaml.safe_load(path.read_text())["questions"]:
            if q["kind"] != "choice":
                continue
            n = sum(bool(o.get("correct")) for o in q["options"])
            assert n == 1 or (q.get("multi") and n >= 1), f"{q['id']}: {n} correct options"
            assert all(o.get("why") for o in q["options"]), f"{q['id']}: every option needs an explanation"


def test_open_questions_have_model_answer_and_key_points():
    for q in QS:
        if q.kind == "open":
            assert len(q.model_answer.split()) >= 25 and len(q.key_points) >= 2, q.id


def _bank_with(question: dict) -> dict:
    return {"topic": "softmax", "title": "t", "intro": "i", "questions": [question]}


@pytest.mark.parametrize("bad,needle", [
    ({"id": "softmax.x", "tier": "basic", "kind": "choice", "prompt": "p",
      "options": [{"text": "a", "correct": True, "why": "w"}, {"text": "b", "correct": True, "why": "w"}]},
     "exactly one option must be correct"),
    ({"id": "softmax.x", "tier": "basic", "kind": "choice", "prompt": "p",
      "options": [{"text": "a", "correct": True, "why": "w"}, {"text": "b"}]}, "why"),
    ({"id": "softmax.x", "tier": "basic", "kind": "numeric", "prompt": "p"}, "needs an answer"),
    ({"id": "softmax.x", "tier": "basic", "kind": "open", "prompt": "p", "model_answer": "m",
      "key_points": ["one"]}, "at least two key_points"),
    ({"id": "softmax.x", "tier": "expert", "kind": "open", "prompt": "p"}, "tier"),
    ({"id": "softmax.x", "tier": "basic", "kind": "numeric", "prompt": "p", "answer": 3,
      "colour": "red"}, "colour"),
    ({"id": "softmax.x", "tier": "basic", "kind": "numeric", "prompt": "p", "answer": 3,
      "tolerance": 0.5, "distractors": [{"value": 3.2, "why": "w"}]}, "within the tolerance"),
])
def test_schema_rejects_malformed_questions(tmp_path, bad, needle):
    p = tmp_path / "bank.yml"
    p.write_text(yaml.safe_dump(_bank_with(bad)))
    with pytest.raises(BankError) as e:
        load_bank(p)
    assert needle in str(e.value) and "questions[0]" in str(e.value)


def test_multi_select_is_accepted_and_scored_as_a_set():
    q = Bank.model_validate(_bank_with(
        {"id": "softmax.x", "tier": "basic", "kind": "choice", "prompt": "p", "multi": True,
         "options": [{"text": "a", "correct": True, "why": "w"}, {"text": "b", "why": "w"},
                     {"text": "c", "correct": True, "why": "w"}]})).questions[0]
    assert q.is_right("c,a") and not q.is_right("a") and not q.is_right("abc")


# ---------------------------------------------------------------- numeric answers recomputed

def _params(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, device="meta", dtype=dtype)


def _glimpse(scales, patch, channels):
    img = torch.zeros(1, channels, patch * 2 ** scales, patch * 2 ** scales)
    c = img.shape[-1] // 2
    crops = [img[..., c - patch * 2 ** s // 2: c + patch * 2 ** s // 2, c - patch * 2 ** s // 2: c + patch * 2 ** s // 2]
             for s in range(scales)]
    return torch.cat([torch.nn.functional.adaptive_avg_pool2d(x, patch).flatten() for x in crops]).numel()


def _flops(L, d):
    from torch.utils.flop_counter import FlopCounterMode

    q = _meta(1, L, d)
    with FlopCounterMode(display=False) as f:
        (q @ q.transpose(-1, -2)) @ q
    return f.get_total_flops()


def _sacrebleu(hypothesis, reference):
    import sacrebleu

    return sacrebleu.sentence_bleu(hypothesis, [reference])


ORACLES = {
    "weighted_sum": lambda weights, values: (torch.tensor(weights, dtype=torch.float64)
                                             @ torch.tensor(values, dtype=torch.float64)).item(),
    "nadaraya_watson": lambda query, keys, values, bandwidth: (torch.softmax(
        -(query - torch.tensor(keys, dtype=torch.float64)) ** 2 / (2 * bandwidth ** 2), 0)
        @ torch.tensor(values, dtype=torch.float64)).item(),
    "masked_pool": lambda scores, values, mask: (torch.softmax(torch.tensor(scores, dtype=torch.float64)
        .masked_fill(~torch.tensor(mask), float("-inf")), 0) @ torch.tensor(values, dtype=torch.float64)).item(),
    "uniform_entropy": lambda n: torch.distributions.Categorical(probs=torch.ones(n) / n).entropy().item(),
    "softmax_entry": lambda logits, index: torch.softmax(torch.tensor(logits, dtype=torch.float64), 0)[index].item(),
    "log_max_float": lambda dtype: math.log(torch.finfo(getattr(torch, dtype)).max),
    "inverse_sqrt": lambda d_k: 1 / math.sqrt(d_k),
    "sqrt": lambda x: math.sqrt(x),
    "divide": lambda a, b: a / b,
    "product": lambda factors: math.prod(factors),
    "additive_params": lambda d_q, d_k, d_a: _params(torch.nn.Linear(d_q, d_a, bias=False),
                                                     torch.nn.Linear(d_k, d_a, bias=False),
                                                     torch.nn.Linear(d_a, 1, bias=False)),
    "score_count": lambda B, H, Lq, Lk: (_meta(B, H, Lq, 8) @ _meta(B, H, 8, Lk)).numel(),
    "sdpa_flops": _flops,
    "causal_pairs": lambda L: int(torch.tril(torch.ones(L, L)).sum()),
    "qkv_params": lambda d, d_k: _params(*[torch.nn.Linear(d, d_k, bias=False) for _ in range(3)]),
    "kv_cache_bytes": lambda layers, E, L, B, bytes: (lambda t: t.numel() * t.element_size())(
        _meta(layers, 2, B, L, E, dtype={2: torch.float16, 4: torch.float32}[bytes])),
    "mha_params": lambda E, H, bias: _params(torch.nn.MultiheadAttention(E, H, bias=bias)),
    "mqa_kv_params": lambda E, H: _params(torch.nn.Linear(E, E // H, bias=False), torch.nn.Linear(E, E // H, bias=False)),
    "gru_cell_params": lambda input_size, hidden_size: _params(torch.nn.GRUCell(input_size, hidden_size)),
    "lstm_cell_params": lambda input_size, hidden_size: _params(torch.nn.LSTMCell(input_size, hidden_size)),
    "glimpse_size": _glimpse,
    "bleu_precision": lambda hypothesis, reference, n: _sacrebleu(hypothesis, reference).precisions[n - 1] / 100,
    "brevity_penalty": lambda hypothesis, reference: _sacrebleu(hypothesis, reference).bp,
    "san_layer_params": lambda d, k: _params(torch.nn.Linear(d, k, bias=False), torch.nn.Linear(d, k),
                                             torch.nn.Linear(k, 1)),
    "vqa_accuracy": lambda matches: min(matches / 3, 1.0),
}


@pytest.mark.parametrize("q", [q for q in NUMERIC if q.recompute], ids=lambda q: q.id)
def test_numeric_answer_recomputed(q):
    args = dict(q.recompute)
    fn = ORACLES[args.pop("formula")]
    got = fn(**args)
    assert abs(got - q.answer) <= q.tolerance + 1e-9 * abs(q.answer), f"{q.id}: bank says {q.answer}, oracle gives {got}"
    for d in q.distractors:
        assert abs(got - d.value) > q.tolerance, f"{q.id}: distractor {d.value} is right"


def test_parameter_counts_and_most_numerics_are_recomputed():
    counts = [q for q in NUMERIC if "parameters" in q.prompt]
    assert counts and all(q.recompute for q in counts), [q.id for q in counts if not q.recompute]
    assert sum(bool(q.recompute) for q in NUMERIC) >= 0.8 * len(NUMERIC)


def test_list_json_prints_the_whole_bank(home):
    out = subprocess.run([sys.executable, "-m", "grader", "quiz", "--list", "--json"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    data = json.loads(out)
    assert len(data) == len(QS)
    for d in data:
        assert {"id", "topic", "tier", "kind"} <= set(d) and d["kind"] in ("choice", "numeric", "open")


# ---------------------------------------------------------------- piped terminal quiz

def right_lines(q) -> list[str]:
    if q.kind == "choice":
        return [",".join(q.correct_letters)]
    if q.kind == "numeric":
        return [repr(q.answer)]
    return ["my honest attempt", str(len(q.key_points))]


def wrong_lines(q) -> list[str]:
    if q.kind == "choice":
        return [next(l for l in q.letters if l not in q.correct_letters)]
    if q.kind == "numeric":
        return [repr(q.answer + 10 * (q.tolerance + 1) + 7)]
    return ["no idea", "0"]


def invalid_lines(q) -> list[str]:
    """Answers that must be asked again: empty, out of range, not a number."""
    if q.kind == "choice":
        return ["", "z", "7"]
    if q.kind == "numeric":
        return ["", "lots"]
    return [""]


def _quiz(args, stdin, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADER_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "grader", "quiz", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_piped_quiz_gives_the_expected_score_and_brings_wrong_answers_back_first(home):
    pool = [q for q in QS if q.topic == "softmax"]
    asked = quiz_mod.order(pool, seed=3, record={})[:6]
    plan = [True, False, True, True, False, True]
    lines = []
    for q, ok in zip(asked, plan):
        lines += invalid_lines(q) + (right_lines(q) if ok else wrong_lines(q))
    r = _quiz(["--topic", "softmax", "--count", "6", "--seed", "3"], "\n".join(lines) + "\n", home)
    assert r.returncode == 0, r.stderr
    assert "Score: 4/6 (67%)" in r.stdout, r.stdout[-2000:]
    assert r.stdout.count("Please ") >= sum(len(invalid_lines(q)) for q in asked)
    saved = json.loads((home / "progress.json").read_text())["quiz"]
    assert {k: v["last_right"] for k, v in saved.items()} == {q.id: ok for q, ok in zip(asked, plan)}
    # the two wrong ones come first next time, whatever the seed
    again = _quiz(["--topic", "softmax", "--count", "2", "--seed", "99"], "a\n1\n" * 3, home)
    wrong = {q.id for q, ok in zip(asked, plan) if not ok}
    heads = re.findall(r"Question \d/2.*\n(.+)", again.stdout)
    firsts = [q.id for q in pool if any(" ".join(q.prompt.split())[:40] in h for h in heads)]
    assert set(firsts) == wrong, again.stdout


def test_piped_quiz_stops_cleanly_at_end_of_input(home):
    r = _quiz(["--topic", "vqa", "--tier", "basic", "--count", "3"], "", home)
    assert r.returncode == 0 and "input ended" in r.stdout


def test_unknown_topic_is_an_error(home):
    r = _quiz(["--topic", "nope"], "", home)
    assert r.returncode == 2 and "unknown topic" in r.stderr


def _simulate_mock(answer_right, seed, count):
    """Run the mock interview in-process, answering right or wrong by a rule; return the
    questions asked and the lines that were typed."""
    asked, typed = [], []
    orig = quiz_mod.show_question

    def show(console, q, i, n):
        asked.append(q)
        pending.extend(right_lines(q) if answer_right(q, len(asked)) else wrong_lines(q))
        orig(console, q, i, n)

    pending: list[str] = []

    def read():
        if not pending:
            return None
        typed.append(pending.pop(0))
        return typed[-1]

    quiz_mod.show_question = show
    try:
        s = quiz_mod.run_mock_interview(QS, Console(file=open(os.devnull, "w")), read, count=count,
                                        minutes=30, seed=seed)
    finally:
        quiz_mod.show_question = orig
    return asked, typed, s


def test_mock_interview_rises_in_tier_when_answers_are_right(home, monkeypatch):
    asked, typed, s = _simulate_mock(lambda q, i: True, seed=5, count=6)
    assert [q.tier for q in asked] == ["basic", "basic", "intermediate", "intermediate", "advanced", "advanced"]
    assert len({q.topic for q in asked}) >= 2, "a mixed set draws on several topics"
    # the same answers piped into the real command give the same report
    (home / "progress.json").unlink()
    r = _quiz(["--mock-interview", "--count", "6", "--seed", "5"], "\n".join(typed) + "\n", home)
    assert r.returncode == 0, r.stderr
    assert "Highest tier reached: advanced" in r.stdout and "Score: 6/6" in r.stdout, r.stdout[-1500:]


def test_mock_interview_stays_basic_when_answers_are_wrong(home):
    asked, typed, s = _simulate_mock(lambda q, i: False, seed=1, count=4)
    assert {q.tier for q in asked} == {"basic"} and s.score == 0
    (home / "progress.json").unlink()  # the simulation saved its answers; start afresh
    r = _quiz(["--mock-interview", "--count", "4", "--seed", "1"], "\n".join(typed) + "\n", home)
    assert "Highest tier reached: basic" in r.stdout and "Score: 0/4" in r.stdout


def test_mock_interview_stops_when_time_is_up(home):
    ticks = iter(range(0, 10_000, 100))  # every clock reading is 100 s later
    qs = [q for q in QS if q.kind == "choice"]
    s = quiz_mod.run_mock_interview(qs, Console(file=open(os.devnull, "w")), lambda: "a", count=20,
                                    minutes=5, seed=0, clock=lambda: float(next(ticks)))
    assert s.stopped == "time is up" and 0 < len(s.outcomes) < 20


# ---------------------------------------------------------------- quiz notebooks

def test_quiz_notebooks_are_generated_from_the_bank():
    """The bank is the source: each committed quiz notebook equals what the generator makes
    (regenerate with `python -m grader.selfstudy.quiznb`)."""
    import nbformat

    from grader.selfstudy.quiznb import points, quiz_notebook

    for topic, b in banks().items():
        path = ROOT / "solutions" / topic / "quiz.ipynb"
        committed = nbformat.read(path, as_version=4)
        fresh = quiz_notebook(b)
        assert [(c.cell_type, c.source, c.metadata) for c in committed.cells] == \
               [(c.cell_type, c.source, c.metadata) for c in fresh.cells], f"{path} is stale"
        total = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in committed.cells
                    if c.metadata.get("nbgrader", {}).get("grade"))
        assert total == points(b)
        asked = [q for q in b.questions if q.notebook]
        assert {q.kind for q in asked} == {"choice", "numeric", "open"}, topic


def test_course_quiz_points_match_the_notebooks_when_listed():
    from grader.selfstudy.quiznb import points

    for a in load_course().assignments:
        if "quiz" in a.notebooks:
            assert a.notebooks["quiz"].points == points(banks()[a.id]), a.id
