# chapters/module.mk — the training toolkit and the chapter programs.
#
# chapters/toolkit/*.c become one static library, $(BUILD)/libbnlab_toolkit.a,
# that every chapter program links (chapters never copy toolkit or library
# code). A chapter chapters/<name>.c becomes $(BUILD)/bin/<name>, linked with
# the toolkit, libbnlab.a, GSL, zlib (the IDX reader) and OpenBLAS, which
# provides the cblas_* symbols behind GSL's CBLAS interface (gsl/gsl_cblas.h)
# in place of GSL's slow reference libgslcblas. chapters/transform.c needs
# none of that and keeps the Makefile's plain rule.
#
# tests/test_toolkit.c links the toolkit too (with libgslcblas, as every test).
#
# For `make plots`: PLOT_ARGS_<name> are a chapter's arguments for the
# figures, QUICK_ARGS_<name> are added for `make plots QUICK=1` (CI).

TOOLKIT_SRC := $(wildcard chapters/toolkit/*.c)
TOOLKIT_OBJ := $(TOOLKIT_SRC:%.c=$(BUILD)/obj/%.o)
TOOLKIT_A   := $(BUILD)/libbnlab_toolkit.a
BLAS_LIBS   := $(or $(shell pkg-config --libs openblas 2>/dev/null),-lopenblas)
# -lgsl without -lgslcblas: OpenBLAS's cblas_sgemm is the one that binds.
CHAPTER_LIBS = -lgsl $(BLAS_LIBS) -lz
TOOLKIT_PROGS := $(PROGS)

-include $(TOOLKIT_OBJ:.o=.d)

$(BUILD)/obj/chapters/%.o: EXTRA_CFLAGS = -Ichapters/toolkit $(GSL_CFLAGS)
$(BUILD)/obj/tests/test_toolkit.o: EXTRA_CFLAGS = -Ichapters/toolkit

$(TOOLKIT_A): $(TOOLKIT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(TOOLKIT_PROGS): $(BUILD)/bin/%: $(BUILD)/obj/chapters/%.o $(TOOLKIT_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(CHAPTER_LIBS) $(LDLIBS_LIB)

# The Makefile's test rule links $^ then GSL and Check; the toolkit archive
# lands after libbnlab.a there, so libbnlab.a comes once more, then zlib.
$(BUILD)/tests/test_toolkit: $(TOOLKIT_A)
$(BUILD)/tests/test_toolkit: LDLIBS_LIB += $(LIB_A) -lz

.PHONY: toolkit
toolkit: $(TOOLKIT_A)

# Figure 1 (paper §4.1): the full run is the paper's 50,000 steps per network.
PLOT_ARGS_fig1  :=
QUICK_ARGS_fig1 := --steps 2500 --eval-every 250

# Chapter objects are never intermediate files to delete (make would remove
# transform.o after linking, then rebuild it, relink and rerun the chapter).
.SECONDARY: $(PROG_SRC:chapters/%.c=$(BUILD)/obj/chapters/%.o)
