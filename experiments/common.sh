# experiments/common.sh: sourced by the study scripts. Parses the options every
# study shares, records the machine, and runs one `dsf train` whose CSV log is
# kept (a finished run, one whose log has its final row, is not run again, so an
# interrupted study picks up where it stopped; --force reruns everything).
#
#   --quick        the minutes-long size
#   --out DIR      where the logs, CSV and plots go (default experiments/out/STUDY[-quick])
#   --threads N    threads for every run (default 2)
#   --data DIR     the data set (each study has its default)
#   --force        rerun finished runs
# Anything else is left in $REST for the study, one argument a line, which
# study_options parses (or the study itself, with  IFS=$NL; set -- $REST; unset IFS).
QUICK="" OUT="" THREADS=2 DATA="" FORCE="" REST=""
NL='
'
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DSF=${DSF:-build/dsf}

parse_common() {  # parse_common STUDY "$@"
    study=$1
    shift
    ALL_ARGS="$*"
    while [ $# -gt 0 ]; do
        case $1 in
        --quick) QUICK=1 ;;
        --out) OUT=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --data) DATA=$2; shift ;;
        --force) FORCE=1 ;;
        -h | --help) usage; exit 0 ;;
        *) REST="$REST${REST:+$NL}$1" ;;
        esac
        shift
    done
    [ -n "$OUT" ] || OUT=experiments/out/$study${QUICK:+-quick}
    mkdir -p "$OUT/logs"
    [ -x "$DSF" ] || make
}

# study_options STUDY 'name:VAR ...': the study's own options, `--name VALUE`
# each, from $REST into VAR; anything else is a usage error.
study_options() {
    study=$1 spec=$2
    IFS=$NL
    # shellcheck disable=SC2086  # one argument a line
    set -- $REST
    unset IFS
    while [ $# -gt 0 ]; do
        var=""
        for s in $spec; do
            [ "--${s%%:*}" != "$1" ] || var=${s#*:}
        done
        [ -n "$var" ] || { echo "$study.sh: unknown option $1" >&2; usage >&2; exit 2; }
        [ $# -ge 2 ] || { echo "$study.sh: $1 needs a value" >&2; exit 2; }
        eval "$var=\$2"
        shift 2
    done
}

# record_machine: appends the machine, its load and the command to $OUT/machine.txt,
# one block per call, so a study run in several calls keeps every command.
record_machine() {
    {
        [ ! -s "$OUT/machine.txt" ] || echo
        echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; runs use $THREADS threads"
        echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        "$DSF" version
        echo "command: sh $0 $ALL_ARGS"
    } | tee -a "$OUT/machine.txt"
}

# run_train NAME ARGS...: `dsf train ARGS --log $OUT/logs/NAME.csv`, output in
# $OUT/logs/NAME.out, skipped when NAME.csv already ends in its final row (the
# test row, or the last valid row under --no-test). Returns 0 even when the run
# fails (a diverged run is a result), after saying so.
run_train() {
    name=$1
    shift
    log=$OUT/logs/$name.csv
    if [ -z "$FORCE" ] && [ -f "$log" ] && [ -f "$OUT/logs/$name.done" ]; then
        echo "   $name: done before, kept ($log)"
        return 0
    fi
    rm -f "$log" "$OUT/logs/$name.done"
    echo "   $name: $DSF train $*"
    if "$DSF" train "$@" --log "$log" >"$OUT/logs/$name.out" 2>&1; then
        touch "$OUT/logs/$name.done"
    else
        echo "   $name failed: $(tail -n 1 "$OUT/logs/$name.out")"
        echo "failed" >"$OUT/logs/$name.done"
    fi
}

# Resumable runs, for the studies that save a checkpoint every epoch and go on from
# it when run again (ptb_medium, paper_ptb, fashion). queue_start empties the queue;
# queue_run NAME TAG CKPT CMD FRESH REST adds `dsf CMD (FRESH | --resume CKPT) REST
# --save CKPT --log OUT/logs/NAME.csv` unless NAME.done already holds TAG (the
# length the run was asked for) or its log has rows but its checkpoint is gone (a
# partial result, kept); --force starts it anew. run_queue JOBS runs the
# queue, JOBS at a time, each run's output in OUT/logs/NAME.out, and writes TAG
# into NAME.done when a run finishes.
queue_start() { : >"$OUT/runs.txt"; }

queue_run() {
    name=$1 tag=$2 ck=$3 cmd=$4 fresh=$5 rest=$6
    if [ -n "$FORCE" ]; then rm -f "$ck" "$ck".* "$OUT/logs/$name".*; fi
    if [ "$(cat "$OUT/logs/$name.done" 2>/dev/null)" = "$tag" ]; then
        echo "   $name: done before, kept"
        return 0
    fi
    if [ -f "$ck" ]; then
        from="--resume $ck"
    elif [ -s "$OUT/logs/$name.csv" ]; then
        # A log without its checkpoint: a run stopped on a machine that is gone. Its
        # rows are a result; starting again would erase them.
        echo "   $name: a partial log ($OUT/logs/$name.csv) but no checkpoint $ck; kept (--force starts it again)"
        return 0
    else
        from=$fresh
    fi
    echo "$name $tag $cmd $from $rest --save $ck --log $OUT/logs/$name.csv" >>"$OUT/runs.txt"
}

run_queue() {
    echo "$(wc -l <"$OUT/runs.txt") runs to do, $1 at a time"
    # shellcheck disable=SC2016
    xargs -r -P "$1" -L 1 sh -c 'name=$1; tag=$2; shift 2; echo "   $name"; if "$0" "$@" >>"'"$OUT"'/logs/$name.out" 2>&1; then echo "$tag" >"'"$OUT"'/logs/$name.done"; else echo "   $name stopped: $(tail -n 1 "'"$OUT"'/logs/$name.out")"; fi' "$DSF" <"$OUT/runs.txt"
}
