#!/bin/sh
# beforeafter.sh BASE HEAD [RUNS] — the hot-path benchmarks of two commits,
# compared.
#
# Each commit is checked out in a temporary git worktree, and the test
# binaries of its paywall and limiter packages are built there (root module,
# GOWORK=off). The binaries then run alternately — BASE, HEAD, BASE, HEAD… —
# RUNS times each (default 6, at least 6), so that a slow minute on a shared
# machine falls on both commits alike; benchstat compares the results. The
# raw results are kept in $OUT (default a new temporary directory), as
# base.txt and head.txt.
#
# Benchmarks: paywall BenchmarkStack (Authenticate → Require → Charge(1) on
# the memory store, serial and parallel) and limiter BenchmarkHandler (one
# bucket or 10,000, serial and parallel). BENCHTIME sets -test.benchtime
# (default 200000x).
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 BASE HEAD [RUNS]" >&2
	exit 2
fi
base=$1
head=$2
runs=${3:-6}
if [ "$runs" -lt 6 ]; then
	echo "$0: RUNS must be at least 6" >&2
	exit 2
fi
benchtime=${BENCHTIME:-200000x}
repo=$(git rev-parse --show-toplevel)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
work=$(mktemp -d)
cleanup() {
	for w in base head; do
		[ -d "$work/$w" ] && git -C "$repo" worktree remove --force "$work/$w" || true
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

bin=$(go env GOPATH)/bin
benchstat=benchstat
command -v benchstat >/dev/null 2>&1 || benchstat=$bin/benchstat
if [ ! -x "$benchstat" ] && ! command -v "$benchstat" >/dev/null 2>&1; then
	echo "$0: benchstat not found; go install golang.org/x/perf/cmd/benchstat@latest" >&2
	exit 1
fi

# build COMMIT NAME: the test binaries of COMMIT in $work/NAME.
build() {
	git -C "$repo" worktree add --quiet --detach "$work/$2" "$1"
	(
		cd "$work/$2"
		GOWORK=off go test -c -o "$work/$2-paywall.test" ./paywall
		GOWORK=off go test -c -o "$work/$2-limiter.test" ./limiter
	)
	echo "$2: $(git -C "$work/$2" log -1 --format='%h %s' | cut -c1-72)" >&2
}
build "$base" base
build "$head" head

# bench NAME: one run of NAME's binaries, appended to $out/NAME.txt.
bench() {
	(
		cd "$work/$1/paywall" &&
			"$work/$1-paywall.test" -test.run '^$' -test.bench '^BenchmarkStack$' -test.benchmem -test.benchtime "$benchtime"
		cd "$work/$1/limiter" &&
			"$work/$1-limiter.test" -test.run '^$' -test.bench '^BenchmarkHandler$' -test.benchmem -test.benchtime "$benchtime"
	) >>"$out/$1.txt"
}
: >"$out/base.txt"
: >"$out/head.txt"
i=1
while [ "$i" -le "$runs" ]; do
	echo "run $i of $runs" >&2
	bench base
	bench head
	i=$((i + 1))
done

echo "results in $out" >&2
"$benchstat" base="$out/base.txt" head="$out/head.txt"
