# cuda/module.mk — cuda/: batch normalization in float on an NVIDIA GPU
# (device pointers and a stream; see docs/cuda.md). Included by the top
# Makefile before its rules (see "Modules" there).
#
# Built only when nvcc is found (the top Makefile's probe: PATH, then
# /usr/local/cuda/bin/nvcc; it prints what it found). Without nvcc nothing
# here is built, BNLAB_HAVE_CUDA stays undefined, and --impl cuda answers
# BN_ENOIMPL with the reason. The library then links libcudart (shared,
# found through an rpath): it loads on machines without a GPU driver, where
# cudaGetDeviceCount fails and cuda/ answers BN_ENODEVICE (tests: SKIP).

ifneq ($(NVCC),)
# nvcc may be a wrapper script (e.g. /usr/local/bin/nvcc that execs the
# toolkit's), so ask nvcc itself where its toolkit is: its dry run prints
# TOP=<toolkit>/bin/.. . Fall back to the directory above the real nvcc.
CUDA_HOME   := $(abspath $(or $(shell $(NVCC) --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | \
                 sed -n 's/^\#\$$ TOP=//p' | head -n 1),$(dir $(realpath $(NVCC)))/..))
CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib))
CUDA_INC    := -isystem $(CUDA_HOME)/include

CUDA_CU     := $(wildcard cuda/*.cu)
CUDA_CU_OBJ := $(CUDA_CU:%.cu=$(BUILD)/obj/%.o)

LIB_SRC    += cuda/cuda_api.c
CPPFLAGS   += -DBNLAB_HAVE_CUDA -Icuda
# nvcc's host code (the launch stubs) needs the C++ runtime too.
LDLIBS_LIB += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lstdc++

# The C files that call the CUDA runtime see its headers as system headers
# (the project's strict warnings are for our code, not NVIDIA's).
$(BUILD)/obj/cuda/cuda_api.o: EXTRA_CFLAGS := $(CUDA_INC)
$(BUILD)/obj/tests/test_cuda.o: EXTRA_CFLAGS := $(CUDA_INC)

# sm_80 (A100) and sm_90 (H100) machine code, plus compute_90 PTX that the
# driver compiles for newer GPUs. CI=true: every warning is an error, the
# device compiler's and the host compiler's. No fast-math: the statistics
# must round as written (bn_cuda_math.h).
NVCC_GENCODE := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_90,code=compute_90
NVCC_WARN    := -Xcompiler -Wall,-Wextra $(if $(filter true,$(CI)),-Werror all-warnings -Xcompiler -Werror)
NVCC_FLAGS   := -std=c++17 $(OPT) -g -lineinfo -Xcompiler -fPIC $(NVCC_GENCODE) $(NVCC_WARN)

$(CUDA_CU_OBJ): $(BUILD)/obj/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(CPPFLAGS) $(NVCC_FLAGS) -MMD -MP -c $< -o $@

# The kernels go into both libraries with the C objects.
$(LIB_A) $(LIB_SO): $(CUDA_CU_OBJ)
-include $(CUDA_CU_OBJ:.o=.d)

# ---- make bench-cuda: build/bin/bench_cuda, with cuDNN as the peer when
# cudnn.h and libcudnn are found (probed when the bench is built; without
# them the bench says SKIP). `make check` compiles it (never runs it), so
# that CI, which has nvcc but no GPU, keeps it compiling.
CUDA_BENCH := $(BUILD)/bin/bench_cuda
CUDA_CUDNN = $(shell echo 'int main(void) { return cudnnGetVersion() == 0; }' | \
               $(CC) -x c $(CUDA_INC) -include cudnn.h - -o /dev/null -L$(CUDA_LIBDIR) \
               -lcudnn >/dev/null 2>&1 && echo 1)
$(BUILD)/obj/cuda/bench_cuda.o: EXTRA_CFLAGS = $(CUDA_INC) $(if $(CUDA_CUDNN),-DBNLAB_HAVE_CUDNN)
$(CUDA_BENCH): $(BUILD)/obj/cuda/bench_cuda.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(if $(CUDA_CUDNN),-L$(CUDA_LIBDIR) -lcudnn) $(LDLIBS_LIB)
-include $(BUILD)/obj/cuda/bench_cuda.d
all: $(CUDA_BENCH)
check: $(CUDA_BENCH)

.PHONY: bench-cuda
bench-cuda: $(CUDA_BENCH)
	@echo "make bench-cuda: $(if $(CUDA_CUDNN),cuDNN found,SKIP: cuDNN: cudnn.h or libcudnn not found)"
	$(CUDA_BENCH) $(BENCH_CUDA_ARGS)
endif

# Without nvcc there is nothing to measure: say so.
ifeq ($(NVCC),)
.PHONY: bench-cuda
bench-cuda:
	@echo "SKIP: make bench-cuda: nvcc not found, cuda/ is not built"
endif
