# tests/words.sh: sourced by the command-line tests.
# A small word-level corpus from a tiny grammar (learnable: the loss must fall).
# With NUMBERED > 0 each line ends in a word w0..w(NUMBERED-1) instead of the
# optional "and then it" clause: a vocabulary of hundreds of words, most of which
# a step does not see (tests/mpi.sh: rows of the encoder's gradient are zero).
mkcorpus() {  # mkcorpus FILE LINES SEED [NUMBERED]
    awk -v n="$2" -v seed="$3" -v numbered="${4:-0}" 'BEGIN {
        srand(seed);
        split("the a", det, " "); split("cat dog bird", noun, " "); split("sat ran slept", verb, " ");
        split("on under near", prep, " "); split("mat log tree", place, " ");
        for (i = 0; i < n; i++) {
            line = " " det[1 + int(rand() * 2)] " " noun[1 + int(rand() * 3)] " " verb[1 + int(rand() * 3)];
            if (rand() < 0.7) line = line " " prep[1 + int(rand() * 3)] " the " place[1 + int(rand() * 3)];
            if (numbered > 0) line = line " w" int(rand() * numbered);
            else if (rand() < 0.3) line = line " and then it " verb[1 + int(rand() * 3)];
            print line " " } }' >"$1"
}
