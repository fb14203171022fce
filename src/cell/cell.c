// cell.c: the table of cells (cell.h).
#include "cell.h"

#include <string.h>

#include "cell/elman.h"
#include "cell/gru.h"
#include "cell/lstm.h"
#include "core/common.h"

static const dsf_cell_info cells[DSF_NCELLS] = {
    [DSF_CELL_GRU] = {.name = "gru", .gates = 3, .states = 1, .has_q = 1, .folds_b_hh = 0,
                      .pack_floats = gru_pack_floats, .forward = gru_forward},
    [DSF_CELL_LSTM] = {.name = "lstm", .gates = 4, .states = 2, .has_q = 0, .folds_b_hh = 1,
                       .pack_floats = lstm_pack_floats, .forward = lstm_forward},
    [DSF_CELL_ELMAN] = {.name = "rnn", .gates = 1, .states = 1, .has_q = 0, .folds_b_hh = 1,
                        .pack_floats = elman_pack_floats, .forward = elman_forward},
};

const dsf_cell_info *dsf_cell_get(dsf_cell c) {
    DSF_ASSERT((unsigned)c < DSF_NCELLS);
    return &cells[c];
}

const char *dsf_cell_name(dsf_cell c) {
    return (unsigned)c < DSF_NCELLS ? cells[c].name : "unknown";
}

int dsf_cell_parse(const char *s, dsf_cell *out) {
    for (int i = 0; i < DSF_NCELLS; i++)
        if (strcmp(s, cells[i].name) == 0) {
            *out = (dsf_cell)i;
            return 0;
        }
    return dsf_error_set("unknown cell '%s' (expected gru, lstm or rnn)", s);
}

int dsf_cell_gates(dsf_cell c) { return dsf_cell_get(c)->gates; }
int dsf_cell_states(dsf_cell c) { return dsf_cell_get(c)->states; }
