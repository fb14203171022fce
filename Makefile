# dsf: one Makefile that detects what is present and builds what it can.
#
#   make            library build/libdsf.a and the command build/dsf
#   make test       every test (unit, command line, PyTorch reference), one summary line
#   make demo       trains the built-in task with bptt, dsf and ft side by side
#   make asan       the unit tests under AddressSanitizer and UBSan
#   make valgrind   the small unit tests under valgrind
#   make install    libdsf.a, libdsf.so, the headers, dsf.pc and the command under
#                   PREFIX (/usr/local): cc prog.c $$(pkg-config --cflags --libs dsf)
#   make fuzz-build the libFuzzer harnesses fuzz/*.c as build/fuzz/<harness> (needs clang)
#   make fuzz       runs each harness FUZZ_SECONDS (60) s on a copy of fuzz/corpus/<harness>
#
# Switches: BLAS=0 uses the portable blocked GEMM even when OpenBLAS is present;
# FFTW=0 builds without FFTW (no fft scan); ZLIB=0 without zlib (plain IDX files
# only); OMP=0 builds without OpenMP;
# DEBUG=1 builds without optimisation. Switching needs `make clean` or BUILD=dir.
# MPI=1 builds with mpicc for data-parallel training (src/dist), in build/mpi
# unless BUILD is given: `mpirun -np N build/mpi/dsf train ...`.
# CUDA=1 adds the GPU backend (src/cuda: nvcc, cuBLAS, cuFFT) for `--device cuda`, in
# build/cuda unless BUILD is given; NVCC and CUDA_ARCH (compute capabilities,
# default "80 90") choose the compiler and the targets. Without CUDA=1 nothing
# needs CUDA and `--device cuda` says so.

CC      ?= cc
# MPI: the default build has single-process stand-ins and needs no MPI headers.
MPI     ?= 0
ifeq ($(MPI),1)
CC       = mpicc
BUILD   ?= build/mpi
CFLAGS  += -DDSF_USE_MPI
endif
CUDA    ?= 0
ifeq ($(CUDA),1)
BUILD   ?= build/cuda
endif
BUILD   ?= build
# The default build targets the baseline ISA (x86-64, aarch64), so that the binary
# runs on any machine of its kind; the recurrent product chooses its micro-kernel
# at run time (src/core/panel.c: avx512, avx2 or generic). NATIVE=1 compiles
# everything else for this machine too (-march=native; the binary then needs a
# CPU like this one).
NATIVE  ?= 0
ifeq ($(NATIVE),1)
OPT     ?= -O3 -march=native
else
OPT     ?= -O3
endif
ifeq ($(DEBUG),1)
OPT      = -O0
endif
SAN     ?=
# -fno-trapping-math -fno-math-errno: nothing here reads the floating-point
# exception flags or errno after a math function; without them GCC keeps every
# float `?:` as a branch (a comparison may trap) and every sqrtf a call (it may set
# errno), which leaves the loops of src/core/fastmath.h and Adam's update scalar.
# Results are unchanged (IEEE operations either way).
CFLAGS  += $(OPT) $(SAN) -std=c11 -D_POSIX_C_SOURCE=200809L -fno-trapping-math -fno-math-errno \
           -Wall -Wextra -Wshadow -Wno-unused-parameter -g
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

# zlib when present, for gzip-compressed IDX image files (src/data/images.c).
ZLIB ?= $(shell pkg-config --exists zlib 2>/dev/null && echo 1 || echo 0)
ifeq ($(ZLIB),1)
CFLAGS  += -DDSF_USE_ZLIB $(shell pkg-config --cflags zlib)
LDLIBS  += $(shell pkg-config --libs zlib)
endif

OMP ?= 1
ifeq ($(OMP),1)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
endif

