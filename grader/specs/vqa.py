"""Specs of the vqa topic: region vectors and one stacked-attention layer (basic), the LSTM
question encoder and K stacked layers (intermediate), the attention mass on the queried
object and a trained stacked attention network on held-out Sort-of-CLEVR scenes (advanced)."""
import numpy as np

from grader.checks import case, spec
from grader.data.sort_of_clevr import NON_RELATIONAL, make_dataset, region_features

DTYPES = (np.float64, np.float32)


def _san_weights(r, K, k, d, dtype):
    """Weights of K attention layers scaled so the attention logits stay O(1)."""
    lead = (K,) if K else ()
    return ((r.normal(size=lead + (k, d)) / np.sqrt(d)).astype(dtype),
            (r.normal(size=lead + (k, d)) / np.sqrt(d)).astype(dtype),
            (r.normal(size=lead + (k,)) * 0.5).astype(dtype),
            (r.normal(size=lead + (k,)) * 2 / np.sqrt(k)).astype(dtype),
            np.asarray(r.normal(size=lead) * 0.5, dtype=dtype))


# --- basic -------------------------------------------------------------------------------

@spec("vqa.regions", entry="regions_from_feature_map", kernel="vqa.regions_from_feature_map",
      framework="torch",
      mutants=["vqa.regions_view_not_permute", "vqa.regions_column_major"],
      hints=["The output has one row per grid cell and one column per channel: (B, H*W, d).",
             "Flatten the two grid axes first, keeping channels where they are: (B, d, H*W). "
             "Only then move the channel axis last.",
             "return fmap.reshape(B, d, H * W).transpose(1, 2)"])
