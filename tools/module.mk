# tools/: command-line tools and benchmarks.
TOOLS_BINS := $(BUILD)/bin/sr-p11 $(BUILD)/bin/sr-keys $(BUILD)/bin/p11-bench \
	$(BUILD)/bin/ks-bench $(BUILD)/bin/tls-ceiling $(BUILD)/bin/sr-audit \
	$(BUILD)/bin/audit-bench $(BUILD)/bin/sr-mkmodel $(BUILD)/bin/cpu-bench \
	$(BUILD)/bin/tok-bench $(BUILD)/bin/gpu-bench $(BUILD)/bin/sr-policy \
	$(BUILD)/bin/sr-generate $(BUILD)/bin/serve-bench

tools: $(TOOLS_BINS)
.PHONY: tools

$(BUILD)/bin/sr-p11: $(BUILD)/obj/tools/sr-p11.o $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(P11_A) $(LIB_A) $(MBEDCRYPTO) $(LDLIBS)

$(BUILD)/bin/sr-keys: $(BUILD)/obj/tools/sr-keys.o \
	    $(BUILD)/obj/tools/ks_open.o $(KS_A) $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.o,$^) -o $@ $(KS_A) $(P11_A) $(LIB_A) $(MBEDCRYPTO) $(LDLIBS)

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
	$(CC) $(CFLAGS) $< -o $@ $(MBEDCRYPTO) -lcrypto $(LDLIBS)

# The audit log's verifier/query and its benchmark: the appliance library's
# audit part (yyjson through the deps rpath, as the daemon links it); the
# verifier's `pubkey` reads the checkpoint key's public point from the
# keystore, as sr-keys does.
$(BUILD)/bin/sr-audit: $(BUILD)/obj/tools/sr-audit.o \
	    $(BUILD)/obj/tools/ks_open.o $(APP_A) $(KS_A) $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.o,$^) -o $@ $(APP_A) $(KS_A) $(P11_A) $(LIB_A) $(APP_EXT) $(LDLIBS)

$(BUILD)/bin/audit-bench: $(BUILD)/obj/tools/bench/audit_bench.o $(APP_A) \
	    $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(APP_A) $(LIB_A) $(APP_EXT) $(LDLIBS)

$(BUILD)/bin/sr-mkmodel: $(BUILD)/obj/tools/sr-mkmodel.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LIB_A) $(LDLIBS)

$(BUILD)/bin/cpu-bench: $(BUILD)/obj/tools/bench/cpu_bench.o $(INF_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(INF_A) $(LIB_A) -L$(DEPLIB) -lyyjson \
	    -Wl,-rpath,$(DEPLIB) $(INF_EXT) -lpthread

# The tokenizer's figures; yyjson is a shared library found through the
# deps folder's rpath.
$(BUILD)/bin/tok-bench: $(BUILD)/obj/tools/bench/tok_bench.o $(INF_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(INF_A) $(LIB_A) -L$(DEPLIB) -lyyjson \
	    -Wl,-rpath,$(DEPLIB) $(INF_EXT) $(LDLIBS)

# The GPU figures (tools/bench/gpu_bench.c); without a GPU it prints
# "skipped" and exits 0. Random models are written once under
# $(BUILD)/bench-models (3.6 GB and 16 GB).
$(BUILD)/bin/gpu-bench: $(BUILD)/obj/tools/bench/gpu_bench.o $(INF_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(INF_A) $(LIB_A) -L$(DEPLIB) -lyyjson \
	    -Wl,-rpath,$(DEPLIB) $(INF_EXT) -lpthread

bench-gpu: $(BUILD)/bin/gpu-bench $(BUILD)/bin/sr-mkmodel
	$(BUILD)/bin/gpu-bench $(BUILD)/bench-models $(BUILD)/bin
.PHONY: bench-gpu

# The policy checker and the authorization matrix: the daemon's own policy
# evaluator and route table (so the appliance's library and what it links).
$(BUILD)/bin/sr-policy: $(BUILD)/obj/tools/sr-policy.o $(APP_A) $(INF_LINK) \
	    $(KS_A) $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(APP_A) $(INF_LINK) $(KS_A) $(P11_A) \
	    $(LIB_A) $(APP_EXT) $(INF_EXT) $(LDLIBS)

# Generation from the command line: the whole inference module
# (and the serving tests' expectations, with --json).
$(BUILD)/bin/sr-generate: $(BUILD)/obj/tools/sr-generate.o $(INF_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(INF_A) $(LIB_A) -L$(DEPLIB) -lyyjson \
	    -Wl,-rpath,$(DEPLIB) $(INF_EXT) $(LDLIBS)

# The serving benchmark's anchor: the scheduler in-process, no HTTP.
$(BUILD)/bin/serve-bench: $(BUILD)/obj/tools/bench/serve_bench.o $(APP_A) \
	    $(INF_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(APP_A) $(INF_A) $(LIB_A) $(APP_EXT) \
	    $(INF_EXT) $(LDLIBS)
