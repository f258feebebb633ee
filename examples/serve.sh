#!/usr/bin/env bash
# `make serve`: the REST API on $PBGM_BIND (default 127.0.0.1:8080) until Ctrl-C, over
# demo-state/serve/pbgm.db: migrated, the example bundle imported (idempotent), a signing
# key, and a service account `svc-demo` (read on operational-limits, decisions) whose
# secret is in demo-state/serve/svc-demo.secret, and the admin GUI's first administrator
# `admin` (password in demo-state/serve/admin.password). Re-runnable; keeps its state.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PBGM="${PBGM:-$ROOT/.venv/bin/pbgm}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
STATE="$ROOT/demo-state/serve"
BIND="${PBGM_BIND:-127.0.0.1:8080}"
mkdir -p "$STATE"
export PBGM_DATABASE_URL="sqlite:///$STATE/pbgm.db" PBGM_KEYS_DIR="$STATE/keys"
export PBGM_ACTOR="make-serve"

"$PBGM" db upgrade
"$PBGM" policy import "$ROOT/examples/policies" | tail -n 1
[[ -f "$PBGM_KEYS_DIR/keys.json" ]] || "$PBGM" keys generate
if [[ ! -f "$STATE/svc-demo.secret" ]]; then
    "$PBGM" service-account add svc-demo --scope policies:read --scope decisions:write \
        --secret-file "$STATE/svc-demo.secret"
    "$PBGM" grant svc-demo operational-limits read \
        --principal-kind service --target-kind policy_group
fi

if [[ ! -f "$STATE/admin.password" ]]; then
    "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(12))' >"$STATE/admin.password"
    chmod 600 "$STATE/admin.password"
    "$PBGM" admin create-user admin --admin --password-stdin <"$STATE/admin.password"
fi

cat <<TEXT

pbgm admin GUI on http://$BIND/admin/  (user \`admin\`, password in $STATE/admin.password)
pbgm REST API on http://$BIND  (OpenAPI: http://$BIND/api/v1/openapi.json)
A token for svc-demo:
  curl -s -u "svc-demo:\$(cat $STATE/svc-demo.secret)" -d grant_type=client_credentials \\
       http://$BIND/api/v1/token
The limits of bess-01 (policy id base64url-encoded):
  curl -s -H "Authorization: Bearer \$TOKEN" \\
       "http://$BIND/api/v1/policy?policy_id=bGltaXRzLWJlc3MtMDE&policy_group=operational-limits"

TEXT
exec "$PBGM" serve --bind "$BIND"
