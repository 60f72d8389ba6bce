# data/module.mk — the conformance vectors (docs/conformance.md), included by
# the top Makefile before its rules.
#
#   make vectors      regenerate data/*.json with data/gen/ (byte-identical output)
#   make check-torch  run every vector PyTorch can express (python3-torch); not in make check
#   make check-tfjs   the same through TensorFlow.js (npm @tensorflow/tfjs, CPU); not in make check
#   make check-schema validate data/*.json against data/schema/ (python3-jsonschema)
#
# tests/test_vectors links the checker library (data/checker/: a small JSON
# reader and the vector runner) and runs every vector against ref, fast and
# cuda in make check.

VEC_GEN_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard data/gen/*.c))
VEC_GEN         := $(BUILD)/bin/gen_vectors
VEC_CHECKER_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard data/checker/*.c))
VEC_PYTHONS     := python3 /usr/bin/python3
TFJS_DIR        := data/consumers/tfjs

-include $(VEC_GEN_OBJ:.o=.d) $(VEC_CHECKER_OBJ:.o=.d)

# The generator: its own binary128 oracle (libquadmath), GSL's MT19937; it
# does not link libbnlab, whose ref/ the vectors check.
$(VEC_GEN_OBJ): EXTRA_CFLAGS := $(GSL_CFLAGS)
$(VEC_GEN): $(VEC_GEN_OBJ)
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(GSL_LIBS) -lquadmath -lm

# The test program gets the checker and knows where the vectors are. The
# checker's objects come after libbnlab.a on the link line ($^ keeps the
# pattern rule's order), so the library is named once more after them.
$(BUILD)/tests/test_vectors: $(VEC_CHECKER_OBJ)
$(BUILD)/tests/test_vectors: private LDLIBS_LIB += $(LIB_A) -lm
$(BUILD)/obj/tests/test_vectors.o: EXTRA_CFLAGS := -Idata/checker -DBNLAB_DATA_DIR='"$(CURDIR)/data"'

.PHONY: vectors vectors-fresh check-torch check-tfjs check-schema

vectors: $(VEC_GEN)
	$(VEC_GEN) --out data

# make check first proves that data/*.json are exactly what data/gen/ writes
# now: no stale vectors after a change to the generator, and regeneration is
# byte-identical (70 ms).
VEC_FRESH := $(BUILD)/vectors-fresh
check: vectors-fresh
vectors-fresh: $(VEC_GEN)
	@mkdir -p $(VEC_FRESH) && rm -f $(VEC_FRESH)/*.json
	@$(VEC_GEN) --out $(VEC_FRESH) 2>/dev/null
	@for f in $(VEC_FRESH)/*.json data/*.json; do n=$${f##*/}; \
	    cmp -s $(VEC_FRESH)/$$n data/$$n || { \
	        echo "make check: data/$$n is not what data/gen/ writes: run make vectors" >&2; exit 1; }; done; \
	echo "== data/*.json: byte-identical to a fresh run of data/gen/ ($$(ls $(VEC_FRESH) | wc -l) files)"

# PyTorch and numpy may live in a Python other than the first python3 on
# PATH (Debian's python3-torch is for /usr/bin/python3): take the first that has them.
check-torch:
	@py=; for p in $(VEC_PYTHONS); do \
	    if $$p -c 'import torch, numpy' >/dev/null 2>&1; then py=$$p; break; fi; done; \
	if [ -z "$$py" ]; then \
	    echo "SKIP: make check-torch: no python3 with torch and numpy (Debian: apt-get install python3-torch)"; \
	    exit 0; fi; \
	$$py data/consumers/torch/check_torch.py data

check-tfjs:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	    echo "SKIP: make check-tfjs: node and npm are not installed"; exit 0; fi; \
	if [ ! -f $(TFJS_DIR)/node_modules/@tensorflow/tfjs/package.json ]; then \
	    echo "check-tfjs: installing the pinned @tensorflow/tfjs into $(TFJS_DIR)/node_modules"; \
	    if ! (cd $(TFJS_DIR) && npm ci --no-audit --no-fund --loglevel=error); then \
	        echo "SKIP: make check-tfjs: npm could not install @tensorflow/tfjs (no registry?)"; exit 0; fi; fi; \
	node $(TFJS_DIR)/check_tfjs.js data

check-schema:
	@py=; for p in $(VEC_PYTHONS); do \
	    if $$p -c 'import jsonschema' >/dev/null 2>&1; then py=$$p; break; fi; done; \
	if [ -z "$$py" ]; then \
	    echo "SKIP: make check-schema: no python3 with jsonschema (Debian: apt-get install python3-jsonschema)"; \
	    exit 0; fi; \
	$$py data/consumers/validate_schema.py data
