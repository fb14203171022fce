# dsf: one Makefile that detects what is present and builds what it can.
#
#   make            library build/libdsf.a and the command build/dsf
#   make test       every test (unit, command line, PyTorch reference), one summary line
#   make demo       trains the built-in task with bptt, dsf and ft side by side
#   make asan       the unit tests under AddressSanitizer and UBSan
#   make valgrind   the small unit tests under valgrind
#
# Switches: BLAS=0 uses the portable blocked GEMM even when OpenBLAS is present;
# FFTW=0 builds without FFTW (no fft scan); OMP=0 builds without OpenMP;
# DEBUG=1 builds without optimisation. Switching needs `make clean` or BUILD=dir.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O3 -march=native
ifeq ($(DEBUG),1)
OPT      = -O0
endif
SAN     ?=
CFLAGS  += $(OPT) $(SAN) -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow \
           -Wno-unused-parameter -g
LDFLAGS += $(SAN)
LDLIBS  += -lm

# OpenBLAS (CBLAS) when present, else the portable GEMM in src/core/gemm.c.
BLAS ?= $(shell pkg-config --exists openblas 2>/dev/null && echo 1 || echo 0)
ifeq ($(BLAS),1)
CFLAGS  += -DDSF_USE_CBLAS $(shell pkg-config --cflags openblas)
LDLIBS  += $(shell pkg-config --libs openblas)
BLAS_NOTE = OpenBLAS
else
BLAS_NOTE = portable blocked GEMM (OpenBLAS not found; apt-get install libopenblas-dev)
endif

# FFTW (single precision) when present, for the fft scan (src/grad/scan.c).
FFTW ?= $(shell pkg-config --exists fftw3f 2>/dev/null && echo 1 || echo 0)
ifeq ($(FFTW),1)
CFLAGS  += -DDSF_USE_FFTW $(shell pkg-config --cflags fftw3f)
LDLIBS  += $(shell pkg-config --libs fftw3f)
endif

OMP ?= 1
ifeq ($(OMP),1)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
endif

INC      = -Isrc
LIB_SRC  = $(sort $(wildcard src/core/*.c src/cell/*.c src/grad/*.c src/model/*.c \
                             src/data/*.c src/optim/*.c src/io/*.c))
CLI_SRC  = $(sort $(wildcard src/cli/*.c))
TEST_SRC = $(sort $(wildcard tests/test_*.c))

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all test unit asan valgrind demo clean info
all: info $(BUILD)/libdsf.a $(BUILD)/dsf

info:
	@echo "dsf: matrix products by $(BLAS_NOTE)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC) -MMD -MP -c $< -o $@

$(BUILD)/libdsf.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/dsf: $(CLI_OBJ) $(BUILD)/libdsf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Every `void suite_*(void)` in tests/test_*.c is run by tests/test_main.c.
$(BUILD)/tests/suites.def: $(TEST_SRC)
	@mkdir -p $(dir $@)
	@grep -ho '^void suite_[a-z0-9_]*(void)' $(TEST_SRC) | sed 's/^void \(suite_[a-z0-9_]*\)(void)/SUITE(\1)/' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(BUILD)/tests/test_main.o: tests/test_main.c $(BUILD)/tests/suites.def
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC) -I$(BUILD)/tests -c $< -o $@

$(BUILD)/test_dsf: $(BUILD)/tests/test_main.o $(TEST_OBJ) $(BUILD)/libdsf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

unit: $(BUILD)/test_dsf
	$(BUILD)/test_dsf

test: all $(BUILD)/test_dsf
	@sh tests/run.sh $(BUILD)

asan:
	$(MAKE) BUILD=build/asan OPT="-O1" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" build/asan/test_dsf
	ASAN_OPTIONS=detect_leaks=1 build/asan/test_dsf

# valgrind does not know every instruction -march=native may choose: a portable build.
valgrind:
	$(MAKE) BUILD=build/vg OPT="-O2" build/vg/test_dsf
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 valgrind --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite --show-possibly-lost=no -q build/vg/test_dsf

demo: all
	@sh demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