def regions(t):
    """(B, d, H, W) feature maps to (B, H*W, d) region vectors in row-major cell order:
    random sizes (square and non-square grids), float64 and float32, and a 1x1 grid."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        B, d, H, W = (int(x) for x in r.integers(1, 5, size=4))
        d, H, W = d + 1, H + 1, W + 1
        yield case(f"random map (B={B}, d={d}, H={H}, W={W}), {np.dtype(DTYPES[i % 2]).name}",
                   r.normal(size=(B, d, H, W)).astype(DTYPES[i % 2]))
    yield case("2 x 3 grid, 3 channels", np.arange(2 * 3 * 2 * 3, dtype=np.float64).reshape(2, 3, 2, 3))
    yield case("a 1 x 1 grid", t.rng("one-cell").normal(size=(2, 4, 1, 1)))
    if t.hidden:
        r = t.rng("hidden-14x14")
        yield case("SAN-sized map (1, 8, 14, 14), float32", r.normal(size=(1, 8, 14, 14)).astype(np.float32))


@spec("vqa.san_layer", entry="san_layer", kernel="vqa.san_layer", framework="torch",
      mutants=["vqa.san_no_residual", "vqa.san_softmax_over_batch", "vqa.san_no_tanh",
               "vqa.san_swapped_projections", "vqa.san_no_bias"],
      hints=["Three steps: scores for every region, a softmax over the regions, a weighted sum "
             "of the region vectors.  Return the refined query and the weights.",
             "v @ W_I.T is (B, R, k); u @ W_Q.T + b_A is (B, k): add a region axis to the "
             "second one with [:, None, :] so it broadcasts over the R regions.",
             "h = tanh(v @ W_I.T + (u @ W_Q.T + b_A)[:, None, :]); p = softmax(h @ W_P + b_P, "
             "dim=-1); return (p[:, :, None] * v).sum(1) + u, p"])
def san_layer(t):
    """One SAN attention layer (Yang et al. 2016, eqs. 15-18): refined query and attention
    weights on random sizes with O(1) logits, float64 and float32, one region, one example."""
    for i in range(5):
        r = t.rng(f"random-{i}")
        B, R, d, k = int(r.integers(2, 5)), int(r.integers(3, 9)), int(r.integers(2, 7)), int(r.integers(2, 7))
        dt = DTYPES[i % 2]
        yield case(f"random (B={B}, R={R}, d={d}, k={k}), {np.dtype(dt).name}",
                   r.normal(size=(B, R, d)).astype(dt), r.normal(size=(B, d)).astype(dt),
                   *_san_weights(r, 0, k, d, dt))
    r = t.rng("one-region")
    yield case("a single region (its weight must be 1)", r.normal(size=(3, 1, 4)), r.normal(size=(3, 4)),
               *_san_weights(r, 0, 5, 4, np.float64))
    if t.hidden:
        r = t.rng("hidden-batch-1")
        yield case("one example, 16 regions", r.normal(size=(1, 16, 6)), r.normal(size=(1, 6)),
                   *_san_weights(r, 0, 8, 6, np.float64))
        r = t.rng("hidden-large")
        yield case("B=8, R=49, d=k=16, float32", r.normal(size=(8, 49, 16)).astype(np.float32),
                   r.normal(size=(8, 16)).astype(np.float32), *_san_weights(r, 0, 16, 16, np.float32))


# --- intermediate ------------------------------------------------------------------------

def _lstm_case(r, B, L, V, e, d, dtype, lengths=None):
    if lengths is None:
        lengths = r.integers(1, L + 1, size=B)
        lengths[0], lengths[-1] = L, max(2, L - 2)  # one full question, one padded
    lengths = np.asarray(lengths)
    tokens = r.integers(1, V, size=(B, L))
    tokens[np.arange(L)[None, :] >= lengths[:, None]] = 0  # right padding
    s = 0.6
    return (tokens.astype(np.int64), np.asarray(lengths, dtype=np.int64),
            r.normal(size=(V, e)).astype(dtype),
            (r.normal(size=(4 * d, e)) * s).astype(dtype), (r.normal(size=(4 * d, d)) * s).astype(dtype),
            (r.normal(size=4 * d) * 0.3).astype(dtype), (r.normal(size=4 * d) * 0.3).astype(dtype))


@spec("vqa.encode_question", entry="encode_question", kernel="vqa.encode_question",
      framework="torch",
      mutants=["vqa.lstm_state_after_padding", "vqa.lstm_gate_order", "vqa.lstm_no_cell_tanh",
               "vqa.lstm_off_by_one"],
      hints=["Embed with E[tokens], then loop over the L positions updating (h, c); keep every "
             "h_t in a list.",
             "torch.nn.LSTM's gates are stacked as (i, f, g, o): split the 4d pre-activations "
             "with .chunk(4, dim=1) in that order.  Padded questions must be read before the "
             "padding.",
             "c = sigmoid(f) * c + sigmoid(i) * tanh(g); h = sigmoid(o) * tanh(c); at the end "
             "return torch.stack(states, 1)[torch.arange(B), lengths - 1]"])
def encode_question(t):
    """LSTM question encoder read at each question's true length (compared with the
    reference; tests/topics/test_vqa.py also checks it against torch.nn.LSTM): random
    sizes with padded and full-length questions, float64 and float32, one-word questions."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        B, L = int(r.integers(3, 6)), int(r.integers(4, 9))
        V, e, d = int(r.integers(5, 12)), int(r.integers(2, 6)), int(r.integers(2, 6))
        yield case(f"random (B={B}, L={L}, e={e}, d={d}), {np.dtype(DTYPES[i % 2]).name}",
                   *_lstm_case(r, B, L, V, e, d, DTYPES[i % 2]))
    r = t.rng("one-word")
    yield case("one-word questions, L=3", *_lstm_case(r, 2, 3, 6, 3, 4, np.float64, lengths=[1, 1]))
    if t.hidden:
        r = t.rng("hidden-sort-of-clevr")
        yield case("Sort-of-CLEVR-sized (B=6, L=12, V=31, e=8, d=8)",
                   *_lstm_case(r, 6, 12, 31, 8, 8, np.float64))


@spec("vqa.stacked_attention", entry="stacked_attention", kernel="vqa.stacked_attention",
      framework="torch",
      mutants=["vqa.stacked_no_residual", "vqa.stacked_query_not_refined",
               "vqa.stacked_residual_from_question", "vqa.stacked_shared_weights"],
      hints=["Start from u = q and call san_layer once per layer k with that layer's weights "
             "W_I[k], W_Q[k], b_A[k], W_P[k], b_P[k].",
             "Each layer must attend with the query the previous layer returned, and its output "
             "already includes the residual: u = v_tilde + u.  Stack the K maps on axis 1.",
             "u, maps = q, []; for k in range(W_I.shape[0]): u, p = san_layer(v, u, W_I[k], "
             "W_Q[k], b_A[k], W_P[k], b_P[k]); maps.append(p); return u, torch.stack(maps, 1)"])
