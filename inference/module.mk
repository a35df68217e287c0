# inference/: model loading, tokenizer, chat templates, CPU and CUDA
# forward passes and generation. Knows nothing about keys, TLS or HTTP.
#
# With nvcc (Makefile's NVCC), the CUDA backend (inference/cuda/: C host
# files and .cu kernels for sm_90, SASS plus compute_90 PTX) goes into the
# archive and every program linking it gets the CUDA runtime and cuBLAS
# (rpath). Without nvcc, inference/cuda_none.c stands in for it. The
# sanitizer archive always takes cuda_none.c: ASan does not go with the
# CUDA runtime, and the CPU path is what it checks.
INF_ALL_C := $(sort $(wildcard inference/*.c))
INF_SRCS := $(if $(NVCC),$(filter-out inference/cuda_none.c,$(INF_ALL_C)),$(INF_ALL_C))
INF_SAN_SRCS := $(INF_ALL_C)
INF_CUDA_C := $(if $(NVCC),$(sort $(wildcard inference/cuda/*.c)))
INF_CUDA_CU := $(if $(NVCC),$(sort $(wildcard inference/cuda/*.cu)))
INF_A := $(BUILD)/lib/libsr_inf.a
INF_SAN_A := $(SAN)/lib/libsr_inf.a
# PCRE2 runs the tokenizer's pre-tokenizer regex; libunistring normalizes.
INF_EXT := -lpcre2-8 -lunistring -lm
INF_BASE_EXT := $(INF_EXT) # without the CUDA libraries

CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_LIB := $(CUDA_HOME)/lib64
# No --use_fast_math: RoPE takes cosf/sinf of angles up to the context
# length, where the fast intrinsics lose digits; exp and sqrt are a
# negligible part of memory-bound kernels.
NVCCFLAGS := -std=c++17 -O3 -I. \
	-gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90 \
	-Xcompiler -fPIC,-Wall,-Wextra,-fno-exceptions --Werror all-warnings
ifneq ($(NVCC),)
INF_EXT += -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lcublas -lcudart -lstdc++
endif

# The archive exists once the module has sources.
INF_LINK := $(if $(INF_SRCS),$(INF_A))
INF_SAN_LINK := $(if $(INF_SRCS),$(INF_SAN_A))
INF_OBJS := $(INF_SRCS:%.c=$(BUILD)/obj/%.o) \
	$(INF_CUDA_C:%.c=$(BUILD)/obj/%.o) $(INF_CUDA_CU:%.cu=$(BUILD)/obj/%.o)

inference: $(INF_LINK)
$(INF_A): $(INF_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^
$(INF_SAN_A): $(INF_SAN_SRCS:%.c=$(SAN)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# The backend's C files see the CUDA headers as system headers.
$(INF_CUDA_C:%.c=$(BUILD)/obj/%.o): CPPFLAGS += -isystem $(CUDA_HOME)/include

$(BUILD)/obj/%.o: %.cu | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@
.PHONY: inference
