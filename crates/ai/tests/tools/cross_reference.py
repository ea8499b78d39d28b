"""Writes tests/data/cross-reference.json: what a BERT sequence-classification model (a
cross-encoder) scores for a few (question, passage) pairs, computed independently of the Rust
encoder — Hugging Face's `tokenizers` for the pair encoding and a float64 numpy forward pass
written from the BERT paper's definitions.

No trained cross-encoder's weights can be fetched by this project's machines, so the model is
all-MiniLM-L6-v2's BERT body and pooler with a generated one-label classifier:
weight[0][j] = 0.5 * sin(0.37 * (j + 1)), bias = 0.1 (tests/reference.rs builds the same).
This checks the arithmetic (pair encoding with token types, truncation, pooler, classifier,
logistic), not ranking quality.

Run: python3 tests/tools/cross_reference.py MODEL_DIR   (numpy, safetensors, tokenizers)."""
import json, math, os, sys
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

PAIRS = [
    ("Can I send back tea I already opened?", "Opened packets are fine to return within 30 days."),
    ("Can I send back tea I already opened?", "We ship to the whole of Europe in three to five days."),
    ("quels sont vos horaires le dimanche", "Le restaurant est ouvert du mardi au dimanche, de 12 h à 22 h."),
    ("how do i reset my password", "To change your password, open Settings, then Security, and choose Reset."),
    ("", "An empty question still reads the passage."),
    ("what does the warranty cover",
     " ".join(["The warranty covers the motor and the battery for two years."] * 60)),
]

def main(model_dir):
    t = {k: v.astype(np.float64) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(512, strategy="longest_first")
    h, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    dh = h // heads
    erf = np.vectorize(math.erf)

    def ln(x, name):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * t[name + ".weight"] + t[name + ".bias"]

    def dense(x, name):
        return x @ t[name + ".weight"].T + t[name + ".bias"]

    def forward(ids, types):
        n = len(ids)
        x = (t["embeddings.word_embeddings.weight"][ids]
             + t["embeddings.position_embeddings.weight"][np.arange(n)]
             + t["embeddings.token_type_embeddings.weight"][types])
        x = ln(x, "embeddings.LayerNorm")
        for l in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{l}"
            q, k, v = (dense(x, f"{p}.attention.self.{part}").reshape(n, heads, dh).transpose(1, 0, 2)
                       for part in ("query", "key", "value"))
            a = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(1, 0, 2).reshape(n, h)
            x1 = ln(x + dense(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            i = dense(x1, f"{p}.intermediate.dense")
            i = 0.5 * i * (1.0 + erf(i / math.sqrt(2.0)))
            x = ln(x1 + dense(i, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        return x

    w = np.array([0.5 * math.sin(0.37 * (j + 1)) for j in range(h)])
    out = []
    for query, passage in PAIRS:
        e = tok.encode(query, passage)
        x = forward(np.array(e.ids), np.array(e.type_ids))
        pooled = np.tanh(dense(x[0], "pooler.dense"))
        logit = float(w @ pooled + 0.1)
        out.append({"query": query, "passage": passage, "tokens": len(e.ids),
                    "logit": logit, "score": 1.0 / (1.0 + math.exp(-logit))})
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(here, "data", "cross-reference.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for o in out:
        print(o["tokens"], round(o["logit"], 5), round(o["score"], 6))

main(sys.argv[1])
