#!/bin/sh
# tests/cli.sh DSF: the command line end to end: training on small generated
# corpora, evaluation, sampling, checkpoints, bit-identical resume and the
# one-line errors on bad input.
DSF=${1:-build/dsf}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
passed=0 failed=0 skipped=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
# skip NAME WHY: counted and printed; under CI (which installs numpy and torch) a
# skipped check that needs them is a failure
skip() {
    if [ "${CI:-}" = true ] && [ "${2#*numpy}" != "$2" ]; then
        failed=$((failed + 1)); echo "FAIL $1 (skipped under CI: $2)"
    else
        skipped=$((skipped + 1)); echo "skip $1 ($2)"
    fi
}
HAVE_NUMPY=0
"$PY" -c "import numpy" 2>/dev/null && HAVE_NUMPY=1
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "$tmp/err" ] && sed 's/^/     /' "$tmp/err" | tail -n 5; }

# expect_ok NAME CMD...: exit 0
expect_ok() {
    name=$1; shift
    if "$@" >"$tmp/out" 2>"$tmp/err"; then ok "$name"; else fail "$name (exit $?)"; fi
}
# expect_err NAME PATTERN CMD...: non-zero exit, one line on stderr matching PATTERN, no crash
expect_err() {
    name=$1; pat=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] && grep -q -- "$pat" "$tmp/err"; then
        ok "$name"
    else
        fail "$name (exit $rc, $lines lines on stderr, wanted /$pat/)"
    fi
}

. "$(dirname "$0")/words.sh"
mkdir -p "$tmp/words"
mkcorpus "$tmp/words/train.txt" 600 1
mkcorpus "$tmp/words/valid.txt" 60 2
mkcorpus "$tmp/words/test.txt" 60 3
W="--data $tmp/words --layers 2 --emb 16 --hidden 16 --batch 4 --seq 8 --threads 2 --lr 1"

# resumes NAME CKPT ARGS...: trains 20 steps straight, and again stopping after
# step 9 into CKPT then resuming; the two logs must agree step for step.
resumes() {
    name=$1 ck=$2; shift 2
    rm -f "$tmp/ra.csv" "$tmp/rb.csv"
    "$DSF" train "$@" --steps 20 --log "$tmp/ra.csv" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
    "$DSF" train "$@" --steps 20 --stop-at 9 --log "$tmp/rb.csv" --log-every 1 --save "$ck" 2>"$tmp/err" >/dev/null
    "$DSF" train --data "$tmp/words" --resume "$ck" --log "$tmp/rb.csv" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
    if [ "$(grep -c '^train,' "$tmp/ra.csv")" -eq 20 ] && \
       [ "$(cut -d, -f1,3,5 "$tmp/ra.csv")" = "$(cut -d, -f1,3,5 "$tmp/rb.csv")" ]; then
        ok "$name: trains, resume is bit-identical"
    else
        fail "$name: trains, resume is bit-identical"
    fi
}

# --stop-at: saved, exit 0, no test row (experiments/paper_ptb.sh relies on the exit status)
if "$DSF" train $W --steps 6 --stop-at 3 --save "$tmp/sa.safetensors" --log "$tmp/sa.csv" \
        >/dev/null 2>"$tmp/err" && grep -q "stopped (--stop-at) after step 3 of 6" "$tmp/err" && \
        [ -s "$tmp/sa.safetensors" ] && ! grep -q "^test," "$tmp/sa.csv"; then
    ok "train --stop-at 3: saved, exit 0, no test"
else
    fail "train --stop-at 3: saved, exit 0, no test"
fi

# --- help and usage errors
expect_ok "help" "$DSF" --help
for c in train eval sample grad gradstats bench task; do expect_ok "$c --help" "$DSF" $c --help; done
expect_err "unknown command" "unknown command" "$DSF" frobnicate

# --- the recurrent kernel: chosen from the CPU, DSF_KERNEL obeyed, a bad one refused;
# the same small training under the generic kernel and the chosen one
if "$DSF" version | grep -q "recurrent kernel \(avx512\|avx2\|generic\)$"; then ok "version names the kernel"; else fail "version names the kernel"; fi
if DSF_KERNEL=generic "$DSF" version | grep -q "recurrent kernel generic$"; then ok "DSF_KERNEL=generic"; else fail "DSF_KERNEL=generic"; fi
expect_err "DSF_KERNEL unknown" "DSF_KERNEL=sse9: expected avx512, avx2 or generic" env DSF_KERNEL=sse9 "$DSF" version
DSF_KERNEL=generic "$DSF" train $W --steps 6 --no-test --seed 4 --log "$tmp/k_gen.csv" >/dev/null 2>&1
for k in avx512 avx2; do
    if DSF_KERNEL=$k "$DSF" version >/dev/null 2>&1; then
        DSF_KERNEL=$k "$DSF" train $W --steps 6 --no-test --seed 4 --log "$tmp/k_$k.csv" >/dev/null 2>&1
        if awk -F, 'NR == FNR { if ($1 == "valid") a = $5; next } $1 == "valid" { b = $5 }
                    END { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d < 1e-4 * a) }' "$tmp/k_gen.csv" "$tmp/k_$k.csv"
        then ok "training under $k = generic"; else fail "training under $k = generic"; fi
    else
        expect_err "DSF_KERNEL=$k refused without it" "this CPU does not have it" env DSF_KERNEL=$k "$DSF" version
    fi
done
expect_err "unknown option" "unknown option '--bogus'" "$DSF" train --data "$tmp/words" --bogus 1
expect_err "non-numeric value" "expects an integer" "$DSF" train --data "$tmp/words" --hidden abc
expect_err "zero size" "must be between" "$DSF" train --data "$tmp/words" --hidden 0
expect_err "negative lr" "must be between" "$DSF" train --data "$tmp/words" --lr -1
expect_err "nan lr" "finite number" "$DSF" train --data "$tmp/words" --lr nan
expect_err "missing value" "needs a value" "$DSF" train --data
expect_err "unknown method" "unknown method" "$DSF" train $W --method nope
expect_err "unknown feedback" "unknown feedback" "$DSF" train $W --feedback nope
expect_err "missing data" "$tmp/none" "$DSF" train --data "$tmp/none"
: >"$tmp/empty.txt"
expect_err "empty data" "empty" "$DSF" train --data "$tmp/empty.txt"
expect_err "too short for batch" "tokens" "$DSF" train --data "$tmp/words" --batch 100000
expect_err "absurd size" "GiB" "$DSF" train --data "$tmp/words" --hidden 1000000 --emb 1000000
expect_err "unknown device" "unknown device 'gpu'" "$DSF" train --data "$tmp/words" --device gpu
if "$DSF" bench --device cuda --vocab 50 --emb 16 --hidden 32 --batch 4 --seq 8 --steps 1 \
    --warmup 0 --gemm-size 64 2>&1 | grep -q "built without CUDA"; then
    expect_err "train --device cuda without CUDA" "built without CUDA (make CUDA=1)" \
        "$DSF" train --data "$tmp/words" --device cuda
    expect_err "eval --device cuda without CUDA" "built without CUDA (make CUDA=1)" \
        "$DSF" eval --ckpt "$tmp/none.safetensors" --data "$tmp/words" --device cuda
fi

# --- training, evaluation and sampling
expect_ok "train word bptt" "$DSF" train $W --method bptt --epochs 2 --log-every 10 --save "$tmp/w.safetensors" --log "$tmp/w.csv"
if grep -q "^test loss [0-9.]* ppl [0-9.]*" "$tmp/out"; then ok "train prints test perplexity"; else fail "train prints test perplexity"; fi
if head -n 1 "$tmp/w.csv" | grep -q "^kind,epoch,step,tokens,loss" && grep -q "^valid,2," "$tmp/w.csv" \
    && grep -q "^train," "$tmp/w.csv" && grep -q "^test," "$tmp/w.csv"; then
    ok "log has header, train, valid and test rows"
