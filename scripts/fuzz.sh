#!/bin/sh
# fuzz.sh - run libFuzzer targets for a while on top of the committed corpus.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
# New inputs go to a scratch directory, not into the repository; a crash
# leaves its input in BUILD_DIR/fuzz-artifacts/ and fails the run.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=$1
secs=$2
shift 2
targets=${*:-import http csv mqtt lpc wakeup gwa events request cosem}
mkdir -p "$build/fuzz-artifacts"
for t in $targets; do
	bin="$build/tests/fuzz_$t"
	[ -x "$bin" ] || { echo "fuzz: $bin missing (configure with -DCLSM_FUZZ=ON and clang)" >&2; exit 1; }
	scratch=$(mktemp -d)
	echo "fuzz: $t for ${secs}s"
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$build/fuzz-artifacts/$t-" "$scratch" "$here/tests/fuzz/corpus/$t" \
		2>"$build/fuzz-artifacts/$t.log" || {
		tail -50 "$build/fuzz-artifacts/$t.log" >&2
		rm -rf "$scratch"
		exit 1
	}
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$build/fuzz-artifacts/$t.log" || true
	rm -rf "$scratch"
done
