# tools/: command-line tools and benchmarks.
TOOLS_BINS := $(BUILD)/bin/sr-p11 $(BUILD)/bin/sr-keys $(BUILD)/bin/p11-bench \
	$(BUILD)/bin/ks-bench $(BUILD)/bin/tls-ceiling $(BUILD)/bin/tok-bench

tools: $(TOOLS_BINS)
.PHONY: tools

$(BUILD)/bin/sr-p11: $(BUILD)/obj/tools/sr-p11.o $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(P11_A) $(LIB_A) $(MBEDCRYPTO) $(LDLIBS)

$(BUILD)/bin/sr-keys: $(BUILD)/obj/tools/sr-keys.o $(KS_A) $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(KS_A) $(P11_A) $(LIB_A) $(MBEDCRYPTO) $(LDLIBS)

$(BUILD)/bin/p11-bench: $(BUILD)/obj/tools/bench/p11_bench.o \
	    $(BUILD)/obj/tools/bench/p11_raw.o $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.o,$^) -o $@ $(P11_A) $(LIB_A) $(MBEDCRYPTO) $(LDLIBS)

$(BUILD)/bin/ks-bench: $(BUILD)/obj/tools/bench/ks_bench.o \
	    $(BUILD)/obj/tools/bench/p11_raw.o $(KS_A) $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.o,$^) -o $@ $(KS_A) $(P11_A) $(LIB_A) $(MBEDCRYPTO) $(LDLIBS)

$(BUILD)/bin/tls-ceiling: $(BUILD)/obj/tools/bench/tls_ceiling.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(MBEDCRYPTO) $(LDLIBS)

# The tokenizer's figures; yyjson is a shared library found through the
# deps folder's rpath.
$(BUILD)/bin/tok-bench: $(BUILD)/obj/tools/bench/tok_bench.o $(INF_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(INF_A) $(LIB_A) -L$(DEPLIB) -lyyjson \
	    -Wl,-rpath,$(DEPLIB) $(INF_EXT) $(LDLIBS)