def stacked_attention(t):
    """K stacked attention layers (Yang et al. 2016, section 3.3): final query and every
    layer's map on random sizes with K = 2 and 3, float64 and float32, and K = 1."""
    for i in range(4):
        r = t.rng(f"random-{i}")
        K, B, R = 2 + i % 2, int(r.integers(2, 4)), int(r.integers(3, 8))
        d, k = int(r.integers(2, 6)), int(r.integers(2, 6))
        dt = DTYPES[(i // 2) % 2]
        yield case(f"random K={K} (B={B}, R={R}, d={d}, k={k}), {np.dtype(dt).name}",
                   r.normal(size=(B, R, d)).astype(dt), r.normal(size=(B, d)).astype(dt),
                   *_san_weights(r, K, k, d, dt))
    r = t.rng("one-layer")
    yield case("K=1 (one san_layer)", r.normal(size=(2, 5, 3)), r.normal(size=(2, 3)),
               *_san_weights(r, 1, 4, 3, np.float64))
    if t.hidden:
        r = t.rng("hidden-deep")
        yield case("K=4, B=4, R=16, d=k=8", r.normal(size=(4, 16, 8)), r.normal(size=(4, 8)),
                   *_san_weights(r, 4, 8, 8, np.float64))


# --- advanced ----------------------------------------------------------------------------

def _mass_case(r, G, s, dtype):
    """Six boxes per example (one inside a cell, one straddling a column border, one over a
    corner, one ending exactly on a border...) and a random target."""
    size, B, n = G * s, 6, 4
    boxes = np.zeros((B, n, 4))
    for b in range(B):
        for j in range(n):
            kind = (b + j) % 4
            col, row = r.integers(0, G - 1, size=2)
            if kind == 0:  # strictly inside one cell
                x0, y0 = col * s + r.uniform(0.1, 0.4) * s, row * s + r.uniform(0.1, 0.4) * s
                x1, y1 = x0 + 0.4 * s, y0 + 0.4 * s
            elif kind == 1:  # across the border between two columns
                x0, y0 = (col + 1) * s - 0.3 * s, row * s + 0.2 * s
                x1, y1 = x0 + 0.6 * s, y0 + 0.5 * s
            elif kind == 2:  # over the corner of four cells
                x0, y0 = (col + 1) * s - 0.25 * s, (row + 1) * s - 0.35 * s
                x1, y1 = x0 + 0.5 * s, y0 + 0.6 * s
            else:  # touching borders: ends exactly where the next column and row start
                x0, y0 = col * s + 0.3 * s, row * s + 0.2 * s
                x1, y1 = (col + 1) * s, (row + 1) * s
            boxes[b, j] = (x0, y0, x1, y1)
    logits = r.normal(size=(B, G * G)) * 1.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    target = r.integers(0, n, size=B)
    target[:2] = (1, 3)  # never only object 0
    return p.astype(dtype), boxes.astype(dtype), target.astype(np.int64), size


@spec("vqa.attention_mass", entry="attention_mass", kernel="vqa.attention_mass", framework="torch",
      mutants=["vqa.mass_xy_swapped", "vqa.mass_closed_intervals", "vqa.mass_first_object",
               "vqa.mass_centre_cell_only"],
      hints=["Find the target's box for each example, decide which of the G x G cells it "
             "overlaps, and add up p over those cells.",
             "Cell (row, col) spans x in [col*s, (col+1)*s) and y in [row*s, (row+1)*s).  A box "
             "overlaps a column when x0 < right edge and x1 > left edge (strict: touching is "
             "not overlapping).  Rows come from y, and the cell index is row * G + col.",
             "start = arange(G) * s; cols = (x0 < start + s) & (x1 > start); rows likewise "
             "with y; covered = rows[:, :, None] & cols[:, None, :]; "
             "return (p * covered.reshape(B, -1)).sum(-1)"])
def attention_mass(t):
    """Attention mass on the target object's box: boxes inside one cell, across borders,
    over corners and exactly touching borders, grids of 2-4 cells a side, float64 and
    float32."""
    for i, (G, s) in enumerate([(3, 4.0), (4, 8.0), (2, 5.0), (4, 4.0)]):
        r = t.rng(f"random-{i}")
        yield case(f"{G}x{G} grid of {s:g}-pixel cells, {np.dtype(DTYPES[i % 2]).name}",
                   *_mass_case(r, G, s, DTYPES[i % 2]))
    p = np.full((1, 4), 0.25)
    yield case("uniform attention, a box filling one cell of a 2x2 grid", p,
               np.array([[[0.0, 0.0, 4.0, 4.0], [4.0, 4.0, 8.0, 8.0]]]), np.array([1]), 8)
    if t.hidden:
        r = t.rng("hidden-sort-of-clevr")
        d = make_dataset(8, int(r.integers(2 ** 31)), qtypes=NON_RELATIONAL)
        logits = r.normal(size=(8, 16)) * 1.5
        yield case("Sort-of-CLEVR boxes, 4x4 grid of 8-pixel cells",
                   np.exp(logits) / np.exp(logits).sum(1, keepdims=True), d["boxes"], d["target"], 32)


# Training exercise.  Held-out scenes come from the grading seed; thresholds were measured
# over >= 5 seeds of the reference (see the advanced notebook's closing note).
TRAIN_SIZES = {"visible": (1500, 300), "hidden": (3000, 1000)}
# Measured (see the advanced notebook's closing note): the reference scores >= 0.996 accuracy
# and >= 0.81 mass on the hidden size (8 seeds), >= 0.73 / 0.28 on the visible size (6 seeds);
# attention replaced by a uniform average scores 0.55-0.57 and 0.0625.  The visible check
# is a quick smoke test; the hidden thresholds carry the margin.
THRESHOLDS = {"visible": (0.60, 0.15), "hidden": (0.90, 0.30)}  # (accuracy, attention mass)


def judge_vqa(c, output):
    """Accuracy on the held-out answers and mean attention mass on the queried object's cell;
    None when both reach the case's thresholds."""
    answers, cells, (acc_min, mass_min) = c.expect
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        return "fit_predict must return a tuple (answers, attention)"
    pred, attn = (np.asarray(x) for x in output)
    if pred.shape != answers.shape:
        return f"answers: expected shape {answers.shape}, got {pred.shape}"
    if attn.shape != (len(answers), 16):
        return f"attention: expected shape {(len(answers), 16)}, got {attn.shape}"
    if not np.allclose(attn.sum(1), 1, atol=1e-3) or (attn < -1e-6).any():
        return "attention rows must be non-negative and sum to 1 over the 16 regions"
    acc = float((pred == answers).mean())
    mass = float(attn[np.arange(len(cells)), cells].mean())
    if acc < acc_min:
        return (f"held-out accuracy {acc:.3f} is below {acc_min:.2f} (attention mass on the "
                f"queried object {mass:.3f}; a model that ignores the scene scores about 0.5)")
    if mass < mass_min:
        return (f"accuracy {acc:.3f} is fine, but the attention mass on the queried object is "
                f"{mass:.3f} < {mass_min:.2f} (uniform attention gives 1/16 = 0.0625)")
    return None


def _train_case(t, which):
    r = t.rng(f"scenes-{which}")
    n_train, n_test = TRAIN_SIZES[which]
    tr = make_dataset(n_train, int(r.integers(2 ** 31)), qtypes=NON_RELATIONAL)
    te = make_dataset(n_test, int(r.integers(2 ** 31)), qtypes=NON_RELATIONAL)
    cells = te["cells"][np.arange(n_test), te["target"]]
    return case(f"{which}: train on {n_train} scenes, answer {n_test} new ones",
                region_features(tr["images"]), tr["questions"], tr["answers"],
                region_features(te["images"]), te["questions"], int(r.integers(1000)),
                expect=(te["answers"], cells, THRESHOLDS[which]))


@spec("vqa.train", entry="fit_predict", kernel="vqa.fit_predict", framework="torch",
      judge=judge_vqa, timeout=120.0,
      mutants=["vqa.fit_majority_answer", "vqa.fit_uniform_attention"],
      hints=["Build the model from san_layer: v = tanh(Linear(V)), a question vector from the "
             "tokens, one or two san_layer calls, a Linear to the answers; train with "
             "cross-entropy and Adam, then return argmax answers and the last attention map.",
             "If accuracy is stuck near 0.5, attention has not found the object: check the "
             "softmax is over the 16 regions, keep tanh inputs O(1) (small embeddings), and "
             "try lr 1e-2 with about 20 epochs of batches of 64.",
             "A design that works: v = tanh(Linear(9, 96)(V)); q = tanh(EmbeddingBag(mode='sum') "
             "with weights ~ N(0, 0.3^2)); one san_layer with k = 96; Linear(96, n_answers); "
             "Adam(lr=1e-2), 20 epochs of batches of 64, torch.manual_seed(seed) first."])
def train(t):
    """A stacked attention network trained on Sort-of-CLEVR region features and
    non-relational questions, judged on new scenes from the grading seed: accuracy and the
    attention mass on the queried object must clear thresholds measured on the reference."""
    yield _train_case(t, "visible")
    if t.hidden:
        yield _train_case(t, "hidden")