else
    fail "log has header, train, valid and test rows"
fi
first=$(grep '^train,' "$tmp/w.csv" | head -n 1 | cut -d, -f5)
last=$(grep '^train,' "$tmp/w.csv" | tail -n 1 | cut -d, -f5)
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.3) }'; then ok "training lowers the loss ($first -> $last)"; else fail "training lowers the loss ($first -> $last)"; fi
[ -f "$tmp/w.best.safetensors" ] && ok "best model written" || fail "best model written"
expect_ok "eval valid" "$DSF" eval --ckpt "$tmp/w.safetensors" --data "$tmp/words" --split valid
grep -qE "^loss [0-9.]+ ppl [0-9.]+$" "$tmp/out" && ok "eval prints loss and ppl" || fail "eval prints loss and ppl"
best=$(grep '^valid,' "$tmp/w.csv" | cut -d, -f5 | sort -g | head -n 1)
"$DSF" eval --ckpt "$tmp/w.best.safetensors" --data "$tmp/words" --split valid >"$tmp/out" 2>"$tmp/err"
got=$(sed -E 's/^loss ([0-9.]+) .*/\1/' "$tmp/out")
if awk -v a="$best" -v b="$got" 'BEGIN { d = a - b; exit !(d < 1e-4 && d > -1e-4) }'; then ok "eval of best model reproduces the logged validation loss"; else fail "eval of best model reproduces the logged validation loss ($best vs $got)"; fi
expect_ok "eval test split" "$DSF" eval --ckpt "$tmp/w.safetensors" --data "$tmp/words" --split test
expect_err "eval conflicting level" "conflicts" "$DSF" eval --ckpt "$tmp/w.safetensors" --data "$tmp/words" --level char
expect_ok "eval repeated level" "$DSF" eval --ckpt "$tmp/w.safetensors" --data "$tmp/words" --level word
expect_ok "sample" "$DSF" sample --ckpt "$tmp/w.safetensors" --prompt "the cat" --tokens 20 --seed 3
n=$(wc -w <"$tmp/out")
[ "$n" -ge 10 ] && ok "sample writes words ($n)" || fail "sample writes words ($n)"
"$DSF" sample --ckpt "$tmp/w.safetensors" --tokens 30 --seed 3 >"$tmp/s1" 2>&1
"$DSF" sample --ckpt "$tmp/w.safetensors" --tokens 30 --seed 3 >"$tmp/s2" 2>&1
cmp -s "$tmp/s1" "$tmp/s2" && ok "sample is deterministic for a seed" || fail "sample is deterministic for a seed"
expect_err "sample unknown prompt word" "not in the model's vocabulary" "$DSF" sample --ckpt "$tmp/w.safetensors" --prompt "zebra"

# --- character level
expect_ok "train char dsf" "$DSF" train --data builtin:recall:4 --level char --layers 1 --emb 8 --hidden 24 --batch 8 --seq 16 --steps 40 --method dsf --scan blelloch --save "$tmp/c.safetensors" --threads 2
expect_ok "eval char" "$DSF" eval --ckpt "$tmp/c.safetensors" --data builtin:recall:4
grep -qE "^loss [0-9.]+ ppl [0-9.]+ bpc [0-9.]+$" "$tmp/out" && ok "char eval prints bpc" || fail "char eval prints bpc"
expect_ok "sample char" "$DSF" sample --ckpt "$tmp/c.safetensors" --tokens 40
expect_err "word level on builtin" "character-level" "$DSF" train --data builtin:recall --level word

# --- gradstats: cosines against bptt; dsf with zero feedback must report what ft reports
expect_ok "gradstats" "$DSF" gradstats --ckpt "$tmp/c.safetensors" --data builtin:recall:4 --batches 3 --feedback zero,ssm,uniform:0,0.5
ft_row=$(grep '^ft ' "$tmp/out" | awk '{print $2, $3}')
zero_row=$(grep '^dsf zero ' "$tmp/out" | awk '{print $3, $4}')
if [ -n "$ft_row" ] && [ "$ft_row" = "$zero_row" ] && grep -q '^dsf uniform:0,0.5 ' "$tmp/out"; then
    ok "gradstats: dsf zero equals ft ($ft_row)"
else
    fail "gradstats: dsf zero equals ft ('$ft_row' vs '$zero_row')"
fi

# --- checkpoints: the Python reader, damage, conflicts
if [ $HAVE_NUMPY = 1 ]; then
    expect_ok "checkpoint passes the independent safetensors reader" "$PY" tests/st_py_check.py "$tmp/w.safetensors"
else
    skip "checkpoint passes the independent safetensors reader" "no numpy"
fi
cp "$tmp/w.safetensors" "$tmp/bad.safetensors"
size=$(wc -c <"$tmp/bad.safetensors")
printf '\377' | dd of="$tmp/bad.safetensors" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
expect_err "bit-flipped checkpoint" "checksum" "$DSF" eval --ckpt "$tmp/bad.safetensors" --data "$tmp/words"
head -c 1000 "$tmp/w.safetensors" >"$tmp/trunc.safetensors"
expect_err "truncated checkpoint" "trunc.safetensors" "$DSF" eval --ckpt "$tmp/trunc.safetensors" --data "$tmp/words"
expect_err "missing checkpoint" "nothere" "$DSF" eval --ckpt "$tmp/nothere.safetensors" --data "$tmp/words"
expect_err "resume with conflicting hidden" "--hidden 32 conflicts" "$DSF" train --data "$tmp/words" --hidden 32 --resume "$tmp/w.safetensors"
expect_err "resume with conflicting method" "--method ft conflicts" "$DSF" train --data "$tmp/words" --method ft --resume "$tmp/w.safetensors"
expect_err "resume with conflicting scan" "--scan blelloch conflicts" "$DSF" train --data "$tmp/words" --scan blelloch --resume "$tmp/w.safetensors"

# --- hostile inputs: each ends in one clear line, never a crash, a hang, a replaced
# device node or a silent NaN
"$DSF" train $W --steps 30 --stop-at 20 --save "$tmp/h.safetensors" >/dev/null 2>&1
mkdir -p "$tmp/small"
head -n 40 "$tmp/words/train.txt" >"$tmp/small/train.txt"
cp "$tmp/words/valid.txt" "$tmp/words/test.txt" "$tmp/small/"
expect_err "resume on data with fewer steps per epoch" "steps per epoch" "$DSF" train --data "$tmp/small" --resume "$tmp/h.safetensors"
mkfifo "$tmp/fifo"
expect_err "a FIFO as --ckpt does not hang" "not a regular file" timeout 20 "$DSF" eval --ckpt "$tmp/fifo" --data "$tmp/words"
expect_err "a FIFO as --resume does not hang" "not a regular file" timeout 20 "$DSF" train --data "$tmp/words" --resume "$tmp/fifo"
expect_err "a FIFO as --init does not hang" "not a regular file" timeout 20 "$DSF" train $W --init "$tmp/fifo"
expect_err "--save onto a FIFO is refused" "not a regular file" "$DSF" train $W --steps 2 --save "$tmp/fifo"
if [ -p "$tmp/fifo" ]; then ok "the FIFO is still a FIFO"; else fail "the FIFO is still a FIFO"; fi
cp "$tmp/words/valid.txt" "$tmp/one.txt"
expect_err "--save onto the data file is refused" "is the data file" "$DSF" train --data "$tmp/one.txt" --steps 2 --save "$tmp/one.txt"
expect_err "--log onto the data file is refused" "is the data file" "$DSF" train --data "$tmp/words" --steps 2 --log "$tmp/words/train.txt"
if cmp -s "$tmp/one.txt" "$tmp/words/valid.txt"; then ok "the data files are intact"; else fail "the data files are intact"; fi
if [ -w /dev/full ]; then
    expect_err "--log /dev/full fails, saying so" "cannot write log /dev/full" "$DSF" train $W --steps 2 --no-test --log /dev/full
