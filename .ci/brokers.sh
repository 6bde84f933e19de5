#!/usr/bin/env bash
# Builds the Kafka-protocol brokers the Kafka tests run against (../shared/KAFKA.md), once per
# machine, under ~/.cache/eddy/brokers: nisshi 0.7.0 (transactions) and 0.8.1 (right end offsets).
# Both share one target dir, so the second build reuses what the first compiled. The brokers'
# speed does not matter to the tests, so they are built with little optimisation (about half the
# CPU time of a default release build).
#
#   .ci/brokers.sh            build what is missing
#   .ci/brokers.sh --print    print the exports the tests read (EDDY_NISSHI, EDDY_NISSHI_LATEST)
set -euo pipefail
BROKERS="${EDDY_BROKERS_DIR:-$HOME/.cache/eddy/brokers}"
if [ "${1:-}" = "--print" ]; then
    echo "export EDDY_NISSHI=$BROKERS/nisshi-0.7.0/bin/nisshi"
    echo "export EDDY_NISSHI_LATEST=$BROKERS/nisshi-0.8.1/bin/nisshi"
    exit 0
fi
mkdir -p "$BROKERS"
for ver in 0.7.0 0.8.1; do
    if [ -x "$BROKERS/nisshi-$ver/bin/nisshi" ]; then
        continue
    fi
    echo "building nisshi $ver into $BROKERS/nisshi-$ver"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_INCREMENTAL=false \
        nice cargo install nisshi --version "$ver" --locked --ignore-rust-version \
            --no-default-features --features dynostore \
            --root "$BROKERS/nisshi-$ver" --target-dir "$BROKERS/target"
done
echo "brokers ready in $BROKERS"
