"""Quiz notebooks, generated from the quiz bank: ``solutions/<topic>/quiz.ipynb``.

The bank is the source: questions with a ``notebook:`` entry are asked in the topic's quiz
notebook.  A choice or numeric question becomes an answer cell (the learner assigns the
variable) and an autograded test cell worth 1 point; an open question becomes a manually
graded written answer worth 2 points, followed by a cell that prints the key points to
compare with.  Regenerate after editing a bank::

    python -m grader.selfstudy.quiznb            # every topic
    python -m grader.selfstudy.quiznb softmax    # one topic
"""
from __future__ import annotations

import sys
from pathlib import Path

from grader.authoring import code, md, notebook, save, setup, solution, test, written
from grader.course import ROOT

from .bank import Bank, Question, banks

CHOICE_POINTS, NUMERIC_POINTS, OPEN_POINTS = 1, 1, 2

# One small drawing per topic, of something the quiz asks about (NumPy + matplotlib only).
FIGURES = {
    "weighted-sums": '''
keys, values = np.array([-1.0, 0.0, 1.0]), np.array([0.0, 1.0, 4.0])
xs = np.linspace(-2, 2, 200)
fig, ax = plt.subplots(figsize=(6, 3))
for h in [0.2, 1.0, 5.0]:
    logits = -(xs[:, None] - keys[None, :]) ** 2 / (2 * h ** 2)      # (200, 3)
    w = np.exp(logits - logits.max(1, keepdims=True))
    ax.plot(xs, (w / w.sum(1, keepdims=True)) @ values, label=f"bandwidth h = {h}")
ax.scatter(keys, values, color="k", zorder=3, label="(key, value)")
ax.set_xlabel("query"); ax.set_ylabel("pooled value"); ax.legend()
ax.set_title("Nadaraya-Watson pooling: small h -> nearest key, large h -> mean"); plt.show()
''',
    "softmax": '''
x = np.array([0.5, 3.0, 1.0, 7.0, 2.0, 9.0, 4.0])
m, s, ms, ss = -np.inf, 0.0, [], []
for xi in x:                                   # one pass: running max and rescaled sum
    m_new = max(m, xi)
    s = s * np.exp(m - m_new) + np.exp(xi - m_new)
    m = m_new; ms.append(m); ss.append(s)
fig, ax = plt.subplots(1, 2, figsize=(8, 2.8))
ax[0].step(range(len(x)), ms, where="post"); ax[0].plot(x, "o"); ax[0].set_title("logits and running max")
ax[1].plot(ss, "o-"); ax[1].axhline(np.exp(x - x.max()).sum(), ls="--", c="k")
ax[1].set_title("running sum (dashed: two-pass value)"); plt.tight_layout(); plt.show()
''',
    "dot-product-attention": '''
rng = np.random.default_rng(0)
dims = np.array([4, 16, 64, 256, 1024])
stds = [np.std((rng.normal(size=(2000, d)) * rng.normal(size=(2000, d))).sum(1)) for d in dims]
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(dims, stds, "o-", label="std of q.k (measured)")
ax.loglog(dims, np.array(stds) / np.sqrt(dims), "s-", label="std of q.k / sqrt(d_k)")
ax.set_xlabel("d_k"); ax.legend(); ax.set_title("Why scale by 1/sqrt(d_k)"); plt.show()
''',
    "self-attention": '''
L = 6
blocked = np.triu(np.ones((L, L), dtype=bool), k=1)      # True = future, masked
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(~blocked, cmap="Greens")
ax.set_xlabel("key position j"); ax.set_ylabel("query position i")
ax.set_title(f"causal mask: {int((~blocked).sum())} allowed pairs"); plt.show()
''',
    "multi-head-attention": '''
E = 512
heads = np.array([1, 2, 4, 8, 16, 32, 64])
params = 4 * E * E + 4 * E                               # Q, K, V, output projections with biases
fig, ax = plt.subplots(1, 2, figsize=(8, 2.8))
ax[0].semilogx(heads, np.full(len(heads), params), "o-", base=2); ax[0].set_title("parameters vs H (E = 512)")
ax[1].semilogx(heads, E // heads, "o-", base=2); ax[1].set_title("head width d_k = E / H")
for a in ax: a.set_xlabel("heads H")
plt.tight_layout(); plt.show()
''',
    "rnn-on-images": '''
from sklearn.datasets import load_digits
img = load_digits().images[0]                             # (8, 8), bundled with scikit-learn
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(img, cmap="gray_r")
for t in range(8):
    ax.annotate(f"t={t + 1}", (7.6, t), xytext=(9, t), va="center", annotation_clip=False,
                arrowprops=dict(arrowstyle="->"))
ax.set_title("one row per time step: 8 steps of 8 pixels"); plt.show()
''',
    "image-captioning": '''
r = 8                                                     # reference length
c = np.arange(1, 17)                                      # candidate lengths
bp = np.where(c >= r, 1.0, np.exp(1 - r / c))
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(c, bp, "o-"); ax.axvline(r, ls="--", c="k")
ax.set_xlabel("candidate length c"); ax.set_ylabel("brevity penalty")
ax.set_title("BLEU brevity penalty, reference length 8"); plt.show()
''',
    "vqa": '''
n = np.arange(0, 11)                                      # humans (of 10) who gave the answer
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(n, np.minimum(n / 3, 1))
ax.set_xlabel("matching human answers"); ax.set_ylabel("VQA accuracy")
ax.set_title("min(#matches / 3, 1)"); plt.show()
''',
}