else
    skip "--log /dev/full fails, saying so" "no /dev/full"
fi
dead=$(sh -c 'echo $$')  # a process that has ended
: >"$tmp/st.safetensors.tmp.$dead"
: >"$tmp/st.safetensors.tmp.$$"
"$DSF" train $W --steps 2 --no-test --save "$tmp/st.safetensors" >/dev/null 2>&1
if [ ! -e "$tmp/st.safetensors.tmp.$dead" ] && [ -e "$tmp/st.safetensors.tmp.$$" ]; then
    ok "a save removes the temporary a killed save left (its process gone), not a live one's"
    rm -f "$tmp/st.safetensors.tmp.$$"
else
    fail "a save removes the temporary a killed save left (its process gone), not a live one's"
fi
printf 'one single line of words\n' >"$tmp/oneline.txt"
"$DSF" train --data "$tmp/oneline.txt" --batch 2 --seq 4 --steps 2 >"$tmp/out" 2>"$tmp/err"
if [ $? -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "too small to evaluate" "$tmp/err"; then
    ok "a split too small to evaluate is found before training"
else
    fail "a split too small to evaluate is found before training"
fi
if [ $HAVE_NUMPY = 1 ]; then
    # crafted checkpoints: a NaN weight, an Inf bias, a NaN moment, out-of-range settings, another cell
    "$PY" - "$tmp" <<'PY'
import sys
sys.path.insert(0, "tests")
import numpy as np, st_py_check as st
d = sys.argv[1]
t, meta = st.load(d + "/h.safetensors")
def save(name, change, meta_change=None):
    u = {k: v.copy() for k, v in t.items()}
    m = dict(meta)
    m.pop("dsf.checksum", None)
    change(u)
    if meta_change: m.update(meta_change)
    st.save(f"{d}/{name}.safetensors", u, m)
save("nan_w", lambda u: u["rnn.weight_hh_l0"].__setitem__((0, 0), np.nan))
save("inf_b", lambda u: u["decoder.bias"].__setitem__(3, np.inf))
save("neg_v", lambda u: None, None)
save("dropout2", lambda u: None, {"dsf.dropout": "2"})
save("clipneg", lambda u: None, {"dsf.clip": "-1"})
save("lrinf", lambda u: None, {"dsf.lr": "inf"})
save("lstm", lambda u: None, {"dsf.cell": "lstm"})
PY
    expect_err "sample refuses a NaN weight" "holds nan" "$DSF" sample --ckpt "$tmp/nan_w.safetensors" --tokens 5
    expect_err "eval refuses an Inf bias" "holds inf" "$DSF" eval --ckpt "$tmp/inf_b.safetensors" --data "$tmp/words"
    expect_err "--init refuses a NaN weight" "holds nan" "$DSF" train $W --steps 2 --init "$tmp/nan_w.safetensors"
    expect_err "--resume refuses a NaN weight" "holds nan" "$DSF" train --data "$tmp/words" --resume "$tmp/nan_w.safetensors"
    expect_err "resume refuses dropout 2" "out of range" "$DSF" train --data "$tmp/words" --resume "$tmp/dropout2.safetensors"
    expect_err "resume refuses clip -1" "out of range" "$DSF" train --data "$tmp/words" --resume "$tmp/clipneg.safetensors"
    expect_err "resume refuses an infinite lr" "out of range" "$DSF" train --data "$tmp/words" --resume "$tmp/lrinf.safetensors"
    expect_err "a cell that is not the tensors' is refused" "says cell lstm" "$DSF" eval --ckpt "$tmp/lstm.safetensors" --data "$tmp/words"
else
    skip "crafted checkpoints (NaN, Inf, ranges, cell)" "no numpy"
fi
"$DSF" train $W --optim adamw --steps 20 --stop-at 5 --save "$tmp/aw.safetensors" >/dev/null 2>&1
if [ $HAVE_NUMPY = 1 ] && "$PY" - "$tmp" <<'PY'
import sys
sys.path.insert(0, "tests")
import numpy as np, st_py_check as st
d = sys.argv[1]
t, meta = st.load(d + "/aw.safetensors")
meta.pop("dsf.checksum", None)
t["optim.exp_avg_sq.decoder.bias"][0] = -1.0
st.save(d + "/negv.safetensors", t, meta)
t["optim.exp_avg_sq.decoder.bias"][0] = 1.0
t["optim.exp_avg.encoder.weight"][0, 0] = np.nan
st.save(d + "/nanm.safetensors", t, meta)
PY
then
    expect_err "resume refuses a negative second moment" "must be finite and >= 0" "$DSF" train --data "$tmp/words" --resume "$tmp/negv.safetensors"
    expect_err "resume refuses a NaN moment" "holds nan" "$DSF" train --data "$tmp/words" --resume "$tmp/nanm.safetensors"
else
    skip "crafted optimizer moments" "no numpy"
fi

# --- numerical faults: non-finite steps are skipped, and too many in a row stop the run
"$DSF" train --data "$tmp/words" --layers 1 --emb 8 --hidden 8 --batch 4 --seq 8 --lr 1000000 --clip 0 --steps 50 --max-bad-steps 3 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && grep -q "step skipped" "$tmp/err" && \
    tail -n 1 "$tmp/err" | grep -q "3 consecutive non-finite steps"; then
    ok "non-finite steps are skipped, then training stops"
else
    fail "non-finite steps are skipped, then training stops (exit $rc)"
fi

# --- --init: start from given weights (a model file with the PyTorch names)
"$DSF" train $W --method ft --init "$tmp/w.safetensors" --stop-at 1 --log "$tmp/i1.csv" --log-every 1 >/dev/null 2>"$tmp/err"
"$DSF" eval --ckpt "$tmp/w.safetensors" --data "$tmp/words" --split train --batch 4 --seq 8 >"$tmp/out" 2>>"$tmp/err"
l1=$(grep '^train,' "$tmp/i1.csv" | cut -d, -f5) l0=$(sed -E 's/^loss ([0-9.]+) .*/\1/' "$tmp/out")
# the first step's loss is that of the given weights on the first batch: far below a fresh model's
if awk -v a="$l1" 'BEGIN { exit !(a < 1.5) }'; then ok "--init starts from the given weights (first loss $l1, model's train loss $l0)"; else fail "--init starts from the given weights (first loss $l1)"; fi
expect_err "--init with other shapes" "hidden 16" "$DSF" train --data "$tmp/words" --hidden 8 --emb 16 --init "$tmp/w.safetensors"

# --- bit-identical resume, for each method and for both optimizers, across an epoch boundary
per_epoch=$("$DSF" train $W --steps 1 --no-test 2>&1 | sed -nE 's/.*\(([0-9]+) per epoch\).*/\1/p')
total=$((per_epoch + per_epoch / 2))
half=$((per_epoch - 3))
for m in bptt ft dsf; do
    for o in sgd adamw; do
        a="$tmp/a_$m$o.csv" b="$tmp/b_$m$o.csv"
        "$DSF" train $W --method $m --optim $o --steps $total --log "$a" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
        "$DSF" train $W --method $m --optim $o --steps $total --stop-at $half --log "$b" --log-every 1 --save "$tmp/r.safetensors" 2>"$tmp/err" >/dev/null
        "$DSF" train $W --resume "$tmp/r.safetensors" --log "$b" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
        # step and loss of every training and validation row
        if [ "$(grep -c '^train,' "$a")" -eq "$total" ] && [ "$(grep -c '^valid,' "$a")" -eq 2 ] && \
           [ "$(cut -d, -f1,3,5 "$a")" = "$(cut -d, -f1,3,5 "$b")" ]; then
            ok "resume is bit-identical ($m, $o, $total steps, stopped at $half)"
        else
            fail "resume is bit-identical ($m, $o, $total steps, stopped at $half)"
        fi
    done
done

# --- the feedback family: resume is bit-identical for the feedbacks with state
#     (fit re-estimates a, lowrank's factors are in the checkpoint), fit reports its cost
for fb in fit:3 diag lowrank:2; do
    for sc in seq blelloch; do
        resumes "feedback $fb, scan $sc" "$tmp/f.safetensors" $W --method dsf --feedback $fb --scan $sc
    done
done
"$DSF" train $W --method dsf --feedback fit:3 --steps 10 --no-test >/dev/null 2>"$tmp/err"
if grep -qE "feedback fit: 4 re-estimates in [0-9.]+s, [0-9.]+% of the training time" "$tmp/err"; then ok "fit reports its re-estimates and their cost"; else fail "fit reports its re-estimates and their cost"; fi
"$DSF" train $W --method dsf --feedback lowrank:2 --steps 2 --save "$tmp/lr.safetensors" --no-test >/dev/null 2>"$tmp/err"
if grep -aq "rnn.feedback_u_l1" "$tmp/lr.safetensors" && grep -aq "rnn.feedback_v_l1" "$tmp/lr.safetensors"; then
    ok "lowrank factors are saved"; else fail "lowrank factors are saved"; fi
# --- correction sweeps (feedback +K): resume bit-identical, the checkpoint keeps K
resumes "feedback diag+2" "$tmp/f.safetensors" $W --method dsf --feedback diag+2
resumes "lstm feedback uniform:0,0.5+1" "$tmp/f.safetensors" $W --cell lstm --method dsf --feedback uniform:0,0.5+1 --scan blelloch
"$DSF" train $W --method dsf --feedback diag+2 --steps 2 --save "$tmp/sw.safetensors" --no-test >/dev/null 2>&1
expect_err "resume keeps the sweeps" "--feedback diag conflicts with the checkpoint's diag+2" "$DSF" train --data "$tmp/words" --feedback diag --resume "$tmp/sw.safetensors"
expect_err "no sweeps for lowrank" "not lowrank" "$DSF" train $W --method dsf --feedback lowrank:2+1
# sweeps over a feedback that reaches 1 grow with T (docs/FEEDBACK.md): a note says
# so, and only for such a feedback with sweeps
caution() {  # caution NAME EXPECTED(0|1) FEEDBACK
    "$DSF" train $W --method dsf --feedback "$3" --steps 1 --no-test >/dev/null 2>"$tmp/err"
    if [ "$(grep -c "^note: feedback .*correction sweep.*about 8\*|J - a|" "$tmp/err")" = "$2" ]; then
        ok "$1"; else fail "$1"; fi
}
caution "a note for linspace+1" 1 linspace+1
caution "a note for identity+2" 1 identity+2
caution "no note for uniform:0,0.5+2" 0 uniform:0,0.5+2
caution "no note for linspace without sweeps" 0 linspace
expect_ok "gradstats with sweeps" "$DSF" gradstats --ckpt "$tmp/sw.safetensors" --data "$tmp/words" --batches 2 --feedback diag+1,uniform:0,0.5+3
n=$(grep -cE '^dsf (diag\+2 \(checkpoint\)|diag\+1|uniform:0,0.5\+3) ' "$tmp/out")
if [ "$n" -eq 3 ]; then ok "gradstats rows for the sweeps"; else fail "gradstats rows for the sweeps ($n of 3)"; fi
# The fft scan needs FFTW (FFTW=0 builds, or a machine without it, say so instead).
if "$DSF" bench --method dsf --scan fft --steps 1 --warmup 0 --vocab 10 --emb 4 --hidden 4 \
    --batch 1 --seq 2 --gemm-size 16 >/dev/null 2>&1; then
    fft=1
    expect_err "diag refuses fft" "cannot use --scan fft" "$DSF" train $W --method dsf --feedback diag --scan fft
    expect_err "lowrank refuses fft" "cannot use --scan fft" "$DSF" train $W --method dsf --feedback lowrank:2 --scan fft
else
    fft=0
    expect_err "a build without FFTW refuses --scan fft" "no FFTW" "$DSF" train $W --method dsf --scan fft
fi
expect_err "lowrank rank 0" "lowrank:R" "$DSF" train $W --feedback lowrank:0
expect_err "fit every 0" "fit:N" "$DSF" train $W --feedback fit:0
expect_ok "gradstats every feedback" "$DSF" gradstats --ckpt "$tmp/lr.safetensors" --data "$tmp/words" --batches 2 --feedback fit,diag,lowrank:4,identity
n=$(grep -cE '^dsf (lowrank:2 \(checkpoint\)|fit|diag|lowrank:4|identity) ' "$tmp/out")
if [ "$n" -eq 5 ]; then ok "gradstats rows for fit, diag and lowrank"; else fail "gradstats rows for fit, diag and lowrank ($n of 5)"; fi

# --- the LSTM and Elman cells: train, resume bit-identically (the LSTM carries c
#     too), evaluate and sample from the checkpoint; feedbacks a cell lacks are refused
for cell in lstm rnn; do
    for m in bptt dsf; do
        fbs="uniform"; [ "$m" = dsf ] && fbs="uniform diag"
        for fb in $fbs; do
            resumes "--cell $cell --method $m --feedback $fb" "$tmp/cell.safetensors" $W --cell $cell --method $m --feedback $fb
        done
    done
    expect_ok "eval --cell $cell checkpoint" "$DSF" eval --ckpt "$tmp/cell.safetensors" --data "$tmp/words"
    expect_ok "sample --cell $cell checkpoint" "$DSF" sample --ckpt "$tmp/cell.safetensors" --tokens 10
done
grep -q "model: rnn, 2 layers" "$tmp/err" || "$DSF" train $W --cell rnn --steps 1 --no-test 2>&1 | grep -q "model: rnn, 2 layers" && ok "the header names the cell" || fail "the header names the cell"
expect_err "unknown cell" "unknown cell 'gruu'" "$DSF" train $W --cell gruu
expect_err "fit is gru only" "fit is implemented for --cell gru" "$DSF" train $W --cell lstm --feedback fit
expect_err "lowrank is not for lstm" "not lstm" "$DSF" train $W --cell lstm --feedback lowrank:2

# --- dropout and tied weights: train, resume bit-identically (the masks come from
#     the checkpointed generator), one decoder tensor; evaluation is deterministic
resumes "--dropout --tie" "$tmp/tie.safetensors" $W --cell lstm --dropout 0.3 --tie
cp "$tmp/ra.csv" "$tmp/drop.csv"
"$DSF" train $W --cell lstm --tie --steps 20 --log "$tmp/nodrop.csv" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
if [ "$(grep '^train,1,1,' "$tmp/drop.csv")" != "$(grep '^train,1,1,' "$tmp/nodrop.csv")" ]; then
    ok "dropout changes the training losses"; else fail "dropout changes the training losses"; fi
if grep -aq '"decoder.bias"' "$tmp/tie.safetensors" && ! grep -aq '"decoder.weight"' "$tmp/tie.safetensors"; then
    ok "a tied model has no decoder.weight"; else fail "a tied model has no decoder.weight"; fi
e1=$("$DSF" eval --ckpt "$tmp/tie.safetensors" --data "$tmp/words" 2>&1) e2=$("$DSF" eval --ckpt "$tmp/tie.safetensors" --data "$tmp/words" 2>&1)
if [ -n "$e1" ] && [ "$e1" = "$e2" ]; then ok "evaluation has no dropout ($e1)"; else fail "evaluation has no dropout ('$e1' vs '$e2')"; fi
expect_err "--tie needs emb = hidden" "embedding size equal" "$DSF" train --data "$tmp/words" --emb 8 --hidden 16 --tie
expect_err "resume with another dropout" "--dropout 0.5 conflicts" "$DSF" train --data "$tmp/words" --dropout 0.5 --resume "$tmp/tie.safetensors"

# --- the block architecture: train (each method), resume bit-identically, evaluate, sample
B="--data $tmp/words --arch block --layers 2 --hidden 16 --mlp 24 --batch 4 --seq 8 --threads 2 --optim adamw"
for m in bptt dsf; do resumes "--arch block --method $m" "$tmp/block.safetensors" $B --method $m; done
resumes "--arch block --dropout 0.2" "$tmp/block.safetensors" $B --method dsf --dropout 0.2
if grep -aq '"blocks.1.mlp.fc2.weight"' "$tmp/block.safetensors" && grep -aq '"ln_f.bias"' "$tmp/block.safetensors"; then
    ok "block tensor names"; else fail "block tensor names"; fi
expect_ok "eval block checkpoint" "$DSF" eval --ckpt "$tmp/block.safetensors" --data "$tmp/words"
expect_ok "sample block checkpoint" "$DSF" sample --ckpt "$tmp/block.safetensors" --tokens 10
expect_err "block with another emb" "emb equal to --hidden" "$DSF" train --data "$tmp/words" --arch block --emb 8 --hidden 16
expect_err "unknown arch" "unknown architecture 'tower'" "$DSF" train --data "$tmp/words" --arch tower

# --- determinism: the same seed and thread count give the same run, bit for bit
"$DSF" train $W --method dsf --steps 30 --log "$tmp/d1.csv" --log-every 1 --no-test >/dev/null 2>&1
"$DSF" train $W --method dsf --steps 30 --log "$tmp/d2.csv" --log-every 1 --no-test >/dev/null 2>&1
if [ "$(cut -d, -f1-5 "$tmp/d1.csv")" = "$(cut -d, -f1-5 "$tmp/d2.csv")" ]; then ok "same seed, same run"; else fail "same seed, same run"; fi

# --- interruption: SIGINT finishes the step, saves, says how to resume; the resumed run goes on
"$DSF" train $W --method dsf --steps 100000000 --save "$tmp/int.safetensors" >/dev/null 2>"$tmp/err" &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q "^step " "$tmp/err" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
kill -INT $pid
wait $pid
rc=$?
if [ "$rc" -eq 130 ] && grep -q "interrupted after step [0-9]* of 100000000: saved .*--resume" "$tmp/err" && [ -f "$tmp/int.safetensors" ]; then
    ok "SIGINT saves a checkpoint and says how to resume"
else
    fail "SIGINT saves a checkpoint and says how to resume (exit $rc)"
fi
at=$(sed -nE 's/.*interrupted after step ([0-9]+) of.*/\1/p' "$tmp/err")
if [ -n "$at" ] && "$DSF" train --data "$tmp/words" --resume "$tmp/int.safetensors" --stop-at $((at + 3)) --save "$tmp/int.safetensors" >/dev/null 2>"$tmp/err" && \
    grep -q "stopped (--stop-at) after step $((at + 3)) of" "$tmp/err"; then
    ok "the interrupted run resumes"
else
    fail "the interrupted run resumes"
fi
ls "$tmp" | grep -q '\.tmp\.' && fail "no temporary files left behind" || ok "no temporary files left behind"

# --- dsf grad
printf '1 2 3 4 5\n5 4 3 2 1\n' >"$tmp/tok.txt"
expect_ok "grad" "$DSF" grad --init "$tmp/w.safetensors" --tokens "$tmp/tok.txt" --method dsf --out "$tmp/g.safetensors"
scans="blelloch"
[ $fft = 1 ] && scans="blelloch fft"
for s in $scans; do
    "$DSF" grad --init "$tmp/w.safetensors" --tokens "$tmp/tok.txt" --method dsf --scan $s --out "$tmp/g_$s.safetensors" >/dev/null 2>"$tmp/err"
done
if [ $HAVE_NUMPY = 1 ]; then
    if "$PY" - "$tmp" $scans <<'PY'
import sys
sys.path.insert(0, "tests")
import numpy as np, st_py_check as st
d = sys.argv[1]
ref, _ = st.load(d + "/g.safetensors")
for s in sys.argv[2:]:
    g, _ = st.load(f"{d}/g_{s}.safetensors")
    for k, v in ref.items():
        assert np.abs(g[k] - v).max() <= 1e-5 * max(1, np.abs(v).max()), (s, k)
PY
    then ok "grad: the scans agree (seq $scans)"; else fail "grad: the scans agree (seq $scans)"; fi
else
    skip "grad: the scans agree" "no numpy"
fi
expect_err "unknown scan" "unknown scan" "$DSF" grad --init "$tmp/w.safetensors" --tokens "$tmp/tok.txt" --method dsf --scan nope --out "$tmp/g.safetensors"
printf '1 2 3\n4 5\n' >"$tmp/ragged.txt"
expect_err "grad ragged tokens" "line 2" "$DSF" grad --init "$tmp/w.safetensors" --tokens "$tmp/ragged.txt" --out "$tmp/g.safetensors"
printf '1 2 99999\n' >"$tmp/range.txt"
expect_err "grad token out of range" "out of range" "$DSF" grad --init "$tmp/w.safetensors" --tokens "$tmp/range.txt" --out "$tmp/g.safetensors"

# --- dsf bench: the lines it prints and that their values are sane (never timed)
for m in bptt dsf ft; do
    expect_ok "bench $m" "$DSF" bench --vocab 50 --emb 16 --hidden 32 --layers 2 --batch 4 --seq 8 \
        --steps 3 --warmup 1 --threads 2 --gemm-size 64 --method $m
    if awk '
        /^tokens\/s [0-9.]+$/ && $2 > 0 { tok = 1 }
        /^ms\/step [0-9.]+$/ && $2 > 0 { ms = 1 }
        /^  (forward recurrence|decoder\+softmax|state-gradient recurrence|parameter gradients|optimizer) +[0-9.]+ ms/ { ph++ }
        /^peak RSS [0-9.]+ MiB$/ && $3 > 1 { rss = 1 }
        /^FLOPs\/step [0-9.]+ G/ && $2 > 0 { fl = 1 }
        /^achieved [0-9.]+ GFLOP\/s/ && $2 > 0 { ach = 1 }
        /^GEMM [0-9]+x[0-9]+x[0-9]+ .*peak.* [0-9.]+ GFLOP\/s$/ { peak = 1 }
        / [0-9]+% of peak/ { pct = 1 }
        END { exit !(tok && ms && ph == 5 && rss && fl && ach && peak && pct) }' "$tmp/out"; then
        ok "bench $m prints tokens/s, phases, peak RSS, GFLOP/s and % of peak"
    else
        fail "bench $m prints tokens/s, phases, peak RSS, GFLOP/s and % of peak"; sed 's/^/     /' "$tmp/out"
    fi
done
for c in lstm rnn; do
    expect_ok "bench $c" "$DSF" bench --cell $c --vocab 50 --emb 16 --hidden 32 --layers 2 --batch 4 --seq 8 \
        --steps 2 --warmup 1 --threads 2 --gemm-size 64 --method dsf
    if grep -q "^tokens/s [0-9.]*$" "$tmp/out" && grep -q "^model: $c," "$tmp/out"; then ok "bench $c prints tokens/s"; else fail "bench $c prints tokens/s"; fi
done
expect_err "bench unknown cell" "unknown cell" "$DSF" bench --cell nope --steps 1
expect_err "bench unknown method" "unknown method" "$DSF" bench --method nope --steps 1

# --- dsf task: the long-range tasks; bptt learns a delayed recall that ft cannot
T="--task recall --delay 2 --steps 400 --batch 32 --emb 16 --hidden 32 --eval-size 256 --eval-every 100 --threads 1"
expect_err "task unknown task" "unknown task 'nope'" "$DSF" task --task nope
expect_err "task negative delay" "--delay must be between 0 and" "$DSF" task --delay -1
expect_err "task delay too large" "--delay must be between 0 and" "$DSF" task --delay 1000001
expect_err "task too large for memory" "GiB" "$DSF" task --delay 1000000 --batch 1000000
expect_err "task unknown method" "unknown method" "$DSF" task --method nope
expect_err "task zero batch" "--batch must be between" "$DSF" task --batch 0
expect_ok "task recall bptt" "$DSF" task $T --method bptt --log "$tmp/task.csv"
acc_bptt=$(tail -n 1 "$tmp/out" | sed -nE 's/^task recall delay 2 method bptt steps 400 seconds [0-9.]+ loss [0-9.]+ seq_acc [0-9.]+ accuracy ([0-9.]+)$/\1/p')
"$DSF" task $T --method ft >"$tmp/out" 2>"$tmp/err"
acc_ft=$(tail -n 1 "$tmp/out" | sed -nE 's/.* accuracy ([0-9.]+)$/\1/p')
if awk -v b="$acc_bptt" -v f="$acc_ft" 'BEGIN { exit !(b != "" && f != "" && b > 0.8 && f < 0.5) }'; then
    ok "task: bptt learns recall at delay 2, ft does not (accuracy $acc_bptt, $acc_ft; chance 0.125)"
else
    fail "task: bptt learns recall at delay 2, ft does not (accuracy '$acc_bptt', '$acc_ft'; chance 0.125)"
fi
if [ "$(head -n 1 "$tmp/task.csv")" = "step,loss,eval_loss,token_acc,seq_acc,elapsed_s" ] && \
   [ "$(cut -d, -f1 "$tmp/task.csv" | tail -n +2 | tr '\n' ' ')" = "100 200 300 400 " ] && \
   [ "$(tail -n 1 "$tmp/task.csv" | cut -d, -f4)" = "$(printf '%.6f' "$acc_bptt")" ]; then
    ok "task: the log has its columns, a row per evaluation and the final accuracy"
else
    fail "task: the log has its columns, a row per evaluation and the final accuracy"
fi
for k in copy add; do
    "$DSF" task --task $k --delay 3 --steps 2 --eval-size 40 --batch 16 --method dsf --feedback diag --threads 1 >"$tmp/out" 2>"$tmp/err"
    if tail -n 1 "$tmp/out" | grep -qE "^task $k delay 3 method dsf steps 2 .* seq_acc [0-9.]+ accuracy [0-9.]+$" && \
       grep -q "^task $k, delay 3: sequences of $([ $k = copy ] && echo 13 || echo 6) tokens" "$tmp/err"; then
        ok "task $k runs and reports"
    else
        fail "task $k runs and reports"
    fi
done

# --- the authors' recipe (--recipe paper-ptb): sentences from a zero state, padded,
# Adam with coupled L2, the residual stack; resume is bit-identical across an epoch
# (the order of each epoch is drawn again), --evals spreads the validations
R="--data $tmp/words --recipe paper-ptb --layers 2 --hidden 16 --batch 64 --seq 12 --eval-batch 16 --threads 2"
resumes "recipe paper-ptb (10 steps an epoch)" "$tmp/p.safetensors" $R --evals 0
resumes "recipe paper-ptb, dsf linspace+1, ft" "$tmp/p.safetensors" $R --evals 0 --method dsf --feedback linspace+1
resumes "recipe paper-ptb, ft, cosine" "$tmp/p.safetensors" $R --evals 0 --method ft --schedule cosine --warmup-ratio 0.2
rm -f "$tmp/p.csv"
if "$DSF" train $R --lr 0.01 --steps 20 --evals 4 --save "$tmp/p.safetensors" --log "$tmp/p.csv" --log-every 1 >"$tmp/out" 2>"$tmp/err" &&
   [ "$(grep '^valid,' "$tmp/p.csv" | cut -d, -f3 | tr '\n' ' ')" = "5 10 15 20 " ] &&
   grep -q "recipe: arch residual, sentence batching (600 sentences" "$tmp/err" &&
   grep -q "adam lr 0.01 clip 0, batch 64 x seq 12" "$tmp/err"; then
    ok "recipe paper-ptb: --evals 4 validates at steps 5 10 15 20, the header says the recipe"
else
    fail "recipe paper-ptb: --evals 4 validates at steps 5 10 15 20, the header says the recipe"
fi
lt=$(sed -n 's/^test loss \([0-9.]*\) .*/\1/p' "$tmp/out")
le=$("$DSF" eval --ckpt "$tmp/p.best.safetensors" --data "$tmp/words" --split test 2>"$tmp/err" | sed -n 's/^loss \([0-9.]*\) .*/\1/p')
first=$(grep '^train,' "$tmp/p.csv" | head -n 1 | cut -d, -f5)
last=$(grep '^train,' "$tmp/p.csv" | tail -n 1 | cut -d, -f5)
if [ -n "$lt" ] && [ "$lt" = "$le" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.1) }'; then
    ok "recipe paper-ptb: the loss falls ($first to $last); dsf eval of the best model gives train's test loss ($lt)"
