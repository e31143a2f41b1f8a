"""The terminal quiz and the mock interview, driven by any line reader (a terminal or a
pipe), so tests run them for real on piped answers.

Scoring: a choice or numeric answer scores 1 when right, else 0.  An open question is
self-assessed: after the model answer and its key points are shown, the learner says how
many key points their answer covered, and scores that fraction; it counts as right when
they covered at least half.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from . import progress
from .bank import TIERS, Question

Reader = Callable[[], "str | None"]  # one line of input, or None at end of input


class EndOfInput(Exception):
    """The answers ran out (end of the piped input, or Ctrl-D)."""


@dataclass
class Outcome:
    """One answered question: what was typed, its score (0..1), and seconds taken."""

    question: Question
    answer: str
    score: float
    right: bool
    seconds: float = 0.0


@dataclass
class Session:
    """The answers of one quiz or mock interview."""

    outcomes: list[Outcome] = field(default_factory=list)
    stopped: str = ""  # why the session ended early ("input ended", "time is up")

    @property
    def score(self) -> float:
        """Sum of the question scores."""
        return sum(o.score for o in self.outcomes)


def order(qs: list[Question], seed: int | None, record: dict | None = None) -> list[Question]:
    """Questions answered wrong last time first, then unseen ones, then those answered right
    (least recently first); shuffled within each group by ``seed``."""
    record = progress.load()["quiz"] if record is None else record
    rng = random.Random(seed)
    wrong = [q for q in qs if record.get(q.id, {}).get("last_right") is False]
    unseen = [q for q in qs if q.id not in record]
    right = [q for q in qs if record.get(q.id, {}).get("last_right") is True]
    for g in (wrong, unseen, right):
        rng.shuffle(g)
    right.sort(key=lambda q: record[q.id].get("updated") or 0)
    return wrong + unseen + right


def _ask_line(console: Console, read: Reader, prompt: str) -> str:
    console.print(f"[bold]{escape(prompt)}[/bold] ", end="")
    line = read()
    if line is None:
        console.print()
        raise EndOfInput()
    return line.strip()


def _parse_number(text: str) -> float | None:
    t = text.replace(",", "").replace("_", "").replace(" ", "")
    try:
        if "/" in t:
            a, b = t.split("/", 1)
            return float(a) / float(b)
        return float(t)
    except (ValueError, ZeroDivisionError):
        return None


def show_question(console: Console, q: Question, number: int, total: int | None) -> None:
    """Print question ``q`` (prompt, code, lettered options) as number ``number`` of ``total``."""
    head = f"Question {number}" + (f"/{total}" if total else "")
    console.rule(f"{head}  [dim]{q.topic} · {q.tier} · {q.kind}[/dim]")
    console.print(escape(q.prompt.strip()))
    if q.code:
        console.print(Syntax(q.code.rstrip("\n"), "python", theme="ansi_dark", line_numbers=False))
    for letter, o in zip(q.letters, q.options):
        console.print(f"  ({letter}) {escape(o.text)}")


def ask(console: Console, read: Reader, q: Question) -> tuple[str, float, bool]:
    """Ask one already shown question until the answer is valid; return
    ``(answer, score, right)`` after printing the feedback.

    Raises:
        EndOfInput: no more input.
    """
    if q.kind == "choice":
        letters = q.letters
        how = "letters, e.g. a,c" if q.multi else f"{letters[0]}-{letters[-1]}"
        while True:
            raw = _ask_line(console, read, f"Your answer ({how}):")
            picked = [c for c in raw.lower() if c.isalpha()]
            if raw and picked and all(c in letters for c in picked) and (q.multi or len(picked) == 1):
                break
            console.print(f"[yellow]Please answer with {'one or more of' if q.multi else 'one of'} "
                          f"{', '.join(letters)}.[/yellow]")
        answer = "".join(sorted(set(picked)))
        right = q.is_right(answer)
        console.print("[green]Right.[/green]" if right else
                      f"[red]Wrong.[/red] The answer is ({', '.join(q.correct_letters)}).")
        for l in answer:
            console.print(f"  ({l}) {escape(q.options[letters.index(l)].why)}")
        for l in q.correct_letters:
            if l not in answer:
                console.print(f"  ({l}) {escape(q.options[letters.index(l)].why)}")
        if q.explanation:
            console.print(f"[dim]{escape(q.explanation)}[/dim]")
        return answer, float(right), right
    if q.kind == "numeric":
        while True:
            raw = _ask_line(console, read, "Your answer (a number):")
            x = _parse_number(raw)
            if x is not None:
                break
            console.print("[yellow]Please answer with a number, e.g. 1050624, 0.75 or 2/3.[/yellow]")
        right = q.is_right(x)
        unit = f" {q.unit}" if q.unit else ""
        tol = f" (within {q.tolerance:g})" if q.tolerance else ""
        console.print("[green]Right.[/green]" if right else
                      f"[red]Wrong.[/red] The answer is {q.right_value()!r}{unit}{tol}.")
        if not right:
            for d in q.distractors:
                if abs(x - d.value) <= max(q.tolerance, 1e-9 * abs(d.value)):
                    console.print(f"  You answered {d.value:g}: {escape(d.why)}")
        if q.explanation:
            console.print(f"[dim]{escape(q.explanation)}[/dim]")
        return raw, float(right), right
    while True:
        raw = _ask_line(console, read, "Your answer (one line):")
        if raw:
            break
        console.print("[yellow]Please write your answer first, then compare it with the key points.[/yellow]")
    console.print("[bold]Model answer:[/bold] " + escape(" ".join(q.model_answer.split())))
    n = len(q.key_points)
    for i, p in enumerate(q.key_points, 1):
        console.print(f"  {i}. {escape(p)}")
    while True:
        got = _ask_line(console, read, f"How many of the {n} key points did your answer cover? (0-{n}):")
        if got.isdigit() and 0 <= int(got) <= n:
            break
        console.print(f"[yellow]Please give a whole number from 0 to {n}.[/yellow]")
    score = int(got) / n
    right = 2 * int(got) >= n
    console.print(f"Self-assessed: {got}/{n} key points.")
    return raw, score, right


def run_quiz(qs: list[Question], console: Console, read: Reader,
             clock: Callable[[], float] = time.monotonic) -> Session:
    """Ask ``qs`` in order, saving each answer to progress; stop early at end of input."""
    session = Session()
    for i, q in enumerate(qs, 1):
        show_question(console, q, i, len(qs))
        t0 = clock()
        try:
            answer, score, right = ask(console, read, q)
        except EndOfInput:
            session.stopped = "input ended"
            break
        progress.record_answer(q.id, right, score)
        session.outcomes.append(Outcome(q, answer, score, right, clock() - t0))
    report(console, session, total=len(qs))
    return session


def report(console: Console, session: Session, total: int) -> None:
    """Print the score by topic and tier, the total, and the questions to review."""
    n = len(session.outcomes)
    if session.stopped:
        console.print(f"[yellow]Stopped after {n} of {total} questions: {session.stopped}.[/yellow]")
    if not n:
        console.print("No questions answered.")
        return
    table = Table(title="Results by topic")
    for col in ("topic", "tier", "answered", "score"):
        table.add_column(col)
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in session.outcomes:
        groups.setdefault((o.question.topic, o.question.tier), []).append(o)
    for (topic, tier), os_ in groups.items():
        table.add_row(topic, tier, str(len(os_)), f"{sum(o.score for o in os_):g}")
    console.print(table)
    console.print(f"Score: {session.score:g}/{n} ({100 * session.score / n:.0f}%)")
    wrong = [o.question.id for o in session.outcomes if not o.right]
    if wrong:
        console.print("To review (asked first next time): " + ", ".join(wrong))


# Per-question time budget in the mock interview, by tier (seconds).
BUDGET = {"basic": 90.0, "intermediate": 150.0, "advanced": 240.0}


def run_mock_interview(qs: list[Question], console: Console, read: Reader, *, count: int,
                       minutes: float, seed: int | None,
                       clock: Callable[[], float] = time.monotonic) -> Session:
    """A timed mixed set that starts at the basic tier, rises one tier after two right
    answers in a row and falls back one after two wrong answers in a row.  Ends after
    ``count`` questions, when the time is up, or at the end of input; then prints a report
    (score by tier, highest tier reached, slow answers, what to review)."""
    ordered = order(qs, seed)
    pools = {t: [q for q in ordered if q.tier == t] for t in TIERS}
    tier, streak, session = 0, 0, Session()
    start = clock()
    limit = minutes * 60.0
    console.print(f"[bold]Mock interview[/bold]: up to {count} questions in {minutes:g} minutes. "
                  "Two right answers in a row move you up a tier.")
    for i in range(1, count + 1):
        if clock() - start >= limit:
            session.stopped = "time is up"
            break
        t = next((k for k in [tier, *range(tier + 1, 3), *range(tier - 1, -1, -1)] if pools[TIERS[k]]), None)
        if t is None:
            session.stopped = "no questions left"
            break
        q = pools[TIERS[t]].pop(0)
        show_question(console, q, i, count)
        left = max(0.0, limit - (clock() - start))
        console.print(f"[dim]{left / 60:.1f} min left · aim for {BUDGET[q.tier]:.0f} s[/dim]")
        t0 = clock()
        try:
            answer, score, right = ask(console, read, q)
        except EndOfInput:
            session.stopped = "input ended"
            break
        progress.record_answer(q.id, right, score)
        session.outcomes.append(Outcome(q, answer, score, right, clock() - t0))
        streak = max(streak, 0) + 1 if right else min(streak, 0) - 1
        if streak >= 2 and tier < 2:
            tier, streak = tier + 1, 0
            console.print(f"[cyan]Moving up to {TIERS[tier]} questions.[/cyan]")
        elif streak <= -2 and tier > 0:
            tier, streak = tier - 1, 0
            console.print(f"[cyan]Back to {TIERS[tier]} questions.[/cyan]")
    mock_report(console, session, total=count, elapsed=clock() - start)
    return session


def mock_report(console: Console, session: Session, total: int, elapsed: float) -> None:
    """Print the mock-interview report: every answer with its time, score per tier, the
    highest tier reached, the total time and score, and the topics to review."""
    console.rule("Mock interview report")
    if session.stopped:
        console.print(f"[yellow]Ended early: {session.stopped}.[/yellow]")
    table = Table()
    for col in ("#", "tier", "topic", "kind", "result", "seconds"):
        table.add_column(col)
    for i, o in enumerate(session.outcomes, 1):
        slow = " (slow)" if o.seconds > BUDGET[o.question.tier] else ""
        result = "right" if o.right else "wrong"
        if o.question.kind == "open":
            result += f" ({o.score:.0%} of key points)"
        table.add_row(str(i), o.question.tier, o.question.topic, o.question.kind, result,
                      f"{o.seconds:.0f}{slow}")
    console.print(table)
    n = len(session.outcomes)
    for t in TIERS:
        os_ = [o for o in session.outcomes if o.question.tier == t]
        if os_:
            console.print(f"  {t}: {sum(o.score for o in os_):g}/{len(os_)}")
    reached = max((TIERS.index(o.question.tier) for o in session.outcomes), default=0)
    console.print(f"Highest tier reached: {TIERS[reached]}")
    console.print(f"Time: {elapsed / 60:.1f} min")
    console.print(f"Score: {session.score:g}/{n}" + (f" ({100 * session.score / n:.0f}%)" if n else ""))
    weak = sorted({o.question.topic for o in session.outcomes if not o.right})
    if weak:
        console.print("Topics to review: " + ", ".join(weak))