def _question_md(i: int, q: Question) -> str:
    parts = [f"## Question {i} · {q.tier} · {'multiple choice' if q.kind == 'choice' else q.kind}", "",
             " ".join(q.prompt.split())]
    if q.code:
        parts += ["", "```python", q.code.rstrip("\n"), "```"]
    if q.kind == "choice":
        parts += [""] + [f"* **({l})** {o.text}" for l, o in zip(q.letters, q.options)]
        parts += ["", f'Set `{q.notebook}` to the letter of your answer, as a string, e.g. '
                      f'`{q.notebook} = "{q.letters[0]}"`.']
    elif q.kind == "numeric":
        unit = f" (in {q.unit})" if q.unit else ""
        tol = f"; answers within {q.tolerance:g} count" if q.tolerance else "; exact"
        parts += ["", f"Set `{q.notebook}` to a number{unit}{tol}."]
    else:
        parts += ["", "*Open question, graded by hand.* Write your answer in the cell below, then run "
                      "the cell after it to compare with the key points a strong answer hits."]
    return "\n".join(parts)


def points(bank: Bank) -> float:
    """Total points of the topic's quiz notebook (what course.yml must say)."""
    pts = {"choice": CHOICE_POINTS, "numeric": NUMERIC_POINTS, "open": OPEN_POINTS}
    return float(sum(pts[q.kind] for q in bank.questions if q.notebook))


def quiz_notebook(bank: Bank):
    """The instructor notebook of ``bank``'s quiz, with the answers imported from the bank."""
    from grader.specs.quizzes import spec_id

    cells = [
        md(f"# {bank.title}: interview quiz\n\n{bank.intro.strip()}\n\n"
           "**How this works.** Each question sets one variable. The cell after it checks your "
           "answer and, when it is wrong, explains why that answer is tempting but wrong. "
           "Stuck? `hint(\"<id>\")` gives progressive hints; `solution(\"<id>\")` shows the "
           "answer where the solutions are installed. The open question is graded by hand."),
        setup("import numpy as np\nimport matplotlib.pyplot as plt\nfrom grader.selfstudy import model_answer"),
    ]
    i = 0
    for q in bank.questions:
        if not q.notebook:
            continue
        i += 1
        cells.append(md(_question_md(i, q)))
        if q.kind == "open":
            cells.append(written(f"quiz-{q.slug}", points=OPEN_POINTS))
            cells.append(code(f'model_answer("{q.id}")'))
            continue
        example = f'{q.notebook} = "{q.letters[0]}"' if q.kind == "choice" else f"{q.notebook} = 0"
        cells.append(solution(f"quiz-{q.slug}-answer", source=(
            f"# Your answer, e.g. {example}\n### BEGIN SOLUTION\n"
            f"{q.notebook} = {q.right_value()!r}  # the bank's answer, written by grader.selfstudy.quiznb\n"
            f"### END SOLUTION")))
        cells.append(test(spec_id(q), entry=q.notebook,
                          points=CHOICE_POINTS if q.kind == "choice" else NUMERIC_POINTS,
                          grade_id=f"quiz-{q.slug}"))
    cells.append(md("## A picture to remember\n\nOne of the quiz's ideas, computed and drawn."))
    cells.append(code(FIGURES[bank.topic]))
    nb = notebook(cells)
    for k, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same file
        cell.id = f"quiz-{k:03d}"
    return nb


def write(topics: list[str] | None = None, root: Path = ROOT) -> list[Path]:
    """Write ``solutions/<topic>/quiz.ipynb`` for ``topics`` (default: every bank)."""
    out = []
    for topic, bank in banks(root).items():
        if topics and topic not in topics:
            continue
        path = root / "solutions" / topic / "quiz.ipynb"
        save(quiz_notebook(bank), path)
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write(sys.argv[1:] or None):
        print("wrote", p.relative_to(ROOT))