else
    fail "recipe paper-ptb: the loss falls ('$first' to '$last'); dsf eval gives train's test loss ('$lt', '$le')"
fi
expect_ok "gradstats on a sentence checkpoint" "$DSF" gradstats --ckpt "$tmp/p.safetensors" --data "$tmp/words" --batches 2 --feedback zero
if grep -q "^dsf linspace:0,1 (checkpoint)" "$tmp/out"; then ok "gradstats: the recipe's feedback is linspace"; else fail "gradstats: the recipe's feedback is linspace"; fi
rm -f "$tmp/c.csv"
"$DSF" train $R --steps 10 --evals 0 --schedule cosine --warmup-ratio 0.5 --log "$tmp/c.csv" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
lrs=$(grep '^train,' "$tmp/c.csv" | cut -d, -f7 | tr '\n' ' ')
# torch's LinearLR(start_factor 1e-6) over 5 steps, then CosineAnnealingLR to 0.1 lr
if echo "$lrs" | awk '{ w[1] = 1e-9; w[2] = 2e-4; w[3] = 4e-4; w[6] = 1e-3
        w[8] = 1e-4 + 0.9e-3 * (1 + cos(3.14159265 * 2 / 5)) / 2
        for (i in w) if ((w[i] - $i) ^ 2 > (1e-5 * w[i]) ^ 2) exit 1 }'; then
    ok "cosine: warm-up from 1e-6 lr over 5 of 10 steps, then to 0.1 lr ($lrs)"
