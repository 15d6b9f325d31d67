#!/usr/bin/env bash
# Fuzzes every decoder of outside input with cargo-fuzz (libFuzzer). See ops/FUZZING.md.
#
#   bash ops/fuzz.sh                          # CI: regressions, then 15 s per target
#   bash ops/fuzz.sh --seconds 3600           # the longer run: an hour per target
#   bash ops/fuzz.sh --seconds 600 config     # some targets only, by name
#   bash ops/fuzz.sh --regressions-only       # only replay the committed inputs
#   bash ops/fuzz.sh --sanitizer address      # with AddressSanitizer (about 5x slower)
#   bash ops/fuzz.sh --stable                 # stable + RUSTC_BOOTSTRAP=1 even if nightly is there
#
# The targets are the files <crate>/fuzz/fuzz_targets/*.rs of schemas, compliance and router. Each
# fuzz crate stands alone (its own [workspace] and Cargo.lock, excluded from the root workspace).
# All three build into one directory of their own, target/fuzz (or $FUZZ_TARGET_DIR), apart from
# the workspace's target/debug and target/release: the router's fuzz build compiles nearly
# everything the other two need, so sharing saves minutes on a cold build.
#
# No sanitizer by default: every crate of the workspace forbids unsafe code, so what fuzzing finds
# here is panics, failed assertions, timeouts and memory blow-ups, which libFuzzer catches without
# one; AddressSanitizer makes a build about a quarter slower and runs about 5x slower.
#
# First, always, the regression pass: every target runs once (-runs=0) over its seed corpus
# <crate>/fuzz/corpus/<target>/ and the inputs that once crashed it, <crate>/fuzz/regressions/<target>/.
# Then each target is fuzzed for --seconds, starting from those and from what earlier runs on this
# machine found (<crate>/fuzz/work/corpus/<target>/, not committed; new inputs are written there
# only). A crash, an assertion, a timeout (10 s for one input) or running out of memory is a
# failure: libFuzzer leaves the input in <crate>/fuzz/artifacts/<target>/, this script names it,
# goes on with the other targets and exits 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=15
sanitizer=none
regressions_only=false
stable=false
target_dir=${FUZZ_TARGET_DIR:-$root/target/fuzz}
selected=()
while (($#)); do
    case "$1" in
        --seconds)
            seconds=${2:?--seconds needs a number}
            shift 2
            ;;
        --seconds=*)
            seconds=${1#--seconds=}
            shift
            ;;
        --regressions-only)
            regressions_only=true
            shift
            ;;
        --stable)
            stable=true
            shift
            ;;
        --sanitizer)
            sanitizer=${2:?--sanitizer needs none, address, ...}
            shift 2
            ;;
        --sanitizer=*)
            sanitizer=${1#--sanitizer=}
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "unknown option $1 (see --help)" >&2
            exit 2
            ;;
        *)
            selected+=("$1")
            shift
            ;;
    esac
done
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "--seconds takes a positive whole number, not '$seconds'" >&2
    exit 2
fi

