#!/bin/sh
# Validate every overlay: its privtrak.yaml passes `privtrak check-config`
# (unknown keys are errors), and, when kubectl is present, it renders with
# `kubectl kustomize`. PRIVTRAK_BIN defaults to .build/debug/privtrak.
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
    if command -v kubectl >/dev/null 2>&1; then
        if out=$(kubectl kustomize "$dir" 2>&1); then
            echo "$name: kustomize OK ($(printf '%s\n' "$out" | grep -c '^kind:') objects)"
            # One tracker instance per overlay until swarms are sharded by
            # info hash (deploy/README.md, "One instance"): replicas would
            # split swarms and count a dual-stack client's bytes twice.
            replicas=$(printf '%s\n' "$out" | awk '/^kind: StatefulSet$/ {s=1} /^---/ {s=0} s && /^  replicas:/ {print $2}')
            if [ "$replicas" = 1 ]; then
                echo "$name: one tracker instance"
            else
                echo "FAIL $name: StatefulSet replicas '$replicas', expected 1 (see deploy/README.md)" >&2; status=1
            fi
            # Every core object against the Kubernetes OpenAPI schemas, strict
            # (unknown fields are errors); CRDs (Strimzi, ServiceMonitor) have
            # no bundled schema and are reported as skipped.
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