else
    fail "cosine: warm-up from 1e-6 lr over 5 of 10 steps, then to 0.1 lr ($lrs)"
fi
expect_err "resume keeps the batching" "--batching stream conflicts with the checkpoint's sentence" "$DSF" train --data "$tmp/words" --batching stream --resume "$tmp/p.safetensors"
expect_err "unknown recipe" "unknown recipe 'paper-xyz'" "$DSF" train --data "$tmp/words" --recipe paper-xyz
expect_err "unknown batching" "unknown batching 'lines'" "$DSF" train --data "$tmp/words" --batching lines
expect_err "sentences need words" "word-level" "$DSF" train --data "$tmp/words" --level char --batching sentence
# The header's padding line: the targets an epoch has, the padded positions, and
# where padding is skipped (the recurrence on the CPU, ragged: docs/SPEED.md).
"$DSF" train --data "$tmp/words" --batching sentence --batch 8 --seq 12 --steps 1 --no-test \
    --threads 1 >"$tmp/out" 2>"$tmp/err"
if grep -Eq '^padding: epoch 1 has [0-9]+ targets in [0-9]+ padded positions \([0-9.]+% padding\); the recurrence and the decoder run on the targets only$' "$tmp/err"; then
    ok "sentence batching: the header says the recurrence skips the padding"
