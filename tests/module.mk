# tests/: cmocka unit tests (tests/unit/<module>/test_*.c), integration
# tests (tests/integration/<area>/test_*.c and *.sh), and the fault-injection
# PKCS#11 module (tests/fault/).
UNIT_SRCS := $(sort $(wildcard tests/unit/*/test_*.c))
INTEG_SRCS := $(sort $(wildcard tests/integration/*/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/%.c=$(BUILD)/test/%)
INTEG_BINS := $(INTEG_SRCS:tests/%.c=$(BUILD)/test/%)
# Under ASan+UBSan: every unit test, and the integration tests listed here
# (fault injection for leaks on error paths, threads for races on memory).
SAN_INTEG := tests/integration/pkcs11/test_fault.c \
	tests/integration/pkcs11/test_threads.c \
	tests/integration/keystore/test_ks_fault.c \
	tests/integration/keystore/test_keystore_use.c \
	tests/integration/keystore/test_keystore_sign.c \
	tests/integration/keystore/test_keystore_update.c \
	tests/integration/keystore/test_keystore_usage.c \
	tests/integration/appliance/test_stream.c
SAN_BINS := $(UNIT_SRCS:tests/%.c=$(SAN)/test/%) \
	$(SAN_INTEG:tests/%.c=$(SAN)/test/%)
FAULT_SO := $(BUILD)/lib/libsr_p11fault.so
TEST_LIBS := $(APP_A) $(INF_LINK) $(KS_A) $(P11_A) $(LIB_A) $(APP_EXT) $(INF_EXT) \
	-lcmocka -lz $(LDLIBS)
SAN_TEST_LIBS := $(APP_SAN_A) $(INF_SAN_LINK) $(KS_SAN_A) $(P11_SAN_A) $(LIB_SAN_A) \
	$(APP_EXT) $(INF_BASE_EXT) -lcmocka -lz $(LDLIBS)

tests-build: $(UNIT_BINS) $(INTEG_BINS) $(FAULT_SO)
tests-san: $(SAN_BINS) $(FAULT_SO)
.PHONY: tests-build tests-san

$(BUILD)/test/%: $(BUILD)/obj/tests/%.o $(APP_A) $(INF_LINK) $(KS_A) $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(TEST_LIBS)

$(SAN)/test/%: $(SAN)/obj/tests/%.o $(APP_SAN_A) $(INF_SAN_LINK) $(KS_SAN_A) $(P11_SAN_A) $(LIB_SAN_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) $< -o $@ $(SAN_TEST_LIBS)

# The fault module is a plain shared object without sanitizers: it stands in
# for a vendor module, which is never instrumented either.
$(FAULT_SO): tests/fault/p11fault.c | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared -fvisibility=hidden $< -o $@ -ldl -lpthread

# The libFuzzer target for the HTTP request path (clang). `make test` runs
# it for a bounded time; `make fuzz` longer (FUZZ_SECONDS).
FUZZ_HTTP := $(BUILD)/fuzz/fuzz_http
FUZZ_HTTP_SRCS := tests/fuzz/fuzz_http.c appliance/http.c \
	appliance/http_response.c appliance/buf.c \
	$(LIB_SRCS)
FUZZ_SECONDS ?= 300

$(FUZZ_HTTP): $(FUZZ_HTTP_SRCS) appliance/internal.h appliance/http_impl.h lib/sr.h | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined \
	    $(FUZZ_HTTP_SRCS) -o $@ $(DEPLIB)/libllhttp.a -L$(DEPLIB) \
	    -lyyjson -Wl,-rpath,$(DEPLIB) -lpthread

# The libFuzzer target for the safetensors header parser.
FUZZ_ST := $(BUILD)/fuzz/fuzz_safetensors
FUZZ_ST_SRCS := tests/fuzz/fuzz_safetensors.c inference/safetensors.c \
	$(LIB_SRCS)

$(FUZZ_ST): $(FUZZ_ST_SRCS) inference/model_internal.h \
	    inference/inference.h lib/sr.h | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined \
	    $(FUZZ_ST_SRCS) -o $@ -L$(DEPLIB) -lyyjson -Wl,-rpath,$(DEPLIB) \
	    -lpthread

# The libFuzzer target for the tokenizer: its own sources only (the model
# code beside it in inference/ is not needed), both fixtures loaded once.
FUZZ_TOK := $(BUILD)/fuzz/fuzz_tokenizer
FUZZ_TOK_SRCS := tests/fuzz/fuzz_tokenizer.c lib/secret.c \
	$(filter inference/tok% inference/chat%,$(INF_SRCS))

$(FUZZ_TOK): $(FUZZ_TOK_SRCS) inference/tokenizer.h inference/tok_internal.h \
	    lib/sr.h \
	    tests/unit/inference/utf8check.h \
	    | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined \
	    $(FUZZ_TOK_SRCS) -o $@ -L$(DEPLIB) -lyyjson -Wl,-rpath,$(DEPLIB) \
	    $(INF_BASE_EXT) -lpthread

# The libFuzzer target for bearer tokens: JWT verification (whole tokens,
# and header/payload pairs it signs itself to reach the claims checks)
# and base64url.
FUZZ_JWT := $(BUILD)/fuzz/fuzz_jwt
FUZZ_JWT_SRCS := tests/fuzz/fuzz_jwt.c appliance/jwt.c appliance/jwt_keys.c \
	appliance/jwt_cache.c appliance/digest.c $(LIB_SRCS)

$(FUZZ_JWT): $(FUZZ_JWT_SRCS) appliance/jwt.h appliance/jwt_impl.h \
	    appliance/digest.h lib/sr.h | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined \
	    $(FUZZ_JWT_SRCS) -o $@ $(MBEDCRYPTO) -L$(DEPLIB) -lyyjson \
	    -Wl,-rpath,$(DEPLIB) -lcrypto -lpthread

# The libFuzzer target for form and query decoding (the /oauth/token body,
# every query string), checked against a plain second decoder.
FUZZ_FORM := $(BUILD)/fuzz/fuzz_form
FUZZ_FORM_SRCS := tests/fuzz/fuzz_form.c appliance/api_form.c $(LIB_SRCS)

$(FUZZ_FORM): $(FUZZ_FORM_SRCS) appliance/api_impl.h lib/sr.h | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined $(FUZZ_FORM_SRCS) -o $@ \
	    -L$(DEPLIB) -lyyjson -Wl,-rpath,$(DEPLIB) -lpthread

fuzz: $(FUZZ_HTTP) $(FUZZ_ST) $(FUZZ_TOK) $(FUZZ_JWT) $(FUZZ_FORM)
	@mkdir -p $(BUILD)/fuzz/corpus-http $(BUILD)/fuzz/corpus-safetensors \
	    $(BUILD)/fuzz/corpus-tokenizer $(BUILD)/fuzz/corpus-jwt \
	    $(BUILD)/fuzz/corpus-form
	$(FUZZ_HTTP) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)/fuzz/corpus-http tests/fuzz/corpus/http
	$(FUZZ_ST) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)/fuzz/corpus-safetensors tests/fuzz/corpus/safetensors
	$(FUZZ_TOK) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)/fuzz/corpus-tokenizer tests/fuzz/corpus/tokenizer
	$(FUZZ_JWT) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)/fuzz/corpus-jwt tests/fuzz/corpus/jwt
	$(FUZZ_FORM) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)/fuzz/corpus-form tests/fuzz/corpus/form
.PHONY: fuzz
