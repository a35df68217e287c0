# pkcs11/: the only code that calls C_* functions.
P11_SRCS := pkcs11/uri.c pkcs11/rv.c pkcs11/module.c pkcs11/session.c \
	pkcs11/keys.c pkcs11/ops.c pkcs11/softhsm.c
P11_A := $(BUILD)/lib/libsr_p11.a
P11_SAN_A := $(SAN)/lib/libsr_p11.a

pkcs11: $(P11_A)
$(P11_A): $(P11_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(P11_SAN_A): $(P11_SRCS:%.c=$(SAN)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
.PHONY: pkcs11