else
    fail "sentence batching: the header says the recurrence skips the padding"
fi
expect_err "unknown schedule" "unknown schedule 'linear'" "$DSF" train --data "$tmp/words" --schedule linear
expect_err "bad step schedule" "expected step:E,G" "$DSF" train --data "$tmp/words" --schedule step:2
expect_err "residual needs emb = hidden" "needs --emb equal to --hidden" "$DSF" train --data "$tmp/words" --arch residual --emb 8 --hidden 16
expect_err "warmup and warmup-ratio" "not both" "$DSF" train $R --warmup 3 --warmup-ratio 0.1
expect_err "unknown architecture" "expected stack, residual or block" "$DSF" train --data "$tmp/words" --arch tower

# --- the authors' WikiText recipe (--recipe paper-wikitext): the block with a
# projection after the RNN and its own head, chunks of seq + 1 tokens from a zero
# state (the train epoch drops an incomplete batch), cosine with warm-up
K="--data $tmp/words --recipe paper-wikitext --layers 2 --hidden 16 --batch 16 --seq 15 --eval-batch 16 --threads 2"
resumes "recipe paper-wikitext (chunks, block proj untied)" "$tmp/k.safetensors" $K --evals 0
# a deep one: 12 blocks of 14 tensors, their two Adam moments and 12 feedbacks (a
# checkpoint of 350 tensors; a fixed table of names once stopped at 96)
resumes "recipe paper-wikitext, 12 blocks, dsf" "$tmp/k.safetensors" --data "$tmp/words" \
    --recipe paper-wikitext --layers 12 --hidden 8 --batch 16 --seq 15 --eval-batch 16 \
    --threads 2 --evals 0 --method dsf
