# appliance/: the daemon.
APP_SRCS := appliance/main.c
APP_BIN := $(BUILD)/bin/strongroomd

appliance-bin: $(APP_BIN)
.PHONY: appliance-bin

$(APP_BIN): $(APP_SRCS:%.c=$(BUILD)/obj/%.o) $(P11_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.o,$^) -o $@ $(P11_A) $(LIB_A) $(MBEDCRYPTO) $(LDLIBS)
