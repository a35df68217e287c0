# keystore/: the key hierarchy in LMDB under the HSM's root keys; the only
# code that includes lmdb.h.
KS_SRCS := $(filter-out keystore/module.mk,$(sort $(wildcard keystore/*.c)))
KS_A := $(BUILD)/lib/libsr_ks.a
KS_SAN_A := $(SAN)/lib/libsr_ks.a

keystore: $(KS_A)
$(KS_A): $(KS_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(KS_SAN_A): $(KS_SRCS:%.c=$(SAN)/obj/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
.PHONY: keystore
