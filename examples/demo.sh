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

section "Done: repository and exports are in demo-state/"
