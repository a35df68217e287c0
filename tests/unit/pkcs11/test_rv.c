/*
 * tests/unit/pkcs11/test_rv.c: CK_RV names and their translation into
 * P11_E* codes, checked against the numbers PKCS#11 2.40 assigns.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pkcs11/p11.h"

static const struct {
	unsigned long rv;
	const char *name;
	int error;
} cases[] = {
	{ 0x000, "CKR_OK", 0 },
	{ 0x002, "CKR_HOST_MEMORY", P11_ENOMEM },
	{ 0x005, "CKR_GENERAL_ERROR", P11_EGENERAL },
	{ 0x006, "CKR_FUNCTION_FAILED", P11_EGENERAL },
	{ 0x020, "CKR_DATA_INVALID", P11_EDATA },
	{ 0x030, "CKR_DEVICE_ERROR", P11_EDEVICE },
	{ 0x031, "CKR_DEVICE_MEMORY", P11_ENOMEM },
	{ 0x032, "CKR_DEVICE_REMOVED", P11_EDEVICE },
	{ 0x040, "CKR_ENCRYPTED_DATA_INVALID", P11_EINTEGRITY },
	{ 0x054, "CKR_FUNCTION_NOT_SUPPORTED", P11_ENOTSUPP },
	{ 0x060, "CKR_KEY_HANDLE_INVALID", P11_ESESSION },
	{ 0x062, "CKR_KEY_SIZE_RANGE", P11_EKEY },
	{ 0x068, "CKR_KEY_FUNCTION_NOT_PERMITTED", P11_EKEY },
	{ 0x06A, "CKR_KEY_UNEXTRACTABLE", P11_EKEY },
	{ 0x070, "CKR_MECHANISM_INVALID", P11_EMECH },
	{ 0x082, "CKR_OBJECT_HANDLE_INVALID", P11_ESESSION },
	{ 0x090, "CKR_OPERATION_ACTIVE", P11_ESESSION },
	{ 0x0A0, "CKR_PIN_INCORRECT", P11_EPIN },
	{ 0x0A4, "CKR_PIN_LOCKED", P11_EPIN },
	{ 0x0B0, "CKR_SESSION_CLOSED", P11_ESESSION },
	{ 0x0B3, "CKR_SESSION_HANDLE_INVALID", P11_ESESSION },
	{ 0x0D0, "CKR_TEMPLATE_INCOMPLETE", P11_EDATA },
	{ 0x0E0, "CKR_TOKEN_NOT_PRESENT", P11_EDEVICE },
	{ 0x101, "CKR_USER_NOT_LOGGED_IN", P11_ESESSION },
	{ 0x102, "CKR_USER_PIN_NOT_INITIALIZED", P11_EPIN },
	{ 0x110, "CKR_WRAPPED_KEY_INVALID", P11_EINTEGRITY },
	{ 0x113, "CKR_WRAPPING_KEY_HANDLE_INVALID", P11_ESESSION },
	{ 0x150, "CKR_BUFFER_TOO_SMALL", P11_EDATA },
	{ 0x190, "CKR_CRYPTOKI_NOT_INITIALIZED", P11_EDEVICE },
	{ 0x200, "CKR_FUNCTION_REJECTED", P11_EGENERAL },
};

static void
test_names_and_errors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(p11_rv_name(cases[i].rv), cases[i].name);
		assert_int_equal(p11_rv_to_error(cases[i].rv), cases[i].error);
	}
}

static void
test_unknown_codes(void **state)
{
	(void)state;
	assert_string_equal(p11_rv_name(0x80000001UL), "CKR_0x80000001");
	assert_int_equal(p11_rv_to_error(0x80000001UL), P11_EGENERAL);
	/* Every P11_E* code has a message of its own. */
	assert_string_not_equal(sr_strerror(P11_EDEVICE), "unknown error");
	assert_string_equal(sr_errname(P11_EINTEGRITY), "P11_EINTEGRITY");
}

static void
test_mech_names(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < P11_MECH_COUNT; i++)
		assert_int_equal(
		    strncmp(p11_mech_name((enum p11_mech)i), "CKM_", 4), 0);
	assert_string_equal(p11_mech_name(P11_MECH_COUNT), "CKM_UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_errors),
		cmocka_unit_test(test_unknown_codes),
		cmocka_unit_test(test_mech_names),
	};

	return cmocka_run_group_tests_name("pkcs11/rv", tests, NULL, NULL);
}
