#!/usr/bin/env python3
"""The architecture rules of docs/ARCHITECTURE.md ("Dependency rules"), checked on the source.

Each rule names the files it covers and a pattern they must not contain; a line that breaks
one is printed as `file:line: rule` and the script exits 1. Comments (`//`) are not code and
are skipped. `--self-test` checks that every rule catches a line that breaks it.
"""

import pathlib
import re
import sys
import tempfile

SERVER = "crates/server/src"

# The domain modules of the server: plain functions over AppState and TenantCtx, no HTTP.
DOMAINS = [
    "tenancy/", "knowledge/", "answer/", "channels/", "conversations/", "jobs/",
    "infra/", "widget.rs", "metering.rs",
]
# The command-line modules: the only ones that act for the operator.
CLI = ["cli.rs", "bench.rs", "eval.rs", "eval_answers.rs"]

RULES = [
    (
        "domain modules never import http",
        DOMAINS, [],
        re.compile(r"\bcrate::http\b"),
    ),
    (
        "knowledge never imports channels or answer",
        ["knowledge/"], [],
        re.compile(r"\bcrate::(channels|answer)\b"),
    ),
    (
        "conversations and metering never import the answer engine, channels or widget",
        ["conversations/", "metering.rs"], [],
        re.compile(r"\bcrate::(answer|channels|widget)\b"),
    ),
    (
        "HTTP handlers never touch the store directly (call the domain)",
        ["http/"], [],
        re.compile(r"\.store\b"),
    ),
    (
        "TenantCtx::for_operator only in the command line",
        [""], CLI + ["tenancy/mod.rs"],
        re.compile(r"\bfor_operator\s*\("),
    ),
    (
        "the job runner and scheduler know no domain (jobs are listed in jobs/registry.rs)",
        ["jobs/"], ["jobs/registry.rs"],
        re.compile(r"\bcrate::(tenancy|knowledge|answer|channels|conversations|widget)\b"),
    ),
]


def covered(rel: str, prefixes, exempt) -> bool:
    if any(rel == e or (e.endswith("/") and rel.startswith(e)) for e in exempt):
        return False
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) or p == "" for p in prefixes)


def violations(root: pathlib.Path):
    src = root / SERVER
    out = []
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for name, prefixes, exempt, pattern in RULES:
            if not covered(rel, prefixes, exempt):
                continue
            for n, line in enumerate(lines, 1):
                code = line.split("//", 1)[0]
                if pattern.search(code):
                    out.append(f"{SERVER}/{rel}:{n}: {name}")
    return out


def self_test() -> int:
    breaking = {
        "domain modules never import http": ("knowledge/x.rs", "use crate::http::error::ApiError;"),
        "knowledge never imports channels or answer": ("knowledge/x.rs", "use crate::answer::ask;"),
        "conversations and metering never import the answer engine, channels or widget":
            ("conversations/turns.rs", "use crate::answer::Draft;"),
        "HTTP handlers never touch the store directly (call the domain)":
            ("http/api/x.rs", "let d = state.store.get_document(t, id).await?;"),
        "TenantCtx::for_operator only in the command line":
            ("widget.rs", "let ctx = TenantCtx::for_operator(state, t).await?;"),
        "the job runner and scheduler know no domain (jobs are listed in jobs/registry.rs)":
            ("jobs/runner.rs", "use crate::knowledge::jobs::ParseDocument;"),
    }
    assert set(breaking) == {r[0] for r in RULES}, "every rule has a breaking line"
    failed = 0
    for name, (rel, line) in breaking.items():
        with tempfile.TemporaryDirectory() as d:
            f = pathlib.Path(d) / SERVER / rel
            f.parent.mkdir(parents=True)
            f.write_text(f"// {line}\nfn ok() {{}}\n{line}\n", encoding="utf-8")
            found = violations(pathlib.Path(d))
            if found != [f"{SERVER}/{rel}:3: {name}"]:
                print(f"self-test: rule '{name}' found {found}")
                failed += 1
    print("architecture rules self-test:", "ok" if not failed else f"{failed} failed")
    return 1 if failed else 0


def main() -> int:
    if "--self-test" in sys.argv:
        return self_test()
    root = pathlib.Path(__file__).resolve().parent.parent
    found = violations(root)
    for v in found:
        print(v)
    if found:
        print(f"{len(found)} line(s) break the architecture rules (docs/ARCHITECTURE.md)")
        return 1
    print("architecture rules: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
