#!/usr/bin/env python3
"""Writes a knowledge base of short one-paragraph snippets spread over many tenants, in BEIR
layout, for `cortexlayer bench load --ingest-only` and the Python peer's ingest: the shape of a
help centre imported as thousands of Q&A pairs (the common case), made from a BEIR corpus.

    python3 scripts/bench-snippets.py ../shared/data/scifact /tmp/snippets [TENANTS] [MAX]

Each abstract is cut at sentence ends into snippets of at most ~45 words; each snippet is its
own document with `metadata.tenant` one of TENANTS (default 143) by its abstract's position,
so one business's snippets come from the same abstracts; at most MAX (default 10,000)
snippets are written. `queries.jsonl` is copied through,
each query placed in the tenant of its first relevant abstract. The output stays local: it is
derived from the corpus and under its licence (SciFact: CC BY-NC, benchmarking only).
"""
import json
import os
import re
import sys


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    tenants = int(sys.argv[3]) if len(sys.argv) > 3 else 143
    most = int(sys.argv[4]) if len(sys.argv) > 4 else 10_000
    os.makedirs(out, exist_ok=True)
    tenant_of = {}
    count = 0
    with open(os.path.join(src, "corpus.jsonl")) as f, open(os.path.join(out, "corpus.jsonl"), "w") as o:
        for i, line in enumerate(f):
            if count >= most:
                break
            doc = json.loads(line)
            tenant = f"business-{i % tenants:03d}"
            tenant_of[doc["_id"]] = tenant
            sentences = re.split(r"(?<=[.!?])\s+", doc.get("text", "").strip())
            piece, n = [], 0
            for s in sentences + [None]:
                words = len(s.split()) if s else 0
                if piece and (s is None or sum(len(p.split()) for p in piece) + words > 45):
                    o.write(json.dumps({
                        "_id": f"{doc['_id']}-{n}",
                        "title": doc.get("title", "") if n == 0 else "",
                        "text": " ".join(piece),
                        "metadata": {"tenant": tenant},
                    }) + "\n")
                    piece, n, count = [], n + 1, count + 1
                if s:
                    piece.append(s)
    relevant = {}
    qrels = os.path.join(src, "qrels.tsv")
    if os.path.exists(qrels):
        for line in open(qrels):
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1] in tenant_of:
                relevant.setdefault(parts[0], tenant_of[parts[1]])
    with open(os.path.join(src, "queries.jsonl")) as f, open(os.path.join(out, "queries.jsonl"), "w") as o:
        for line in f:
            q = json.loads(line)
            q["metadata"] = {"tenants": [relevant.get(q["_id"], "business-000")]}
            o.write(json.dumps(q) + "\n")
    print(f"{count} snippets over {tenants} tenants in {out}")


if __name__ == "__main__":
    main()
