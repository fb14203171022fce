// test_api.c: the public header's tutorial (tests/api_tutorial.c), run as written
// on a tiny corpus: the loss must fall.
#define DSF_TUTORIAL_NO_MAIN
#include "api_tutorial.c"
#include "test.h"

static void test_api_tutorial_trains(void) {
    double first = 0, last = 0;
    CHECK_MSG(dsf_tutorial(&first, &last) == 0, "%s", dsf_error());
    CHECK_MSG(last < first - 0.5, "loss %g -> %g", first, last);
}

void suite_api(void) { RUN(test_api_tutorial_trains); }
