# fast/module.mk — fast/: batch normalization in float at the speed of memory
# (AVX-512 / AVX2 / portable kernels chosen at run time by CPUID, OpenMP
# threads), and `make bench`, which measures it against ref, oneDNN (when
# libdnnl-dev is installed) and the machine's own memory bandwidth.
# Included by the top Makefile before its rules (see "Modules" there).

FAST_SRC := fast/fast_dispatch.c fast/fast_plan.c fast/fast_forward.c \
            fast/fast_backward.c fast/fast_running.c fast/kern_portable.c
# The AVX kernels are x86 only; elsewhere the portable path is the only one.
ifneq ($(filter x86_64% i686% i386%,$(shell $(CC) -dumpmachine 2>/dev/null)),)
FAST_SRC += fast/kern_avx2.c fast/kern_avx512.c
FAST_X86 := -DBN_FAST_X86
endif
FAST_SRC += fast/fast_groupnorm.c
FAST_OBJ := $(FAST_SRC:%.c=$(BUILD)/obj/%.o)

LIB_SRC    += $(FAST_SRC)
CPPFLAGS   += -DBNLAB_HAVE_FAST -Ifast
LDLIBS_LIB += -fopenmp

# -O3 where the default -O2 is in use (not under make debug or asan); no
# -ffast-math: the sums must run in the order written, every time.
$(FAST_OBJ): EXTRA_CFLAGS := -fopenmp $(if $(filter -O2,$(OPT)),-O3) $(FAST_X86)
# Each instruction set in its own file, with its own flags; the dispatcher
# calls a file only on a CPU that has them.
$(BUILD)/obj/fast/kern_avx512.o: EXTRA_CFLAGS += -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma
$(BUILD)/obj/fast/kern_avx2.o: EXTRA_CFLAGS += -mavx2 -mfma

# ---- make bench: build/bin/bench, with oneDNN when libdnnl-dev is there
# (probed only when the bench is built; without it the bench says SKIP).
FAST_BENCH := $(BUILD)/bin/bench
FAST_DNNL = $(shell echo 'int main(void) { return dnnl_version() == 0; }' | \
              $(CC) -x c -include dnnl.h - -o /dev/null -ldnnl >/dev/null 2>&1 && echo 1)
$(BUILD)/obj/fast/bench.o: EXTRA_CFLAGS = -fopenmp $(if $(FAST_DNNL),-DBNLAB_HAVE_DNNL)
$(FAST_BENCH): $(BUILD)/obj/fast/bench.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(if $(FAST_DNNL),-ldnnl) $(LDLIBS_LIB)
-include $(BUILD)/obj/fast/bench.d
all: $(FAST_BENCH)

# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--quick --no-ref".
# The output is kept in out/bench/bench.txt, headed by a "# note:" line (CPU,
# cores, date, load) that plots/speedup.gp prints under its title.
.PHONY: bench
bench: $(FAST_BENCH)
	@echo "make bench: $(if $(FAST_DNNL),oneDNN found (libdnnl),SKIP: oneDNN: libdnnl-dev is not installed) ; machine load: $$(cut -d' ' -f1-3 /proc/loadavg)"
	@mkdir -p out/bench
	bash -o pipefail -c '{ echo "# note: $$(sed -n "s/^model name[^:]*: *//p" /proc/cpuinfo | head -n 1), $$(nproc) cores, $$(date +%F), load $$(cut -d" " -f1 /proc/loadavg)"; \
	    $(FAST_BENCH) $(BENCH_ARGS); } | tee out/bench/bench.txt'
	@echo "make bench: log in out/bench/bench.txt; draw it: make plots BENCH_LOG=out/bench/bench.txt"
