#!/bin/sh
# experiments/paper_wikitext.sh [options of paper_ptb.sh]
#
# WikiText-2 with the authors' WikiText recipe (`dsf train --recipe paper-wikitext`:
# block architecture x + Linear(GRU(LN x)), x + MLP(LN x), final LayerNorm, untied
# head; chunks of 256 tokens, each from a zero state; Adam lr 1e-3, warm-up over
# 10% then cosine to 0.1 lr; 5 epochs; docs/RECIPES.md), GRU 3x256, bptt, dsf
# (linspace) and ft, one run at a time on 2 threads, 10 validations a run: the same
# as `sh experiments/paper_ptb.sh --recipe paper-wikitext`, whose options it takes.
# The data and tokens are not the paper's (WikiText-2 word level, 33,278 words,
# against WikiText-103 in a 16k BPE): compare the methods, not the perplexities
# with the paper's.
# Cost on 2 cores (Zen 4, experiments/results/speed/paper_wikitext_zen4.txt): dsf
# 2,080 tokens/s on 2 threads alone, 17 minutes an epoch (63 steps of 128 x 256
# tokens), a validation 37 s, about 90 minutes a run; 6.7 GiB resident at most
# (experiments/results/memory/eval_work_zen4.txt).
exec sh "$(dirname "$0")/paper_ptb.sh" --recipe paper-wikitext "$@"
