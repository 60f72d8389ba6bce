# bnlab — Batch Normalization, line by line, in C.   `make help` lists the targets.
#
# Before anything else, scripts/deps.sh installs missing Debian packages (or
# prints the apt-get command when not root). BNLAB_NO_DEPS=1 skips that.
# Then the probes below say what was found; optional parts that are missing
# are announced and skipped, never silently.

.DEFAULT_GOAL := all
.SUFFIXES:
SHELL := /bin/sh

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
# make's built-in default is cc; keep a user's choice, use gcc otherwise.
ifeq ($(origin CC),default)
CC := gcc
endif

# ------------------------------------------------------------- dependencies
NODEPS_GOALS := clean help
ifneq ($(BNLAB_NO_DEPS),1)
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
DEPS_RC := $(shell scripts/deps.sh >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error missing dependencies: see the message above (BNLAB_NO_DEPS=1 skips this check))
endif
endif
endif
# Sub-makes (debug, asan) don't need to look again.
export BNLAB_NO_DEPS := 1

# ------------------------------------------------------------------- probes
have = $(shell $(1) >/dev/null 2>&1 && echo 1)
HAVE_GSL     := $(call have,pkg-config --exists gsl)
HAVE_CHECK   := $(call have,pkg-config --exists check)
HAVE_GNUPLOT := $(call have,command -v gnuplot)
NVCC         ?= $(firstword $(shell command -v nvcc) $(wildcard /usr/local/cuda/bin/nvcc))
CPU_AVX512   := $(call have,grep -qw avx512f /proc/cpuinfo)
CPU_AVX2     := $(call have,grep -qw avx2 /proc/cpuinfo)

ifeq ($(MAKELEVEL),0)
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
$(info bnlab: $(if $(HAVE_GSL),✓ GSL,✗ GSL not found: tests and chapters will not build))
$(info bnlab: $(if $(HAVE_CHECK),✓ Check,✗ Check not found: make check cannot run))
$(info bnlab: $(if $(HAVE_GNUPLOT),✓ gnuplot,✗ gnuplot not found: figures are skipped))
$(info bnlab: $(if $(NVCC),✓ nvcc $(NVCC): cuda/ builds for sm_80 + sm_90 (+ PTX),✗ nvcc not found: cuda/ is skipped (everything else builds)))
$(info bnlab: CPU $(if $(CPU_AVX512),✓ AVX-512,$(if $(CPU_AVX2),✓ AVX2 (no AVX-512),✗ no AVX2 nor AVX-512)): fast/ will run its $(if $(CPU_AVX512),avx512,$(if $(CPU_AVX2),avx2,portable)) path (CPUID at run time; BNLAB_FAST_ISA=avx512|avx2|portable overrides))
endif
endif

# -------------------------------------------------------------------- flags
# No -ffast-math anywhere in ref/ or tests/: the reference is the oracle.
OPT      ?= -O2
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2
ifeq ($(CI),true)
WARN     += -Werror
endif
CFLAGS   ?=
CPPFLAGS += -Iinclude -Iref
# EXTRA_CFLAGS: per-target additions from a module (e.g. -mavx512f for one file).
ALL_CFLAGS = -std=gnu11 $(OPT) -g -fPIC -MMD -MP $(WARN) $(SAN) $(EXTRA_CFLAGS) $(CFLAGS)
LDLIBS_LIB := -lm
GSL_LIBS   = $(shell pkg-config --libs gsl 2>/dev/null)
GSL_CFLAGS = $(shell pkg-config --cflags gsl 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)

# ------------------------------------------------------------------ sources
LIB_SRC  := $(wildcard ref/*.c)
LIB_A    := $(BUILD)/libbnlab.a
SOVER    := 0
LIB_SO   := $(BUILD)/libbnlab.so.$(SOVER)

TEST_HARNESS := $(BUILD)/obj/tests/harness.o
TEST_SRC := $(filter-out tests/harness.c,$(wildcard tests/test_*.c))
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_EXTRA_OBJ :=

PROG_SRC := $(wildcard chapters/*.c)
PROGS    := $(PROG_SRC:chapters/%.c=$(BUILD)/bin/%)

# Modules: a folder that builds more than plain sources says how in its own
# <folder>/module.mk, included here before any rule. A module may add to
#   LIB_SRC (compiled into libbnlab), CPPFLAGS (e.g. -DBNLAB_HAVE_FAST),
#   LDLIBS_LIB (libraries the library needs), TEST_EXTRA_OBJ (linked into
#   every test program), and define its own targets and per-target EXTRA_CFLAGS.
MODULES := $(wildcard */module.mk)
include $(MODULES)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

-include $(LIB_OBJ:.o=.d) $(TEST_HARNESS:.o=.d) $(TEST_EXTRA_OBJ:.o=.d) $(TEST_SRC:tests/%.c=$(BUILD)/obj/tests/%.d) \
         $(PROG_SRC:chapters/%.c=$(BUILD)/obj/chapters/%.d)

# ------------------------------------------------------------------ targets
.PHONY: all lib tests check debug asan plots install uninstall clean help

all: lib $(PROGS) $(if $(HAVE_CHECK),tests)

