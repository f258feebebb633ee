#!/usr/bin/env bash
# The pbgm demo (`make demo`): a fresh SQLite repository, the example bundle of a
# Wunsiedel-like DSO imported, decisions asked from the command line, FlexOffers
# checked, and the repository exported twice to show the export is canonical.
#
# Re-runnable: everything lives in demo-state/ (gitignored) and is rebuilt each run.
# Exits non-zero when any step does not give the expected result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PBGM="${PBGM:-$ROOT/.venv/bin/pbgm}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
STATE="$ROOT/demo-state"
NOW="2026-03-02T08:00:00Z"   # the example FlexOffers are for 2 March 2026

export PBGM_DATABASE_URL="sqlite:///$STATE/pbgm.db"
export PBGM_ACTOR="demo"

section() { printf '\n=== %s ===\n' "$*"; }

fail() { printf 'demo failed: %s\n' "$*" >&2; exit 1; }

# Run pbgm, require exit status $1, keep stdout in $OUT.
expect_status() {
    local want=$1 got=0
    shift
    OUT=$("$PBGM" "$@") || got=$?
    [[ $got == "$want" ]] || fail "\`pbgm $*\` exited $got, expected $want"
}

summary() {
    "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
parts = [r["decision"]]
if r["obligations"]:
    parts.append("obligations: " + ", ".join(o["id"] for o in r["obligations"]))
if r["advice"]:
    parts.append("advice: " + ", ".join(a["id"] for a in r["advice"]))
if r["policy_ids"]:
    parts.append("by: " + ", ".join(r["policy_ids"]))
print("; ".join(parts))'
}

decide() {
    local file=$1 group=$2 want=$3
    expect_status "$want" decide "$ROOT/examples/requests/$file" --group "$group"
    printf '%-38s %-19s exit %-3s %s\n' "$file" "$group" "$want" "$(summary <<<"$OUT")"
}

mkdir -p "$STATE"
rm -rf "$STATE"/pbgm.db* "$STATE/export-1" "$STATE/export-2"
cd "$STATE"

section "1. A fresh policy repository: $PBGM_DATABASE_URL"
"$PBGM" db upgrade

section "2. Import the example bundle, dry run first (users, groups and grants not shown)"
"$PBGM" policy import "$ROOT/examples/policies" --dry-run | grep -v -E ' (user|group|member|grant) '
echo
"$PBGM" policy import "$ROOT/examples/policies" | sed -n '1p;$p'

section "3. The policies"
"$PBGM" policy list

section "4. Decisions from the command line (exit 0 Permit, 10 Deny)"
expect_status 0 decide "$ROOT/examples/requests/kibernet-reads-pmu-data.json" --group data-sharing
echo "KIBERNet subscribes to PMU data of location 10003, the full Response:"
echo "$OUT"
echo
echo "request file                           policy group        exit     decision"
decide kibernet-reads-pmu-data.json data-sharing 0
decide unknown-service-reads-pmu-data.json data-sharing 10
decide kibernet-publishes-control.json data-sharing 10
decide operator-writes-bess-limits.json operational-limits 0
decide dispatch-outside-envelope.json operational-limits 10

section "5. FlexOffers against the template policy fo-template-bess-01 (now = $NOW)"
expect_status 0 flexoffer validate "$ROOT/examples/flexoffers/offer-bess-01-valid.json" --now "$NOW"
echo "$OUT"
echo "the invalid sample, every violation listed (exit 4):"
"$PBGM" flexoffer validate "$ROOT/examples/flexoffers/offer-bess-01-invalid.json" \
    --now "$NOW" 2>&1 && fail "the invalid offer was accepted" || true

section "6. Export twice: the bundle is canonical, the second export is identical"
"$PBGM" policy export "$STATE/export-1"
"$PBGM" policy export "$STATE/export-2"
diff -r "$STATE/export-1" "$STATE/export-2" && echo "export-1 and export-2 are identical"


# ---------------------------------------------------------------------------------------
# The REST API (added with `pbgm serve`): start the server on a free local port in the
# background, get a token for a demo service account, fetch a policy by its base64 id,
# ask for a decision, and stop the server again (also on failure, through the trap).
# ---------------------------------------------------------------------------------------

section "7. The REST API: pbgm serve, a token, a policy by base64 id, a decision"
export PBGM_KEYS_DIR="$STATE/keys"
rm -rf "$PBGM_KEYS_DIR"
"$PBGM" keys generate >/dev/null

# A service account may read the operational limits and ask for decisions. Its secret
# is shown once here; the repository keeps only its hash.
rm -f "$STATE/demo-loader.secret"
"$PBGM" service-account add demo-loader --scope policies:read --scope decisions:write \
    --secret-file "$STATE/demo-loader.secret" >/dev/null