# Every target as "crate target", in a fixed order.
targets=()
for crate in schemas compliance router; do
    for file in "$crate"/fuzz/fuzz_targets/*.rs; do
        targets+=("$crate $(basename "$file" .rs)")
    done
done
if ((${#selected[@]})); then
    chosen=()
    for name in "${selected[@]}"; do
        found=false
        for entry in "${targets[@]}"; do
            if [[ "${entry#* }" == "$name" ]]; then
                chosen+=("$entry")
                found=true
            fi
        done
        if ! $found; then
            echo "no fuzz target '$name'; there are: $(printf '%s ' "${targets[@]#* }")" >&2
            exit 2
        fi
    done
    targets=("${chosen[@]}")
fi

# cargo-fuzz's instrumentation (-Z and -C llvm-args flags, sanitizers) needs a nightly compiler.
# Use the nightly toolchain when rustup has one. A bare machine has only stable: there
# RUSTC_BOOTSTRAP=1 makes the stable compiler accept the nightly-only flags, and the build is the
# same (release, debug assertions, coverage instrumentation; stable ships the AddressSanitizer
# runtime too) — checked with stable 1.95. That switch is meant for building the compiler itself;
# here it is set for this script's fuzz builds only, never for the workspace's own builds.
if ! $stable && rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    echo "==> fuzzing with $(rustup run nightly rustc --version)"
else
    toolchain=()
    export RUSTC_BOOTSTRAP=1
    echo "==> fuzzing with $(rustc --version) and RUSTC_BOOTSTRAP=1 (no nightly, or --stable)"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    # Installed with the default toolchain and no RUSTC_BOOTSTRAP: it is an ordinary program.
    env -u RUSTC_BOOTSTRAP cargo install cargo-fuzz --locked --version 0.13.2
fi

# The same flags for `build` and `run`, so that running never rebuilds.
build_flags=(--sanitizer "$sanitizer" --target-dir "$target_dir")

# The crates whose targets were chosen, each built once (all its targets share the dependencies).
crates=()
for entry in "${targets[@]}"; do
    crate=${entry% *}
    [[ " ${crates[*]-} " == *" $crate "* ]] || crates+=("$crate")
done
for crate in "${crates[@]}"; do
    echo "==> building $crate/fuzz"
    start=$SECONDS
    cargo "${toolchain[@]}" fuzz build "${build_flags[@]}" --fuzz-dir "$root/$crate/fuzz"
    echo "    built in $((SECONDS - start)) s"
done

failures=()
# Runs one target with libFuzzer arguments; logs to <crate>/fuzz/work/logs/<target>.<what>.log.
run_target() {
    local crate=$1 target=$2 what=$3
    shift 3
    local fuzz_dir="$root/$crate/fuzz"
    local log="$fuzz_dir/work/logs/$target.$what.log"
    mkdir -p "$fuzz_dir/work/logs"
    local inputs=("$fuzz_dir/corpus/$target")
    if [[ -d "$fuzz_dir/regressions/$target" ]]; then
        inputs+=("$fuzz_dir/regressions/$target")
    fi
    if [[ "$what" == fuzz ]]; then
        # New inputs go to the first directory: the local working corpus, never the seeds.
        mkdir -p "$fuzz_dir/work/corpus/$target"
        inputs=("$fuzz_dir/work/corpus/$target" "${inputs[@]}")
    fi
    local start=$SECONDS status=0
    cargo "${toolchain[@]}" fuzz run "${build_flags[@]}" --fuzz-dir "$fuzz_dir" "$target" "${inputs[@]}" -- \
        -timeout=10 -print_final_stats=1 "$@" >"$log" 2>&1 || status=$?
    local runs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if ((status == 0)); then
        echo "    ok: ${runs:-?} runs in $((SECONDS - start)) s"
    else
        echo "    FAILED (exit $status) after $((SECONDS - start)) s; the end of $log:"
        # A timeout or an out-of-memory has no panic: none of these greps may stop the script.
        {
            grep -E -A 3 'panicked at' "$log" | head -n 6 || true
            grep -E 'ERROR: libFuzzer|SUMMARY|Test unit written to|Base64' "$log" | tail -n 4 || true
        } | sed 's/^/      /' || true
        failures+=("$crate/$target ($what): see $log and $fuzz_dir/artifacts/$target/")
    fi
}

count=${#targets[@]}
index=0
for entry in "${targets[@]}"; do
    index=$((index + 1))
    echo "==> [$index/$count] regressions: ${entry% *} ${entry#* }"
    run_target "${entry% *}" "${entry#* }" regressions -runs=0
done
if ! $regressions_only; then
    index=0
    for entry in "${targets[@]}"; do
        index=$((index + 1))
        echo "==> [$index/$count] fuzzing ${entry% *} ${entry#* } for $seconds s"
        run_target "${entry% *}" "${entry#* }" fuzz -max_total_time="$seconds"
    done
fi

if ((${#failures[@]})); then
    echo "==> ${#failures[@]} failed:"
    printf '    %s\n' "${failures[@]}"
    echo "    Reproduce: cargo ${toolchain[*]-} fuzz run ${build_flags[*]} --fuzz-dir <crate>/fuzz <target> <artifact>"
    echo "    Minimise:  cargo ${toolchain[*]-} fuzz tmin ${build_flags[*]} --fuzz-dir <crate>/fuzz <target> <artifact>"
    echo "    then keep it in <crate>/fuzz/regressions/<target>/ (see ops/FUZZING.md)."
    exit 1
fi
echo "==> every fuzz target passed"
