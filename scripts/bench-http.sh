#!/usr/bin/env bash
# HTTP throughput and latency of a release build on loopback, measured with wrk (Debian
# package `wrk`, installed if missing). Starts its own server on a scratch SQLite database,
# signs up a tenant, creates an API key, then loads four endpoints for 10 s each.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --locked -p cortexlayer-server
BIN="$PWD/target/release/cortexlayer"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
B="http://127.0.0.1:$PORT"
printf '[auth]\nattempts_per_ip_per_minute = 100000000\nattempts_per_account_per_15_minutes = 100000000\n' > "$WORK/bench.toml"
cd "$WORK"
CORTEX_LOG=warn,cortexlayer_server::infra::mailer=info "$BIN" --config bench.toml serve --bind "127.0.0.1:$PORT" > out.log 2> err.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "$B/healthz" >/dev/null && break; sleep 0.1; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -sf "$B/api/v1/auth/signup" -H 'content-type: application/json' \
  -d '{"email":"bench@bench.example","password":"correct horse battery","company_name":"Bench"}' >/dev/null
sleep 0.3
CODE="$(grep -o 'code is [0-9]*' err.log | head -1 | awk '{print $3}')"
TOKEN="$(curl -sf "$B/api/v1/auth/verify-email" -H 'content-type: application/json' \
  -d "{\"email\":\"bench@bench.example\",\"code\":\"$CODE\"}" | json '["access_token"]')"
KEY="$(curl -sf "$B/api/v1/api-keys" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"bench","scopes":["chat"]}' | json '["key"]')"
cat > login.lua <<'LUA'
wrk.method = "POST"
wrk.body   = '{"email":"bench@bench.example","password":"correct horse battery"}'
wrk.headers["Content-Type"] = "application/json"
LUA
run() { echo "== $1"; shift; wrk -t2 -d10s --latency "$@" | grep -E 'Requests/sec|  50%|  99%|Non-2xx'; }
run "GET /healthz (no auth, no database)" -c32 "$B/healthz"
run "GET /api/v1/tenant with an API key (hash + 2 reads)" -c32 -H "authorization: Bearer $KEY" "$B/api/v1/tenant"
run "GET /api/v1/me with an access token (JWT + 2 reads)" -c32 -H "authorization: Bearer $TOKEN" "$B/api/v1/me"
run "POST /api/v1/auth/login (argon2id)" -c8 -s login.lua "$B/api/v1/auth/login"