INC      = -Isrc -Iinclude
LIB_SRC  = $(sort $(wildcard src/core/*.c src/cell/*.c src/grad/*.c src/model/*.c \
                             src/data/*.c src/optim/*.c src/io/*.c src/dist/*.c src/train/*.c))
CLI_SRC  = $(sort $(wildcard src/cli/*.c))
TEST_SRC = $(sort $(wildcard tests/test_*.c))

# The GPU backend: src/cuda/*.cu by nvcc, linked with cuBLAS, cuFFT and the CUDA runtime;
# without it, src/cuda/gpu_none.c answers "built without CUDA", and the GPU tests
# (tests/test_cuda.c, tests/test_cuda_emulated.c with the kernels' element functions
# on the host, tests/cuda_emulate.cu: test code, not in the library) are left out.
ifeq ($(CUDA),1)
NVCC      ?= $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
# the toolkit nvcc belongs to, which nvcc names itself (it may be a wrapper script elsewhere)
ifndef CUDA_HOME
CUDA_HOME := $(abspath $(or $(shell "$(NVCC)" --dryrun -x cu -c /dev/null 2>&1 | sed -n 's/^\#\$$ TOP=//p' | head -n 1),$(dir $(NVCC))/..))
endif
CUDA_ARCH ?= 80 90
NVCCFLAGS ?= -O3 -std=c++17 $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a)) \
             -gencode arch=compute_$(lastword $(CUDA_ARCH)),code=compute_$(lastword $(CUDA_ARCH)) \
             -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -g
CUDA_SRC  = $(sort $(wildcard src/cuda/*.cu))
TEST_CU   = tests/cuda_emulate.cu
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcufft -lcudart -lstdc++
else
CUDA_SRC  =
TEST_CU   =
LIB_SRC  += src/cuda/gpu_none.c
TEST_SRC := $(filter-out tests/test_cuda%.c,$(TEST_SRC))
endif

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o) $(TEST_CU:%.cu=$(BUILD)/%.o)

.PHONY: all test unit asan valgrind demo clean info install panel-bench FORCE
# The shared library (for python/dsf_torch and other programs) is built by `make`
# too, but not in a CUDA build, whose objects need nvcc's runtime to link.
ifeq ($(CUDA),1)
INSTALL_SO =
else
INSTALL_SO = $(BUILD)/libdsf.so
endif
all: info $(BUILD)/libdsf.a $(BUILD)/dsf $(INSTALL_SO)

info:
	@echo "dsf: matrix products by $(BLAS_NOTE)"
ifeq ($(CUDA),1)
	@echo "dsf: CUDA backend by $(NVCC) for compute capabilities $(CUDA_ARCH)"
endif

# Every object depends on the flags it was compiled with ($(BUILD)/flags, rewritten
# only when they change): an edit of the flags here, or OPT=, SAN=, NATIVE= on the
# command line, rebuilds what they affect instead of linking stale objects.
FLAGS_LINE = $(CC) $(CFLAGS) $(INC) | $(NVCC) $(NVCCFLAGS)
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_LINE)' | cmp -s - $@ || echo '$(FLAGS_LINE)' >$@
FORCE:

$(BUILD)/%.o: %.c $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(INC) -MMD -MP -c $< -o $@

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

$(BUILD)/tests/test_main.o: tests/test_main.c $(BUILD)/tests/suites.def $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC) -I$(BUILD)/tests -MMD -MP -c $< -o $@

$(BUILD)/test_dsf: $(BUILD)/tests/test_main.o $(TEST_OBJ) $(BUILD)/libdsf.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The CUDA build makes its tests too: `build/cuda/test_dsf cuda` runs the GPU ones.
ifeq ($(CUDA),1)
all: $(BUILD)/test_dsf
endif

unit: $(BUILD)/test_dsf
	$(BUILD)/test_dsf

test: all $(BUILD)/test_dsf
	@sh tests/run.sh $(BUILD)

asan:
	$(MAKE) BUILD=build/asan OPT="-O1" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" build/asan/test_dsf
	ASAN_OPTIONS=detect_leaks=1 build/asan/test_dsf

# valgrind does not know every instruction -march=native may choose: a portable
# build (the default one is too; the run-time choice sees valgrind's CPU).
valgrind:
	$(MAKE) BUILD=build/vg OPT="-O2" build/vg/test_dsf
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 valgrind --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite --show-possibly-lost=no -q build/vg/test_dsf

# The recurrent product's kernels and dsf_sgemm at the speed targets' shapes.
panel-bench: $(BUILD)/panel_bench
$(BUILD)/panel_bench: bench/panel_bench.c $(BUILD)/libdsf.a
	$(CC) $(CFLAGS) $(INC) $(LDFLAGS) $^ $(LDLIBS) -o $@

demo: all
	@sh demo.sh $(BUILD)

# --- Installation. The shared library is made of position-independent objects
# of its own ($(BUILD)/pic); the headers keep their folders under include/dsf,
# which dsf.pc puts on the include path (#include <dsf.h>).
PREFIX  ?= /usr/local
VERSION  = 0.1.0
PIC_OBJ  = $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
LIB_HDR  = $(sort $(wildcard src/core/*.h src/cell/*.h src/grad/*.h src/model/*.h src/data/*.h \
                             src/optim/*.h src/io/*.h src/dist/*.h src/train/*.h) src/cuda/gpu.h)

$(BUILD)/pic/%.o: %.c $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC $(INC) -MMD -MP -c $< -o $@

$(BUILD)/libdsf.so: $(PIC_OBJ)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libdsf.so.0 $^ $(LDLIBS) -o $@

# Rewritten when PREFIX or the flags change (FORCE, then kept if the same).
$(BUILD)/dsf.pc: FORCE
	@mkdir -p $(BUILD)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	    'Name: dsf' 'Description: Diagonal State Feedbacks: fast training of recurrent language models' \
	    'Version: $(VERSION)' 'Cflags: -I$${includedir}/dsf' 'Libs: -L$${libdir} -ldsf' \
	    'Libs.private: $(strip $(LDFLAGS) $(LDLIBS))' >$@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@


install: $(BUILD)/libdsf.a $(INSTALL_SO) $(BUILD)/dsf $(BUILD)/dsf.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/dsf
	install -m 755 $(BUILD)/dsf $(DESTDIR)$(PREFIX)/bin/dsf
	install -m 644 $(BUILD)/libdsf.a $(DESTDIR)$(PREFIX)/lib/libdsf.a
ifneq ($(CUDA),1)
	install -m 755 $(BUILD)/libdsf.so $(DESTDIR)$(PREFIX)/lib/libdsf.so.$(VERSION)
	ln -sf libdsf.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libdsf.so.0
	ln -sf libdsf.so.0 $(DESTDIR)$(PREFIX)/lib/libdsf.so
endif
	install -m 644 $(BUILD)/dsf.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/dsf.pc
	install -m 644 include/dsf.h $(DESTDIR)$(PREFIX)/include/dsf/dsf.h
	for h in $(LIB_HDR); do \
	    install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/dsf/$${h#src/} || exit 1; \
	done

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/tests/test_main.d $(PIC_OBJ:.o=.d)

# --- Fuzzing: libFuzzer harnesses (fuzz/fuzz_*.c), built by clang with ASan and UBSan.
# The library sources (and the argument parser) are compiled again, instrumented, into
# each harness, without OpenMP, BLAS or FFTW. `make fuzz` runs the harnesses one after
# another on a copy of the committed seeds (and fuzz/<harness>.dict when there is one):
# new inputs land in build/fuzz/work/, crashes in build/fuzz/<harness>-crash-*, and the
# first crash, leak or hang fails it. Inputs that once failed go to tests/regress/<harness>/,
# which tests/test_regress.c replays through the same harness code (so the unit tests
# link the argument parser too).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR      = $(BUILD)/fuzz
FUZZ_CFLAGS   = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter \
                -Wno-unknown-pragmas
FUZZ_NAMES    = $(sort $(basename $(notdir $(wildcard fuzz/fuzz_*.c))))
FUZZ_BINS     = $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJ  = $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/src/cli/args.o

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INC) -MMD -MP -c $< -o $@

$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/fuzz/%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $^ -lm -o $@

fuzz: fuzz-build
	@rm -rf $(FUZZ_DIR)/work && mkdir -p $(FUZZ_DIR)/work
	@for h in $(FUZZ_NAMES); do \
	    cp -r fuzz/corpus/$$h $(FUZZ_DIR)/work/$$h || exit 1; \
	    regress=; [ -d tests/regress/$$h ] && regress=tests/regress/$$h; \
	    dict=; [ -f fuzz/$$h.dict ] && dict=-dict=fuzz/$$h.dict; \
	    echo "== $$h: $(FUZZ_SECONDS) s, log in $(FUZZ_DIR)/$$h.log"; \
	    if ! $(FUZZ_DIR)/$$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	            -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$h- $$dict \
	            $(FUZZ_DIR)/work/$$h $$regress >$(FUZZ_DIR)/$$h.log 2>&1; then \
	        tail -n 40 $(FUZZ_DIR)/$$h.log; echo "$$h: FAILED (input in $(FUZZ_DIR)/$$h-*)"; exit 1; \
	    fi; \
	    grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_DIR)/$$h.log | tail -n 1; \
	done

$(BUILD)/test_dsf: $(BUILD)/src/cli/args.o

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_NAMES:%=$(FUZZ_DIR)/obj/fuzz/%.d)
