# appliance/: the daemon. Everything but main.c goes into a library that
# the appliance's tests link too.
APP_SRCS := $(filter-out appliance/main.c,$(sort $(wildcard appliance/*.c)))
APP_A := $(BUILD)/lib/libsr_app.a
APP_SAN_A := $(SAN)/lib/libsr_app.a
APP_BIN := $(BUILD)/bin/strongroomd
# mbedTLS and llhttp link statically; yyjson ships only as a shared library
# in Debian 13, found through the rpath of the deps folder. libargon2
# (Debian 12) hashes console passwords.
# mbedTLS's calls to psa_export_public_key go through tls_x25519.c (an
# X25519 key's public half by the library's own fast X25519; see there);
# -u pulls that file from the archive into every program that links this.
# The TLS server key's ECDSA signatures go through tls_ecdsa.c to Debian's
# libcrypto (see there) the same way, and so do AES-GCM records
# (tls_gcm.c).
APP_GCM_WRAP := mbedtls_cipher_setkey mbedtls_cipher_auth_encrypt_ext \
	mbedtls_cipher_auth_decrypt_ext mbedtls_cipher_free
APP_EXT := -Wl,--wrap=psa_export_public_key -Wl,-u,__wrap_psa_export_public_key \
	-Wl,--wrap=mbedtls_pk_sign_ext -Wl,--wrap=mbedtls_pk_sign \
	-Wl,-u,__wrap_mbedtls_pk_sign_ext -Wl,-u,__wrap_mbedtls_pk_sign \
	$(foreach f,$(APP_GCM_WRAP),-Wl,--wrap=$(f) -Wl,-u,__wrap_$(f)) \
	$(DEPLIB)/libmbedtls.a $(DEPLIB)/libmbedx509.a $(MBEDCRYPTO) \
	$(DEPLIB)/libllhttp.a -L$(DEPLIB) -lyyjson -Wl,-rpath,$(DEPLIB) -luv \
	-largon2 -lcrypto

# The shipped policy is compiled in (policy_parse.c's policy_load_default),
# so the daemon never depends on the folder it was started from: the file
# becomes one C string literal, line by line.
APP_POLICY_INC := $(BUILD)/gen/policy_default.inc
$(APP_POLICY_INC): appliance/policy.default
	@mkdir -p $(dir $@)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< >$@.tmp
	mv $@.tmp $@
$(BUILD)/obj/appliance/policy_parse.o $(SAN)/obj/appliance/policy_parse.o: \
	    $(APP_POLICY_INC)
$(BUILD)/obj/appliance/policy_parse.o $(SAN)/obj/appliance/policy_parse.o: \
	    CPPFLAGS += -I$(BUILD)/gen

appliance-bin: $(APP_BIN)
.PHONY: appliance-bin

$(APP_A): $(APP_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(APP_SAN_A): $(APP_SRCS:%.c=$(SAN)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(APP_BIN): $(BUILD)/obj/appliance/main.o $(APP_A) $(INF_LINK) $(KS_A) \
	    $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(APP_A) $(INF_LINK) $(KS_A) $(P11_A) \
	    $(LIB_A) $(APP_EXT) $(INF_EXT) $(LDLIBS)

# The daemon under ASan+UBSan, for the real-client tests' second run.
APP_SAN_BIN := $(SAN)/bin/strongroomd
$(APP_SAN_BIN): $(SAN)/obj/appliance/main.o $(APP_SAN_A) $(INF_SAN_LINK) \
	    $(KS_SAN_A) $(P11_SAN_A) $(LIB_SAN_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) $< -o $@ $(APP_SAN_A) $(INF_SAN_LINK) \
	    $(KS_SAN_A) $(P11_SAN_A) $(LIB_SAN_A) $(APP_EXT) $(INF_EXT) \
	    $(LDLIBS)
