#!/usr/bin/env python3
"""Fixed embeddings and the retrieval metrics two independent references compute on them,
for the tests of `pytorrent eval retrieval`.

- `compute_ranks`: a NumPy port of CodeSearchNet's (`src/model_test.py`): a rank is the number
  of candidates whose distance is at most the positive's (ties count against the model); the
  CodeSearchNet MRR is the mean over batches of 1,000 of each batch's mean reciprocal rank,
  the last partial batch dropped.
- sentence-transformers' `InformationRetrievalEvaluator` (its own top-k search and metrics:
  accuracy@k, precision@k, recall@k, MRR@k, NDCG@k, MAP@k; ties by ascending corpus id).

The vectors have 16 components of ±1/4 among 24, so every norm is exactly 1 and every score a
multiple of 1/16: both sides compute each score exactly, and ties are frequent. Candidate i is
query i with 0 to 8 signs flipped, so positives range from easy to lost among distractors;
some candidates are exact copies of others.

Needs numpy, torch and sentence-transformers (a throw-away venv; CI does not need them):

    python scripts/reference/make_retrieval_fixtures.py --out tests/fixtures/retrieval
"""
import argparse
import json
import os

import numpy as np

PAIRS = 2100
DIM = 24
NONZERO = 16
BATCH = 1000
CUTOFFS = dict(
    accuracy_at_k=[1, 3, 5, 10],
    precision_recall_at_k=[1, 3, 5, 10, 100],
    mrr_at_k=[1, 3, 5, 10, 100],
    ndcg_at_k=[1, 3, 5, 10, 100],
    map_at_k=[1, 3, 5, 10, 100],
)


def make(rng):
    q = np.zeros((PAIRS, DIM), dtype=np.float32)
    for i in range(PAIRS):
        cols = rng.choice(DIM, NONZERO, replace=False)
        q[i, cols] = rng.choice([-0.25, 0.25], NONZERO)
    c = q.copy()
    for i in range(PAIRS):
        nz = np.flatnonzero(c[i])
        flip = rng.choice(nz, rng.integers(0, 9), replace=False)
        c[i, flip] *= -1
    # Exact copies: a distractor equal to a positive, within and across csn batches.
    for dup, of in [(5, 7), (1500, 2), (999, 1000), (2050, 2051)]:
        c[dup] = c[of]
    return q, c


def compute_ranks(src, tgt):
    """CodeSearchNet's compute_ranks with cosine distance (rows are unit vectors here, and
    scores exact, so 1 - dot is the distance scipy's cdist computes)."""
    distances = 1.0 - src.astype(np.float64) @ tgt.astype(np.float64).T
    correct = np.expand_dims(np.diag(distances), axis=-1)
    return np.sum(distances <= correct, axis=-1)


def csn(q, c):
    mrrs = []
    for start in range(0, len(q) - BATCH + 1, BATCH):
        ranks = compute_ranks(q[start:start + BATCH], c[start:start + BATCH])
        mrrs.append(float(np.mean(1.0 / ranks)))
    return float(np.mean(mrrs)), mrrs


def pool(q, c):
    ranks = compute_ranks(q, c)
    return float(np.mean(1.0 / ranks)), float(np.mean(np.where(ranks <= 1000, 1.0 / ranks, 0.0)))


def st_metrics(q, c, width):
    """The evaluator over queries q and corpus c (pair i = query i ↔ document i), with its
    own search; corpus ids zero-padded so their string order is their index order."""
    import torch
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim

    ids = [f"{i:0{width}d}" for i in range(len(c))]
    qids = [f"q{i}" for i in range(len(q))]

    class Fixed(InformationRetrievalEvaluator):
        def embed_inputs(self, model, sentences, **kwargs):
            return torch.from_numpy(q)

    ev = Fixed(
        queries=dict(zip(qids, qids)),
        corpus=dict(zip(ids, ids)),
        relevant_docs={qid: {ids[i]} for i, qid in enumerate(qids)},
        show_progress_bar=False,
        score_functions={"cosine": cos_sim},
        **CUTOFFS,
    )
    scores = ev.compute_all_metrics(model=None, corpus_embeddings=torch.from_numpy(c))
    out = {}
    for name, by_k in scores["cosine"].items():
        for k, v in by_k.items():
            out[f"{name.split('@')[0]}@{k}"] = float(v)
    return out


def st_csn(q, c):
    """The evaluator per csn batch, averaged over batches (equal sizes: the mean over queries)."""
    per_batch = [
        st_metrics(q[s:s + BATCH], c[s:s + BATCH], len(str(BATCH)))
        for s in range(0, len(q) - BATCH + 1, BATCH)
    ]
    return {k: float(np.mean([b[k] for b in per_batch])) for k in per_batch[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    q, c = make(np.random.default_rng(args.seed))
    np.save(os.path.join(args.out, "queries.npy"), q)
    np.save(os.path.join(args.out, "candidates.npy"), c)
    ref = {"pairs": PAIRS, "csn_batch": BATCH}
    for direction, (a, b) in {"text2code": (q, c), "code2text": (c, q)}.items():
        csn_mrr, batches = csn(a, b)
        pool_mrr, pool_mrr_1000 = pool(a, b)
        ref[direction] = {
            "csn": {"mrr": csn_mrr, "batch_mrr": batches, "ir": st_csn(a, b)},
            "pool": {"mrr": pool_mrr, "mrr_at_1000": pool_mrr_1000,
                     "ir": st_metrics(a, b, len(str(PAIRS)))},
        }
    import sentence_transformers
    ref["versions"] = {"numpy": np.__version__, "sentence_transformers": sentence_transformers.__version__}
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
