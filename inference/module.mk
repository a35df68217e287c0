# inference/: model loading, tokenizer, chat templates, CPU (and later CUDA)
# forward pass and generation. Knows nothing about keys, TLS or HTTP.
INF_SRCS := $(sort $(wildcard inference/*.c))
INF_A := $(BUILD)/lib/libsr_inf.a
INF_SAN_A := $(SAN)/lib/libsr_inf.a
# PCRE2 runs the tokenizer's pre-tokenizer regex; libunistring normalizes.
INF_EXT := -lpcre2-8 -lunistring -lm

# The archive exists once the module has sources.
INF_LINK := $(if $(INF_SRCS),$(INF_A))
INF_SAN_LINK := $(if $(INF_SRCS),$(INF_SAN_A))

inference: $(INF_LINK)
$(INF_A): $(INF_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(INF_SAN_A): $(INF_SRCS:%.c=$(SAN)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
.PHONY: inference
