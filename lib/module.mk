# lib/: shared helpers (logging, errors, secrets, utilities).
LIB_SRCS := lib/err.c lib/log.c lib/secret.c lib/util.c
LIB_A := $(BUILD)/lib/libsr.a
LIB_SAN_A := $(SAN)/lib/libsr.a

lib: $(LIB_A)
$(LIB_A): $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(LIB_SAN_A): $(LIB_SRCS:%.c=$(SAN)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
.PHONY: lib