lib: $(LIB_A) $(LIB_SO)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(GSL_CFLAGS) $(CHECK_CFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(LIB_SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libbnlab.so.$(SOVER) $(SAN) -o $@ $^ $(LDLIBS_LIB)
	ln -sf libbnlab.so.$(SOVER) $(BUILD)/libbnlab.so

tests: $(TESTS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HARNESS) $(TEST_EXTRA_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(GSL_LIBS) $(CHECK_LIBS) $(LDLIBS_LIB)

$(BUILD)/bin/%: $(BUILD)/obj/chapters/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(GSL_LIBS) $(LDLIBS_LIB)

# make check: every test program, each printing Check's summary; fails if any fails.
check: lib tests
ifeq ($(HAVE_CHECK),)
	@echo "make check: Check (libcheck) is not installed: cannot test. Run scripts/deps.sh." >&2; exit 1
endif
	@failed=0; for t in $(TESTS); do \
	    echo "== $$t"; $$t || failed=$$((failed + 1)); \
	done; \
	echo "== make check: $(words $(TESTS)) test programs, $$failed failed"; \
	test $$failed -eq 0

# make debug: -O0 -g3 into build/debug, to step through in gdb, e.g.
#   gdb --args build/debug/bin/transform ; break bn_forward_train_ref ; run
debug:
	$(MAKE) --no-print-directory BUILD=build/debug OPT="-O0 -g3" all

# make asan: the whole test suite under AddressSanitizer + UBSan.
asan:
	$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" check

# make plots: the lecture figures. Each chapter with a figure
# (chapters/<name>.c and plots/<name>.gp) runs once into
# $(DATADIR)/<name>.dat; that file is kept, so changing only plots/<name>.gp
# redraws without retraining (a rebuilt program reruns). gnuplot draws
# $(FIGDIR)/<name>.png and .pdf. PLOT_ARGS_<name> and QUICK_ARGS_<name> come
# from chapters/module.mk. QUICK=1 runs a short version of everything (CI)
# into out/quick/, so that it never stands in for the real figures.
OUTDIR   ?= $(if $(QUICK),out/quick,out)
DATADIR  := $(OUTDIR)/data
FIGDIR   := $(OUTDIR)/figures
CHAPTERS := $(filter $(PROG_SRC:chapters/%.c=%),$(basename $(notdir $(wildcard plots/*.gp))))
# speedup: fast/ against ref/ and oneDNN, drawn from a `make bench` log
# (default: the committed measurement, so the figure is the same everywhere;
# BENCH_LOG=out/bench/bench.txt draws your own run).
BENCH_LOG ?= plots/measured/bench.txt
FIGS     := $(CHAPTERS) speedup
FIGURES  := $(foreach c,$(FIGS),$(FIGDIR)/$(c).png $(FIGDIR)/$(c).pdf)

plots: $(if $(HAVE_GNUPLOT),$(FIGURES),$(FIGS:%=$(DATADIR)/%.dat))
ifeq ($(HAVE_GNUPLOT),1)
	@echo "make plots: $(words $(FIGURES)) figures in $(FIGDIR)/: $(notdir $(FIGURES))"
	@echo "make plots: their numbers in $(DATADIR)/ (delete a .dat to rerun its chapter)"
else
	@echo "make plots: SKIP figures: gnuplot is not installed (numbers are in $(DATADIR)/)"
endif

$(DATADIR)/%.dat: $(BUILD)/bin/%
	@mkdir -p $(@D)
	$< --seed 1 $(PLOT_ARGS_$*) $(if $(QUICK),$(QUICK_ARGS_$*)) --out $@

$(DATADIR)/speedup.dat: $(BENCH_LOG) scripts/bench_speedup.awk
	@mkdir -p $(@D)
	awk -f scripts/bench_speedup.awk $(BENCH_LOG) > $@

# Kept: make would delete them as intermediate files of the chain above.
.SECONDARY: $(FIGS:%=$(DATADIR)/%.dat)

# One gnuplot run writes both files (a pattern rule with two targets).
$(FIGDIR)/%.png $(FIGDIR)/%.pdf: $(DATADIR)/%.dat plots/%.gp
	@mkdir -p $(@D)
	gnuplot -e "datafile='$<'; outstem='$(FIGDIR)/$*'" plots/$*.gp

# make install PREFIX=/usr/local DESTDIR=: static and shared library, header, pkg-config file.
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libbnlab.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libbnlab.so
	install -m 644 include/bnlab.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define BNLAB_VERSION "\(.*\)"/\1/p' include/bnlab.h)|' \
	    scripts/bnlab.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/bnlab.pc
	@echo "installed bnlab into $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libbnlab.a $(DESTDIR)$(PREFIX)/lib/libbnlab.so* \
	      $(DESTDIR)$(PREFIX)/include/bnlab.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/bnlab.pc

clean:
	rm -rf build out

help:
	@echo "make            library, tests and programs (into $(BUILD)/)"
	@echo "make check      the test suite (Check); the README's test command"
	@echo "make plots      the lecture figures into $(FIGDIR)/ (PNG and PDF); QUICK=1: short runs into out/quick/"
	@echo "make debug      the same at -O0 -g3 into build/debug/, for gdb"
	@echo "make asan       the test suite under AddressSanitizer and UBSan"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=: library, header, bnlab.pc"
	@echo "make clean      remove build/ and out/"
	@echo "Variables: CI=true adds -Werror; BNLAB_NO_DEPS=1 skips scripts/deps.sh."