rm -f "$tmp/k.csv"
if "$DSF" train $K --lr 0.01 --epochs 2 --evals 3 --save "$tmp/k.safetensors" --log "$tmp/k.csv" >"$tmp/out" 2>"$tmp/err" &&
   grep -q "recipe: arch block, chunk batching (269 chunks" "$tmp/err" && grep -q "(16 per epoch)" "$tmp/err" &&
   "$PY" tests/st_py_check.py "$tmp/k.safetensors" | grep -q "^blocks.1.proj.weight F32 \[16,16\]" &&
   "$PY" tests/st_py_check.py "$tmp/k.safetensors" | grep -q "^decoder.weight F32"; then
    ok "recipe paper-wikitext: chunks, 269 of 16 tokens in 16 full batches an epoch, the checkpoint has proj and its own head"
else
    fail "recipe paper-wikitext: chunks, 269 of 16 tokens in 16 full batches an epoch, the checkpoint has proj and its own head"
fi
lt=$(sed -n 's/^test loss \([0-9.]*\) .*/\1/p' "$tmp/out")
le=$("$DSF" eval --ckpt "$tmp/k.best.safetensors" --data "$tmp/words" --split test 2>"$tmp/err" | sed -n 's/^loss \([0-9.]*\) .*/\1/p')
if [ -n "$lt" ] && [ "$lt" = "$le" ]; then ok "recipe paper-wikitext: dsf eval gives train's test loss ($lt)"
else fail "recipe paper-wikitext: dsf eval gives train's test loss ('$lt', '$le')"; fi
# gradstats at another length than the checkpoint's: chunks of 8 tokens, not 16
expect_ok "gradstats at the checkpoint's length" "$DSF" gradstats --ckpt "$tmp/k.safetensors" --data "$tmp/words" --batches 2 --threads 1
l15=$(sed -n 's/.* of 16 x 15 from the valid split (loss \([0-9.]*\).*/\1/p' "$tmp/out")
expect_ok "gradstats --seq 7" "$DSF" gradstats --ckpt "$tmp/k.safetensors" --data "$tmp/words" --batches 2 --seq 7 --threads 1
l7=$(sed -n 's/.* of 16 x 7 from the valid split (loss \([0-9.]*\).*/\1/p' "$tmp/out")
if [ -n "$l15" ] && [ -n "$l7" ] && [ "$l15" != "$l7" ]; then ok "gradstats --seq 7 measures on chunks of 8 tokens (loss $l7, at 15: $l15)"
else fail "gradstats --seq 7 measures on chunks of 8 tokens ('$l7', at 15: '$l15')"; fi
expect_err "block options need the block" "options of --arch block" "$DSF" train --data "$tmp/words" --block-proj

# --- dsf classify: images one pixel a step (Debian's Fashion-MNIST; skipped without it)
if [ -d /usr/share/datasets/fashion-mnist ]; then
    C="--limit 192 --batch 64 --eval-batch 96 --hidden 16 --threads 2 --log-every 1"
    for task in seq perm; do
        rm -f "$tmp/ca.csv" "$tmp/cb.csv" "$tmp/c.safetensors"
        "$DSF" classify $C --task $task --steps 7 --no-test --log "$tmp/ca.csv" 2>"$tmp/err" >/dev/null
        "$DSF" classify $C --task $task --steps 7 --stop-at 4 --save "$tmp/c.safetensors" --log "$tmp/cb.csv" 2>"$tmp/err" >/dev/null
        "$DSF" classify --resume "$tmp/c.safetensors" --no-test --log "$tmp/cb.csv" --log-every 1 2>"$tmp/err" >/dev/null
        if [ "$(grep -c '^train,' "$tmp/ca.csv")" -eq 7 ] && [ "$(grep -c '^valid,' "$tmp/ca.csv")" -eq 3 ] &&
           [ "$(grep -E '^(train|valid),' "$tmp/ca.csv" | cut -d, -f1,3,4,5)" = "$(grep -E '^(train|valid),' "$tmp/cb.csv" | cut -d, -f1,3,4,5)" ]; then
            ok "classify --task $task: 7 steps over 3 epochs, resume at step 4 is bit-identical"
        else
            fail "classify --task $task: 7 steps over 3 epochs, resume at step 4 is bit-identical"
        fi
        cut -d, -f4 "$tmp/ca.csv" | sed -n 2p >"$tmp/first_$task"
    done
    if ! cmp -s "$tmp/first_seq" "$tmp/first_perm"; then ok "classify: perm reads the pixels in another order than seq"
    else fail "classify: perm reads the pixels in another order than seq"; fi
    "$DSF" classify $C --epochs 1 --save "$tmp/c.safetensors" >"$tmp/out" 2>"$tmp/err"
    if grep -q "^test loss [0-9.]* accuracy 0\.[0-9]* (model with the best validation loss" "$tmp/out"; then
        ok "classify: the test line"
    else
        fail "classify: the test line"
    fi
    "$DSF" classify $C --method dsf --feedback linspace+2 --steps 1 --no-test >/dev/null 2>"$tmp/err"
    if grep -q "^note: feedback linspace:0,1+2: 2 correction sweeps .* at 784 steps" "$tmp/err"; then
        ok "classify: the note on sweeps over linspace at 784 steps"
    else fail "classify: the note on sweeps over linspace at 784 steps"; fi
    expect_err "classify: resume keeps the task" "resume takes the configuration" "$DSF" classify --resume "$tmp/c.safetensors" --task perm
    expect_err "classify: a language model checkpoint is refused" "not a \`dsf classify\` checkpoint" "$DSF" classify --resume "$tmp/w.safetensors"
else
    skip "classify checks" "no /usr/share/datasets/fashion-mnist"
fi
expect_err "classify: unknown task" "unknown task 'rows'" "$DSF" classify --task rows --data /usr/share/datasets/fashion-mnist
expect_err "classify: no data says which package" "dataset-fashion-mnist" "$DSF" classify --data "$tmp/nothere"