"$PBGM" grant demo-loader operational-limits read \
    --principal-kind service --target-kind policy_group >/dev/null
DEMO_SECRET=$(cat "$STATE/demo-loader.secret")
echo "service account \`demo-loader\` created (policies:read, decisions:write)"

PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
"$PBGM" serve --bind "127.0.0.1:$PORT" --workers 2 >"$STATE/serve.log" 2>&1 &
SERVER=$!
stop_server() { kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true; }
trap stop_server EXIT

# http METHOD PATH [BODY]: prints the JSON answer; `$AUTH` is sent when set.
http() {
    "$PYTHON" - "$BASE$2" "$1" "${3:-}" <<'PY'
import json, os, sys, urllib.error, urllib.request

url, method, body = sys.argv[1], sys.argv[2], sys.argv[3]
headers = {"Authorization": os.environ["AUTH"]} if os.environ.get("AUTH") else {}
data = None
if body.startswith("grant_type="):
    data, headers["Content-Type"] = body.encode(), "application/x-www-form-urlencoded"
elif body:
    data, headers["Content-Type"] = body.encode(), "application/json"
try:
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method)) as r:
        print(r.read().decode())
except urllib.error.HTTPError as error:
    sys.exit(f"{method} {url}: {error.code} {error.read().decode()}")
PY
}

for _ in $(seq 1 100); do
    http GET /readyz >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || fail "pbgm serve stopped: $(cat "$STATE/serve.log")"
    sleep 0.2
done
echo "pbgm serve is up on $BASE ($(http GET /readyz))"

BASIC=$("$PYTHON" -c 'import base64, sys; print(base64.b64encode(sys.argv[1].encode()).decode())' "demo-loader:$DEMO_SECRET")
TOKEN=$(AUTH="Basic $BASIC" http POST /api/v1/token "grant_type=client_credentials" \
    | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
export AUTH="Bearer $TOKEN"
echo "token issued for demo-loader (a signed JWT, $(( ${#TOKEN} )) characters)"

POLICY_ID=$("$PYTHON" -c 'from pbgm.access import encode_id; print(encode_id("limits-bess-01"))')
echo "GET /api/v1/policy?policy_id=$POLICY_ID&policy_group=operational-limits"
http GET "/api/v1/policy?policy_id=$POLICY_ID&policy_group=operational-limits" | "$PYTHON" -c '
import json, sys
p = json.load(sys.stdin)
print("  -> {id} version {version}, type {type}, ETag {etag}".format(**p))'

REQUEST=$("$PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r[k] for k in ("subject", "resource", "action", "environment") if k in r}))' \
    "$ROOT/examples/requests/operator-writes-bess-limits.json")
echo "POST /api/v1/decisions  (operator-writes-bess-limits.json)"
DECISION=$(http POST /api/v1/decisions "$REQUEST" | summary)
echo "  -> $DECISION"
[[ $DECISION == Permit* ]] || fail "the REST decision was $DECISION, expected Permit"

section "8. The admin GUI at $BASE/admin/: sign in through a real HTTP client"
printf '%s\n' "demo-admin-password" | "$PBGM" admin create-user demo-admin --admin --password-stdin
"$PYTHON" - "$BASE" <<'PY' || fail "the admin GUI did not answer as expected"
import html, http.cookiejar, re, sys, urllib.parse, urllib.request

base = sys.argv[1]
browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def get(path):
    with browser.open(base + path) as reply:
        return reply.status, reply.read().decode()


status, page = get("/admin/sign-in")
token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
print(f"GET  /admin/sign-in -> {status}, a form with a CSRF token")
form = urllib.parse.urlencode({"csrf_token": token, "name": "demo-admin", "password": "demo-admin-password"})
with browser.open(base + "/admin/sign-in", form.encode()) as reply:
    print(f"POST /admin/sign-in -> {reply.status} {reply.geturl().removeprefix(base)} (signed in)")
status, page = get("/admin/policies")
count = re.search(r'<p id="count">([^<]*)</p>', page).group(1)
ids = re.findall(r'<td><a href="/admin/policies/[^"]+">([^<]+)</a>', page)
print(f"GET  /admin/policies -> {status}: {html.unescape(count)} {', '.join(ids)}")
assert status == 200 and "limits-bess-01" in ids
PY
echo "Open the GUI in a browser with \`make serve\` (it prints the address and the sign-in)."

stop_server
trap - EXIT
echo
echo "REST API demo done: server stopped"

section "9. KIBERNet: a stand-in data platform polled through the PDP"
"$PYTHON" "$ROOT/examples/kibernet_demo.py" || fail "the KIBERNet demo failed"

section "10. The flexibility market: MPC request -> FlexOffers -> assignment, then the fallback"
"$PYTHON" "$ROOT/examples/market_demo.py" || fail "the flexibility market demo failed"

section "Done: repository and exports are in demo-state/"
