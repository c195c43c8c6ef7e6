#!/usr/bin/env bash
# Builds and runs the libFuzzer targets under ASan and UBSan.
#   tests/fuzz/run.sh SECONDS [TARGET...]     (no TARGET: every target listed below)
# Each target is tests/fuzz/fuzz_<target>.c, compiled with clang together with the component
# sources it needs (FUZZ_SOURCES) into build-fuzz/fuzz_<target> (FUZZ_OUT overrides the
# directory; CTest points it into its build tree so that two builds never share a binary). It runs
# for SECONDS from a temporary copy of tests/fuzz/corpus/<target>/ (the seeds in the repository are
# never written), with tests/fuzz/<target>.dict when there is one. Any crash, leak, sanitizer
# report or timeout fails the script; the reproducer is kept in build-fuzz/artifacts/<target>/.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

# target -> the sources linked with its harness (paths from the repository root; globs allowed).
# To add a target: write tests/fuzz/fuzz_<name>.c, a seed corpus in tests/fuzz/corpus/<name>/,
# and one line here.
declare -A FUZZ_SOURCES=(
    [soql]="internal/soql/*.c internal/value/value.c internal/util/util.c"
    [config]="internal/config/config.c internal/soql/*.c internal/event/*.c internal/value/value.c internal/util/util.c"
    [codec]="internal/codec/*.c internal/event/*.c internal/command/command.c internal/value/value.c internal/util/util.c"
    [event]="internal/event/*.c internal/value/value.c internal/util/util.c"
)
# Extra libraries per target, if any (e.g. [codec]="-ljansson").
declare -A FUZZ_LIBS=(
    [soql]="-lm"
    [config]="-lyaml -ljansson -lm -lpthread"
    [codec]="-lavro -ljansson -lcurl -lm -lpthread"
    [event]="-ljansson -lm -lpthread"
)
# Files compiled into a target as C string constants, as CMake's pv_embed does: "SYMBOL=path ...".
declare -A FUZZ_EMBED=(
    [codec]="pv_user_change_event_avsc=schemas/UserChangeEvent.avsc pv_gong_command_avsc=schemas/GongCommand.avsc"
    [config]="pv_user_change_event_avsc=schemas/UserChangeEvent.avsc"
    [event]="pv_user_change_event_avsc=schemas/UserChangeEvent.avsc"
)

usage() {
    echo "usage: tests/fuzz/run.sh SECONDS [TARGET...]   targets: ${!FUZZ_SOURCES[*]}" >&2
    exit 2
}

[[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || usage
fuzz_seconds=$1
shift
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(printf '%s\n' "${!FUZZ_SOURCES[@]}" | sort)
fi

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "run.sh: $CC not found: apt-get install clang (or run deploy/dev/install-deps.sh)" >&2
    exit 1
fi

out="${FUZZ_OUT:-$root/build-fuzz}"
mkdir -p "$out"
failed=()
for t in "${targets[@]}"; do
    if [[ -z ${FUZZ_SOURCES[$t]+x} ]]; then
        echo "run.sh: unknown target '$t' (known: ${!FUZZ_SOURCES[*]})" >&2
        exit 2
    fi
    harness="tests/fuzz/fuzz_$t.c"
    bin="$out/fuzz_$t"
    echo "== fuzz $t: building $bin"
    embedded=()
    for pair in ${FUZZ_EMBED[$t]:-}; do
        mkdir -p "$out/embed/$t"
        c="$out/embed/$t/${pair%%=*}.c"
        cmake -DIN="$root/${pair#*=}" -DOUT="$c" -DSYM="${pair%%=*}" -P cmake/embed.cmake
        embedded+=("$c")
    done
    # shellcheck disable=SC2086  # the sources list is meant to split and glob
    "$CC" -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -fno-omit-frame-pointer -Wall -Wextra -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
        -I internal "$harness" ${FUZZ_SOURCES[$t]} "${embedded[@]}" -o "$bin" ${FUZZ_LIBS[$t]:-}

    work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$t.XXXXXX")"
    if [[ -d tests/fuzz/corpus/$t ]]; then
        cp -R "tests/fuzz/corpus/$t/." "$work/"
    fi
    artifacts="$out/artifacts/$t"
    mkdir -p "$artifacts"
    dict=()
    [[ -f tests/fuzz/$t.dict ]] && dict=("-dict=tests/fuzz/$t.dict")

    echo "== fuzz $t: running for ${fuzz_seconds}s from $(find "$work" -type f | wc -l) seeds"
    rc=0
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
        "$bin" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$work" \
        >"$out/fuzz_$t.log" 2>&1 || rc=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+[[:space:]]+DONE)' \
        "$out/fuzz_$t.log" || true
    rm -rf "$work"
    if [[ $rc -ne 0 ]]; then
        echo "== fuzz $t: FAILED (exit $rc); log $out/fuzz_$t.log, reproducer in $artifacts/" >&2
        grep -E 'ERROR|SUMMARY|check failed|runtime error' "$out/fuzz_$t.log" | head -20 >&2 || true
        failed+=("$t")
    else
        echo "== fuzz $t: clean"
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