# The header's memory estimate against the peak the run reaches (getrusage): a
# model whose work areas outweigh the process's own memory (libraries, corpus),
# so that the two agree (with dropout's masks and the diag feedback's vectors);
# an estimate that left out the evaluation area or a layer's buffers would be a
# third too low.
mkdir -p "$tmp/big"
mkcorpus "$tmp/big/train.txt" 3000 1
mkcorpus "$tmp/big/valid.txt" 3000 2
mkcorpus "$tmp/big/test.txt" 60 3
"$DSF" train --data "$tmp/big" --arch block --layers 3 --hidden 128 --batch 64 --seq 128 \
    --eval-batch 128 --dropout 0.3 --method dsf --feedback diag --steps 2 --threads 2 \
    --no-test >/dev/null 2>"$tmp/err"
est=$(sed -n 's/^memory: about \([0-9.]*\) GiB.*/\1/p' "$tmp/err")
peak=$(sed -n 's/^peak memory: \([0-9.]*\) GiB resident$/\1/p' "$tmp/err")
if [ -n "$est" ] && [ -n "$peak" ] &&
   awk -v e="$est" -v p="$peak" 'BEGIN { exit !(p >= 0.8 * e && p <= 1.25 * e) }'; then
    ok "the memory estimate ($est GiB) is within 25% of the peak ($peak GiB)"
else
    fail "the memory estimate ($est GiB) is within 25% of the peak ($peak GiB)"
fi

# --- --device cuda: a CUDA build on a machine with a GPU (else skipped). The steps
# on the device match the CPU's up to rounding, and a run stopped and resumed on
# the device (its state, moments and parameters through the checkpoint) goes on
# exactly, across an epoch boundary.
# close_losses A B: the same rows (kind) and every loss within 0.5%
close_losses() {
    paste -d, "$1" "$2" | awk -F, 'NR > 1 { d = $5 - $15; if (d < 0) d = -d;
        if ($1 != $11 || d > 5e-3 * $15) bad = 1 } END { exit bad || NR < 2 }'
}
if "$DSF" bench --device cuda --vocab 50 --emb 16 --hidden 32 --batch 4 --seq 8 --steps 1 \
    --warmup 0 --gemm-size 64 >/dev/null 2>&1; then
    for cell in gru lstm rnn; do
    for m in bptt ft dsf dsf-fft dsf-sweeps dsf-dropout; do
        # dsf-fft: the device's fft scan against the CPU's sequential one (which
        # needs no FFTW); dsf-sweeps: two correction sweeps; dsf-dropout: the
        # CPU's masks on the device.
        mc="--method $m" mg="--method $m"
        [ "$m" = dsf-fft ] && mc="--method dsf --scan seq" mg="--method dsf --scan fft"
        [ "$m" = dsf-sweeps ] && mc="--method dsf --feedback uniform:0,0.5+2" mg=$mc
        [ "$m" = dsf-dropout ] && mc="--method dsf --dropout 0.3" mg=$mc
        for o in sgd adamw; do
            # AdamW at --lr 1 is chaotic (two CPU builds part by more than 0.5%
            # within a few steps): it is compared at 0.01.
            Wo="${W% --lr 1} --lr 1"
            [ $o = adamw ] && Wo="${W% --lr 1} --lr 0.01"
            k="$cell $m $o" a="$tmp/ga.csv" b="$tmp/gb.csv" c="$tmp/gc.csv"
            rm -f "$a" "$b" "$c"
            "$DSF" train $Wo --cell $cell $mc --optim $o --steps $total --log "$c" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
            "$DSF" train $Wo --cell $cell --device cuda $mg --optim $o --steps $total --log "$a" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
            "$DSF" train $Wo --cell $cell --device cuda $mg --optim $o --steps $total --stop-at $half --log "$b" --log-every 1 --save "$tmp/g.safetensors" 2>"$tmp/err" >/dev/null
            "$DSF" train --data "$tmp/words" --device cuda --resume "$tmp/g.safetensors" --log "$b" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
            if [ "$(grep -c '^train,' "$a")" -eq "$total" ] && [ "$(grep -c '^valid,' "$a")" -eq 2 ] && \
               [ "$(cut -d, -f1,3,5 "$a")" = "$(cut -d, -f1,3,5 "$b")" ]; then
                ok "--device cuda: resume is bit-identical ($k)"
            else
                fail "--device cuda: resume is bit-identical ($k)"
            fi
            if close_losses "$a" "$c"; then
                ok "--device cuda: losses match the CPU's ($k)"
            else
                fail "--device cuda: losses match the CPU's ($k)"
            fi
        done
    done
    done
    # the block architecture (LayerNorms, MLPs, residual sums) with each cell, and
    # with dropout (the CPU's masks)
    Wb="${W% --lr 1} --lr 0.1 --arch block --mlp 24"
    for cell in gru lstm rnn; do
        for m in bptt dsf dsf-dropout; do
            mb="--method $m"
            [ "$m" = dsf-dropout ] && mb="--method dsf --dropout 0.3"
            a="$tmp/ga.csv" c="$tmp/gc.csv"
            rm -f "$a" "$c"
            "$DSF" train $Wb --cell $cell $mb --steps $total --log "$c" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
            "$DSF" train $Wb --cell $cell --device cuda $mb --steps $total --log "$a" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
            if close_losses "$a" "$c"; then ok "--device cuda: block $cell $m losses match the CPU's"
            else fail "--device cuda: block $cell $m losses match the CPU's"; fi
        done
    done
    # dsf eval on the device: the CPU's loss (a stack and a block checkpoint)
    for ck in "$tmp/g.safetensors" "$tmp/block.safetensors"; do
        lc=$("$DSF" eval --ckpt "$ck" --data "$tmp/words" --split test 2>"$tmp/err" | sed -nE 's/^loss ([0-9.]+) .*/\1/p')
        lg=$("$DSF" eval --ckpt "$ck" --data "$tmp/words" --split test --device cuda 2>"$tmp/err" | sed -nE 's/^loss ([0-9.]+) .*/\1/p')
        if [ -n "$lc" ] && awk -v a="$lc" -v b="$lg" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b != "" && d <= 2e-4) }'; then
            ok "--device cuda: dsf eval gives the CPU's loss ($(basename "$ck"): $lc, $lg)"
        else
            fail "--device cuda: dsf eval gives the CPU's loss ($(basename "$ck"): '$lc', '$lg')"
        fi
    done
    # fit (GRU): a re-estimated every 2 steps on the device, as on the CPU
    a="$tmp/ga.csv" c="$tmp/gc.csv"
    rm -f "$a" "$c"
    "$DSF" train $W --method dsf --feedback fit:2 --steps $total --log "$c" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
    "$DSF" train $W --device cuda --method dsf --feedback fit:2 --steps $total --log "$a" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
    if close_losses "$a" "$c"; then ok "--device cuda: fit's losses match the CPU's"; else fail "--device cuda: fit's losses match the CPU's"; fi
    # lowrank (GRU and Elman), both chunked scans' semantics on the device's sequential kernel
    for cell in gru rnn; do
        for s in seq blelloch; do
            a="$tmp/ga.csv" c="$tmp/gc.csv"
            rm -f "$a" "$c"
            "$DSF" train $W --cell $cell --method dsf --feedback lowrank:3 --scan $s --steps $total --log "$c" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
            "$DSF" train $W --cell $cell --device cuda --method dsf --feedback lowrank:3 --scan $s --steps $total --log "$a" --log-every 1 --no-test 2>"$tmp/err" >/dev/null
            if close_losses "$a" "$c"; then ok "--device cuda: lowrank $cell $s losses match the CPU's"
            else fail "--device cuda: lowrank $cell $s losses match the CPU's"; fi
        done
    done
    expect_err "--device cuda: lowrank refuses the fft scan" "scan fft" "$DSF" train $W --device cuda --method dsf --feedback lowrank:2 --scan fft
else
    skip "--device cuda checks" "a build without CUDA, or no device"
fi

if [ "$skipped" -gt 0 ]; then
    echo "cli: $passed passed, $failed failed, $skipped skipped"
else
    echo "cli: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
