#!/bin/sh
# experiments/feedback_ablation.sh [--quick] [--epochs N] [--feedbacks "F ..."] [common options]
#
# The feedback ablation on PTB: the small recipe (2 x 200 GRU, SGD lr 20, clip
# 0.25, batch 20 x seq 35, seed 1) trained with bptt, ft and dsf under each
# feedback, then `dsf gradstats` on the BPTT-trained model: how close each
# feedback's gradient is to the exact one (cosine, norm ratio). The runs are
# bench/feedback_ablation.sh's; this script adds the plot. Writes
#   OUT/table.md      run, valid and test perplexity, s/epoch, cosine and norm vs bptt
#   OUT/gradstats.txt the per-tensor comparison
#   OUT/ablation.png  validation perplexity and cosine per run
#
#   --quick        30 steps per run (a check that everything runs: the numbers mean nothing)
#   --epochs N     epochs per run (default 1)
#   --feedbacks S  default "zero identity uniform uniform:0,0.5 ssm fit diag lowrank:4"
# Common options (experiments/common.sh): --out DIR --threads N --data DIR.
# Full size on a 2-core Zen 4: about 4 to 10 min per run, some 1.5 h.
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,19s/^# \{0,1\}//p' experiments/feedback_ablation.sh; }
. experiments/common.sh
parse_common ablation "$@"
EPOCHS=1 FEEDBACKS="zero identity uniform uniform:0,0.5 ssm fit diag lowrank:4"
study_options feedback_ablation 'epochs:EPOCHS feedbacks:FEEDBACKS'
[ -n "$DATA" ] || DATA=../shared/data/ptb
record_machine "$@"
DSF=$DSF sh bench/feedback_ablation.sh -e "$EPOCHS" -d "$DATA" -o "$OUT" -t "$THREADS" \
    -f "$FEEDBACKS" ${QUICK:+-q}
rm -f "$OUT"/*.safetensors  # 18 MB each; the table and logs are the result
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
"$PY" experiments/plot.py ablation "$OUT"
