#!/bin/sh
# Validate every overlay: its privtrak.yaml passes `privtrak check-config`
# (unknown keys are errors) and has a ledger section without a password, and,
# when kubectl is present, it renders with `kubectl kustomize` into one tracker
# or N shards behind the proxy whose counts agree (check_shards.py), one
# ledger Deployment and its PostgreSQL (CloudNativePG Cluster, or a plain
# StatefulSet in local). PRIVTRAK_BIN defaults to .build/debug/privtrak.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${PRIVTRAK_BIN:-.build/debug/privtrak}
[ -x "$bin" ] || { echo "check.sh: $bin not executable (set PRIVTRAK_BIN)" >&2; exit 2; }
# The secret is injected from a Secret at run time; check with a dummy one,
# and without any other PRIVTRAK_* override leaking in from this shell.
for v in $(env | sed -n 's/^\(PRIVTRAK_[A-Z0-9_]*\)=.*/\1/p'); do
    [ "$v" = PRIVTRAK_BIN ] || unset "$v"
done
export PRIVTRAK_UDP_CONNECTION_ID_SECRET=0123456789abcdef0123456789abcdef
# kubernetes-validate comes from scripts/setup (pip).
validator=${KUBERNETES_VALIDATE:-kubernetes-validate}
command -v "$validator" >/dev/null 2>&1 || { echo "check.sh: $validator not found (run scripts/setup)" >&2; exit 2; }
status=0
# doc KIND NAME < rendered: the one rendered object of that kind and
# metadata.name (kubectl kustomize prints sorted keys, 2-space indentation).
doc() {
    awk -v k="$1" -v n="$2" '
        function flush() { if (kind == k && name == n) printf "%s", buf; buf = ""; kind = ""; name = ""; meta = 0 }
        /^---$/ { flush(); next }
        { buf = buf $0 "\n" }
        /^kind: / { kind = $2 }
        /^metadata:$/ { meta = 1; next }
        /^[^ ]/ { meta = 0 }
        meta && /^  name: / { name = $2 }
        END { flush() }'
}
for dir in "$here"/overlays/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    if summary=$("$bin" check-config "$dir/privtrak.yaml"); then
        echo "$summary"
        # Past the local overlay only the site's users and torrents get in.
        if [ "$name" != local ]; then
            case "$summary" in
                *"(users registered, torrents registered)"*) echo "$name: registered users and torrents" ;;
                *) echo "FAIL $name: expected registry.users and registry.torrents: registered" >&2; status=1 ;;
            esac
        fi
    else
        echo "FAIL $name: check-config" >&2; status=1
    fi
    # The ledger's section: the delta topic, and the database URL WITHOUT a
    # password (that comes from the Secret as PRIVTRAK_LEDGER_PASSWORD), at
    # the primary's Service; its admin port where the probes look.
    ledger=$(awk '/^ledger:/ {s=1; next} /^[^ #]/ {s=0} s' "$dir/privtrak.yaml")
    to=$(printf '%s\n' "$ledger" | sed -n 's/^  to: *//p')
    if printf '%s\n' "$ledger" | grep -q '^  from: kafka://[^/]*/privtrak\.deltas\.v1$' \
        && printf '%s\n' "$ledger" | grep -q '^  admin: 0\.0\.0\.0:9091$' \
        && ! printf '%s\n' "$ledger" | grep -q '^  password:' \
        && printf '%s' "$to" | grep -q '^postgresql://[^:@/]*@privtrak-db-rw:5432/privtrak$'; then
        echo "$name: ledger from the delta topic to $to, no password in the file"
    else
        echo "FAIL $name: ledger section: expected from kafka://…/privtrak.deltas.v1, to postgresql://USER@privtrak-db-rw:5432/privtrak (no password), admin 0.0.0.0:9091" >&2; status=1
    fi
    if command -v kubectl >/dev/null 2>&1; then
        if out=$(kubectl kustomize "$dir" 2>&1); then
            echo "$name: kustomize OK ($(printf '%s\n' "$out" | grep -c '^kind:') objects)"
            # The tracker tier (deploy/README.md, "Shards"): one instance, or
            # N shards behind the proxy with replicas = tracker.shard_count =
            # the proxy's count, its config deploy/haproxy/haproxy.cfg as is,
            # a UDP Service per shard (check_shards.py says what it checks).
            count=$(printf '%s' "$summary" | sed -n 's/.*tracker shard [0-9]* of \([0-9]*\).*/\1/p')
            if ! printf '%s\n' "$out" | python3 "$here/check_shards.py" "$name" "${count:-1}" "$dir/privtrak.yaml"; then
                status=1
            fi
            # The ledger: one Deployment (scaled to 0 in local, which has no
            # Kafka), the password only from a Secret, probes on its admin port.
            deployment=$(printf '%s\n' "$out" | doc Deployment privtrak-ledger)
            ledger_replicas=$(printf '%s\n' "$deployment" | awk '/^  replicas:/ {print $2}')
            expected=1; [ "$name" = local ] && expected=0
            if [ "$ledger_replicas" = "$expected" ] \
                && printf '%s\n' "$deployment" | grep -qx -- '        - ledger' \
                && printf '%s\n' "$deployment" | grep -A2 -x -- '        - name: PRIVTRAK_LEDGER_PASSWORD' | grep -qx '            secretKeyRef:' \
                && printf '%s\n' "$deployment" | grep -A3 -x '        livenessProbe:' | grep -q 'path: /healthz' \
                && printf '%s\n' "$deployment" | grep -A3 -x '        readinessProbe:' | grep -q 'path: /readyz' \
                && printf '%s\n' "$deployment" | grep -qx '        - containerPort: 9091'; then
                echo "$name: ledger Deployment (replicas $ledger_replicas, password from a Secret, probes on 9091)"
            else
                echo "FAIL $name: Deployment privtrak-ledger: expected replicas $expected, args ledger, PRIVTRAK_LEDGER_PASSWORD from a secretKeyRef, /healthz and /readyz on 9091" >&2; status=1
            fi
            # Its database. CloudNativePG's Cluster is a CRD kubernetes-validate
            # cannot know (skipped below like Strimzi's): check the fields the
            # ledger relies on here. local runs a plain StatefulSet instead.
            if [ "$name" = local ]; then
                if printf '%s\n' "$out" | doc StatefulSet privtrak-db | grep -q 'image: docker.io/library/postgres:' \
                    && [ -n "$(printf '%s\n' "$out" | doc Service privtrak-db-rw)" ]; then
                    echo "$name: PostgreSQL StatefulSet privtrak-db behind Service privtrak-db-rw"
                else
                    echo "FAIL $name: expected StatefulSet privtrak-db (postgres image) and Service privtrak-db-rw" >&2; status=1
                fi
            else
                case "$name" in dev) instances=1 ;; staging) instances=2 ;; *) instances=3 ;; esac
                cluster=$(printf '%s\n' "$out" | doc Cluster privtrak-db)
                if printf '%s\n' "$cluster" | grep -qx 'apiVersion: postgresql.cnpg.io/v1' \
                    && printf '%s\n' "$cluster" | grep -qx "  instances: $instances" \
                    && printf '%s\n' "$cluster" | grep -qx '      database: privtrak' \
                    && printf '%s\n' "$cluster" | grep -qx '      owner: privtrak' \
                    && printf '%s\n' "$cluster" | grep -qx '        name: privtrak-ledger-db' \
                    && printf '%s\n' "$cluster" | grep -q '^    size: [0-9]'; then
                    echo "$name: CloudNativePG Cluster privtrak-db ($instances instance(s), database and owner privtrak, credentials by reference)"
                else
                    echo "FAIL $name: Cluster privtrak-db: expected postgresql.cnpg.io/v1, instances $instances, initdb database/owner privtrak, secret privtrak-ledger-db, storage size" >&2; status=1
                fi
            fi
            # No Secret with data is rendered outside local (none is committed).
            if [ "$name" != local ] && printf '%s\n' "$out" | grep -qx 'kind: Secret'; then
                echo "FAIL $name: a Secret is rendered; secrets are created out of band" >&2; status=1
            fi
            # Every core object against the Kubernetes OpenAPI schemas, strict
            # (unknown fields are errors); CRDs (Strimzi, ServiceMonitor,
            # CloudNativePG) have no bundled schema and are reported as skipped.
            rendered=$(mktemp); printf '%s\n' "$out" > "$rendered"
            if validation=$("$validator" --strict --quiet --no-warn "$rendered" 2>&1); then
                echo "$name: schema validation OK"
            else
                echo "FAIL $name: kubernetes-validate: $validation" >&2; status=1
            fi
            rm -f "$rendered"
        else
            echo "FAIL $name: kubectl kustomize: $out" >&2; status=1
        fi
    else
        echo "$name: kubectl not found, render skipped"
    fi
done
# And a broken config is refused with the promised message: key, file, line.
broken=$(mktemp --suffix=.yaml)
printf 'http:\n  listen: 0.0.0.0:6969\ntracker:\n  announce_interval_s: soon\n' > "$broken"
if message=$("$bin" check-config "$broken" 2>&1); then
    echo "FAIL broken config accepted: $message" >&2; status=1
elif printf '%s' "$message" | grep -qF "configuration error in $broken line 4: tracker.announce_interval_s: expected an integer (seconds), got 'soon'"; then
    echo "broken config: refused with key, file and line"
else
    echo "FAIL broken config: unexpected message: $message" >&2; status=1
fi
rm -f "$broken"
# A missing file is a configuration error too: exit 2 naming the file (not
# ArgumentParser's usage error, exit 64).
missing=$(mktemp -u --suffix=.yaml)
message=$("$bin" check-config "$missing" 2>&1)
code=$?
if [ $code -eq 2 ] && printf '%s' "$message" | grep -qF "configuration error in $missing: cannot read the file"; then
    echo "missing config: refused with exit 2, naming the file"
else
    echo "FAIL missing config: exit $code, message: $message" >&2; status=1
fi
[ $status -eq 0 ] && echo "deploy/check.sh: all overlays OK"
exit $status
