"""Red team: submissions that attack the grader.  Each has a wrong answer plus an attack;
each must earn 0 and be flagged, while honest students in the same run keep full marks and
a wrong student graded after every attacker still earns 0.

All attacks target softmax/basic: the attack replaces the solution cell's source."""
import csv
from pathlib import Path

import nbformat
import pytest

from grader.course import ROOT
from grader.demo import completed
from grader.grading.pipeline import autograde

WRONG = "def softmax(x, axis=-1):\n    return x\n"

ATTACKS = {
    # 1. patching comparison / assertion helpers
    "patch-np-testing": "import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None\n" + WRONG,
    "patch-np-allclose": "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.isclose = lambda a, b, **k: a == a\n" + WRONG,
    "patch-torch-testing": "import torch\ntorch.testing.assert_close = lambda *a, **k: None\n" + WRONG,
    "patch-check-library": "import grader.checks as gc\ngc.check = lambda *a, **k: None\nimport grader.checks.compare as cc\ncc.compare = lambda *a, **k: None\n" + WRONG,
    "patch-builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.AssertionError = type('X', (Exception,), {})\n" + WRONG,
    # 2. rewriting or skipping later cells through IPython
    "ipython-events": "get_ipython().events.register('pre_run_cell', lambda *a: None)\n" + WRONG,
    "ipython-run-cell": "ip = get_ipython()\nip.run_cell = lambda *a, **k: None\n" + WRONG,
    "ipython-transformer": "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n" + WRONG,
    "settrace-skip": "import sys\nsys.settrace(lambda *a: None)\n" + WRONG,
    # 3. objects that lie
    "lying-eq": "class Yes:\n    def __eq__(self, o): return True\n    __array_priority__ = 1000\ndef softmax(x, axis=-1):\n    return Yes()\n",
    "ndarray-subclass": "import numpy as np\nclass A(np.ndarray):\n    def __eq__(self, o): return np.ones_like(np.asarray(o), bool)\n    def __array_ufunc__(self, *a, **k): return np.zeros(1)\ndef softmax(x, axis=-1):\n    return np.zeros_like(x).view(A)\n",
    "array-protocol": "class Fake:\n    def __array__(self, dtype=None, copy=None):\n        import numpy as np; return np.zeros(3)\ndef softmax(x, axis=-1):\n    return Fake()\n",
    "pickle-reduce": "import os\nclass Evil:\n    def __reduce__(self): return (os.system, ('touch /tmp/pwned',))\ndef softmax(x, axis=-1):\n    return Evil()\n",
    "object-array": "import numpy as np\ndef softmax(x, axis=-1):\n    return np.array([lambda: 1] * x.size, dtype=object)\n",
    # 4. killing or hanging the kernel or its parent
    "kill-parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + WRONG,
    "os-exit-in-function": "import os\ndef softmax(x, axis=-1):\n    os._exit(0)\n",
    "infinite-loop": "def softmax(x, axis=-1):\n    while True:\n        pass\n",
    "sleep-forever": "import time\ntime.sleep(10**6)\n" + WRONG,
    "fork-bomb": "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        break\n" + WRONG,
    "memory-bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(10**9))\n" + WRONG,
    "sys-exit": "import sys\n" + WRONG + "sys.exit(0)\n",
    # 5. reading references / writing where it must not
    "read-solutions": "src = open('/work/main/solutions/kernels/softmax.py').read()\nexec(src)\n",
    "stack-frames": "import inspect\ndef softmax(x, axis=-1):\n    for f in inspect.stack():\n        ref = f.frame.f_locals.get('ref')\n        if ref: return ref(x, axis)\n    return x\n",
    "gc-objects": "import gc\ndef softmax(x, axis=-1):\n    for o in gc.get_objects():\n        if callable(o) and getattr(o, '__module__', '') == 'solutions.kernels.softmax': return o(x, axis)\n    return x\n",
    "write-gradebook": "import sqlite3, glob\nfor db in glob.glob('/**/gradebook.db', recursive=True):\n    sqlite3.connect(db).execute('update grade set auto_score = 100')\n" + WRONG,
    "poison-site-packages": "import numpy\nopen(numpy.__file__.replace('__init__.py', 'evil.py'), 'w').write('x=1')\n" + WRONG,
    "network": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\n" + WRONG,
    # 6. detecting grading mode
    "detect-env": "import os\ngrading = 'NBGRADER_EXECUTION' in os.environ or not os.environ.get('JPY_PARENT_PID')\n" + WRONG,
    # 7. forging output
    "print-all-passed": "print('All tests passed')\nprint('PASSED softmax.stable: all 10 cases agree')\n" + WRONG,
    "partial-credit-number": "from IPython.display import display\ndisplay(2.0)\n" + WRONG,
}


def _with_cell(source: str):
    """The released notebook (every exercise unanswered) with the softmax cell replaced."""
    nb = nbformat.read(ROOT / "exercises" / "softmax" / "basic.ipynb", as_version=4)
    for c in nb.cells:
        if c.get("metadata", {}).get("grader", {}).get("kernels") == ["softmax.softmax"]:
            c.source = source
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam")
    sub = root / "submitted"

    def put(student, nb):
        p = sub / student / "softmax" / "basic.ipynb"
        p.parent.mkdir(parents=True)
        nbformat.write(nb, p)

    put("aa-honest", completed("softmax", "basic"))
    for name, src in ATTACKS.items():
        put(f"attack-{name}", _with_cell(src))
    put("zz-honest", completed("softmax", "basic"))
    put("zz-wrong", _with_cell(WRONG))
    report = autograde(sub, root / "out", feedback=False)
    rows: dict[str, list[dict]] = {}
    for r in csv.DictReader(open(root / "out" / "grades.csv")):
        if r["notebook_id"] == "basic":
            rows.setdefault(r["student_id"], []).append(r)
    return report, rows


def test_at_least_25_attacks_across_all_classes():
    assert len(ATTACKS) >= 25


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_earns_zero_and_is_flagged(graded, name):
    _, rows = graded
    mine = rows[f"attack-{name}"]
    assert sum(float(r["score"]) for r in mine) == 0.0, mine
    assert all(r["flags"] for r in mine), f"attack {name} was not flagged: {mine}"


def test_honest_students_keep_full_marks_and_wrong_student_after_attackers_gets_zero(graded):
    report, rows = graded
    for s in ("aa-honest", "zz-honest"):
        assert all(float(r["score"]) == float(r["max_score"]) > 0 for r in rows[s]), rows[s]
        assert all(r["flags"] == "" for r in rows[s])
    assert sum(float(r["score"]) for r in rows["zz-wrong"]) == 0.0
    assert not report.failed, report.failed
    assert not Path("/tmp/pwned").exists()
