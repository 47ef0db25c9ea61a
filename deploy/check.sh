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
status=0
for dir in "$here"/overlays/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    if "$bin" check-config "$dir/privtrak.yaml"; then :; else
        echo "FAIL $name: check-config" >&2; status=1
    fi
    if command -v kubectl >/dev/null 2>&1; then
        if out=$(kubectl kustomize "$dir" 2>&1); then
            echo "$name: kustomize OK ($(printf '%s\n' "$out" | grep -c '^kind:') objects)"
        else
            echo "FAIL $name: kubectl kustomize: $out" >&2; status=1
        fi
    else
        echo "$name: kubectl not found, render skipped"
    fi
done
[ $status -eq 0 ] && echo "deploy/check.sh: all overlays OK"
exit $status
