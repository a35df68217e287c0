/*
 * tests/unit/pkcs11/test_uri.c: unit tests for the PKCS#11 URI parser
 * (pkcs11/uri.c).
 *
 * Good URIs (RFC 7512 section 3.3 examples, adapted where our rules are
 * stricter) are checked field by field; malformed ones must fail with
 * P11_EURI, a message naming the bad part, and a zeroed struct. These tests
 * must never see a pin-value in an error message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "pkcs11/p11.h"

/* The struct is large (two 4 KiB paths): keep it off the test stack. */
static struct p11_uri uri;

static void
assert_zeroed(const struct p11_uri *u)
{
	static const struct p11_uri zero;

	assert_memory_equal(u, &zero, sizeof(zero));
}

static void
parse_ok(const char *text)
{
	char err[P11_URI_ERR_MAX];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = p11_uri_parse(text, &uri, err);
	if (rc != 0)
		print_error("unexpected failure on \"%s\": %s\n", text, err);
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
}

/*
 * Parse @text, expect P11_EURI, a message holding @want (and @want2 if not
 * NULL), never holding @secret (if not NULL), and a zeroed struct.
 */
static void
parse_bad(
    const char *text, const char *want, const char *want2, const char *secret)
{
	char err[P11_URI_ERR_MAX];
	int rc;

	memset(&uri, 0x5a, sizeof(uri));
	memset(err, 0, sizeof(err));
	/* parse zeroes out before it starts; nothing to leak above. */
	rc = p11_uri_parse(text, &uri, err);
	assert_int_equal(rc, P11_EURI);
	assert_true(strlen(err) > 0);
	assert_true(strlen(err) < P11_URI_ERR_MAX);
	if (strstr(err, want) == NULL)
		print_error("message \"%s\" lacks \"%s\"\n", err, want);
	assert_non_null(strstr(err, want));
	if (want2 != NULL) {
		if (strstr(err, want2) == NULL)
			print_error(
			    "message \"%s\" lacks \"%s\"\n", err, want2);
		assert_non_null(strstr(err, want2));
	}
	if (secret != NULL)
		assert_null(strstr(err, secret));
	assert_zeroed(&uri);
	p11_uri_clear(&uri);
}

/* ------------------------------------------------------------------ */
/* Good URIs                                                            */
/* ------------------------------------------------------------------ */

static void
test_rfc_full(void **state)
{
	static const unsigned char id[] = { 0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd,
		0xec, 0x91 };

	(void)state;
	/* RFC 7512 3.3, with the empty "serial=" given a value. */
	parse_ok("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
	         "manufacturer=Snake%20Oil,%20Inc.;model=1.0;"
	         "object=my-certificate;type=cert;"
	         "id=%69%95%3E%5C%F4%BD%EC%91;serial=0123456789abcdef"
	         "?pin-source=file:/etc/token_pin");
	assert_string_equal(uri.token, "The Software PKCS#11 Softtoken");
	assert_string_equal(uri.manufacturer, "Snake Oil, Inc.");
	assert_string_equal(uri.model, "1.0");
	assert_string_equal(uri.object, "my-certificate");
	assert_string_equal(uri.serial, "0123456789abcdef");
	assert_int_equal(uri.type, P11_TYPE_CERT);
	assert_int_equal(uri.has_id, 1);
	assert_int_equal(uri.id_len, sizeof(id));
	assert_memory_equal(uri.id, id, sizeof(id));
	assert_string_equal(uri.pin_source, "file:/etc/token_pin");
	assert_int_equal(uri.has_slot_id, 0);
	assert_string_equal(uri.module_path, "");
	assert_int_equal(sr_secret_len(&uri.pin_value), 0);
	assert_null(sr_secret_bytes(&uri.pin_value));
	p11_uri_clear(&uri);
	assert_zeroed(&uri);
}

static void
test_rfc_module_name(void **state)
{
	(void)state;
	parse_ok("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11");
	assert_string_equal(uri.object, "my-sign-key");
	assert_int_equal(uri.type, P11_TYPE_PRIVATE);
	assert_string_equal(uri.module_name, "mypkcs11");
	assert_string_equal(uri.token, "");
	assert_int_equal(uri.has_id, 0);
	p11_uri_clear(&uri);
}

static void
test_rfc_pin_value(void **state)
{
	(void)state;
	parse_ok("pkcs11:token=Software%20PKCS%2311%20softtoken;"
	         "manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin");
	assert_string_equal(uri.token, "Software PKCS#11 softtoken");
	assert_string_equal(uri.manufacturer, "Snake Oil, Inc.");
	assert_int_equal(sr_secret_len(&uri.pin_value), 7);
	assert_memory_equal(sr_secret_bytes(&uri.pin_value), "the-pin", 7);
	assert_string_equal(uri.pin_source, "");
	p11_uri_clear(&uri);
	assert_zeroed(&uri);
}

static void
test_pin_value_decoded(void **state)
{
	(void)state;
	parse_ok("pkcs11:?pin-value=a%26b%23c%20d;e/f?g");
	assert_int_equal(sr_secret_len(&uri.pin_value), 13);
	assert_memory_equal(
	    sr_secret_bytes(&uri.pin_value), "a&b#c d;e/f?g", 13);
	p11_uri_clear(&uri);
}

static void
test_rfc_substring(void **state)
{
	(void)state;
	parse_ok("pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;"
	         "object=my-certificate;type=cert");
	assert_string_equal(uri.token, "A name with a substring %;");
	assert_string_equal(uri.object, "my-certificate");
	assert_int_equal(uri.type, P11_TYPE_CERT);
	p11_uri_clear(&uri);
}

static void
test_rfc_utf8_object(void **state)
{
	(void)state;
	/* The RFC puts this in token=, where it is 34 bytes: too long for
	 * a token label (see test_bad_token_utf8_long). */
	parse_ok("pkcs11:object=Name%20with%20a%20small%20A%20with%20acute:"
	         "%20%C3%A1;type=cert");
	assert_string_equal(
	    uri.object, "Name with a small A with acute: \xc3\xa1");
	p11_uri_clear(&uri);
}

static void
test_empty(void **state)
{
	(void)state;
	parse_ok("pkcs11:");
	assert_zeroed(&uri);
	parse_ok("PKCS11:");
	assert_zeroed(&uri);
}

static void
test_query_only(void **state)
{
	(void)state;
	parse_ok("pkcs11:?module-path=/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(uri.module_path, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(uri.token, "");
	p11_uri_clear(&uri);
}

static void
test_ignored_attributes(void **state)
{
	(void)state;
	parse_ok("pkcs11:slot-description=Sun%20Metaslot");
	assert_zeroed(&uri);
	parse_ok("pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;"
	         "library-description=Soft%20Token%20Library;"
	         "library-version=1.23;slot-manufacturer=Acme");
	assert_zeroed(&uri);
}

static void
test_vendor_attributes(void **state)
{
	(void)state;
	/* RFC 7512 3.3 uses vendor-aaa; only x- names are accepted here. */
	parse_ok("pkcs11:token=my-token;object=my-certificate;type=cert;"
	         "x-vendor-aaa=value-a?pin-source=file:/etc/token_pin&"
	         "x-vendor-bbb=value-b");
	assert_string_equal(uri.token, "my-token");
	assert_string_equal(uri.pin_source, "file:/etc/token_pin");
	p11_uri_clear(&uri);
}

static void
test_slot_id(void **state)
{
	char text[64];

	(void)state;
	parse_ok("pkcs11:slot-id=0");
	assert_int_equal(uri.has_slot_id, 1);
	assert_int_equal(uri.slot_id, 0);
	parse_ok("pkcs11:slot-id=007;token=t");
	assert_int_equal(uri.has_slot_id, 1);
	assert_int_equal(uri.slot_id, 7);
	parse_ok("pkcs11:slot-id=%31%32");
	assert_int_equal(uri.slot_id, 12);
	snprintf(text, sizeof(text), "pkcs11:slot-id=%lu", ULONG_MAX);
	parse_ok(text);
	assert_true(uri.slot_id == ULONG_MAX);
	p11_uri_clear(&uri);
}

static void
test_types(void **state)
{
	static const struct {
		const char *text;
		enum p11_obj_type type;
	} t[] = {
		{ "pkcs11:type=public", P11_TYPE_PUBLIC },
		{ "pkcs11:type=private", P11_TYPE_PRIVATE },
		{ "pkcs11:type=cert", P11_TYPE_CERT },
		{ "pkcs11:type=secret-key", P11_TYPE_SECRET_KEY },
		{ "pkcs11:type=data", P11_TYPE_DATA },
		{ "pkcs11:type=%64ata", P11_TYPE_DATA },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		parse_ok(t[i].text);
		assert_int_equal(uri.type, t[i].type);
	}
	parse_ok("pkcs11:token=x");
	assert_int_equal(uri.type, P11_TYPE_ANY);
	p11_uri_clear(&uri);
}

static void
test_id_raw_bytes(void **state)
{
	static const unsigned char id[] = { 0x00, 0x01, 0x00, 'A', 0xff };

	(void)state;
	parse_ok("pkcs11:id=%00%01%00A%ff");
	assert_int_equal(uri.has_id, 1);
	assert_int_equal(uri.id_len, sizeof(id));
	assert_memory_equal(uri.id, id, sizeof(id));
	p11_uri_clear(&uri);
}

static void
test_limits_exact(void **state)
{
	(void)state;
	/* 32-byte token, 16-byte serial and model, 64-byte id. */
	parse_ok("pkcs11:token=0123456789abcdef0123456789abcdef;"
	         "serial=0123456789abcdef;model=%30123456789abcdef;"
	         "id=0123456789abcdef0123456789abcdef"
	         "0123456789abcdef0123456789abcdef");
	assert_int_equal(strlen(uri.token), P11_URI_TOKEN_MAX);
	assert_int_equal(strlen(uri.serial), P11_URI_SERIAL_MAX);
	assert_int_equal(strlen(uri.model), P11_URI_MODEL_MAX);
	assert_int_equal(uri.id_len, P11_URI_ID_MAX);
	p11_uri_clear(&uri);
}

static void
test_allowed_raw_chars(void **state)
{
	(void)state;
	/* Path values may hold '&'; query values '/', '?', '|' and ';'. */
	parse_ok("pkcs11:object=a&b:c[d]@e!$'()*+,=~._-"
	         "?module-path=/opt/a;b|c?d/lib.so&module-name=m:n@o");
	assert_string_equal(uri.object, "a&b:c[d]@e!$'()*+,=~._-");
	assert_string_equal(uri.module_path, "/opt/a;b|c?d/lib.so");
	assert_string_equal(uri.module_name, "m:n@o");
	p11_uri_clear(&uri);
}

static void
test_init_args(void **state)
{
	(void)state;
	parse_ok("pkcs11:token=NSS%20Certificate%20DB"
	         "?module-path=/usr/lib/libsoftokn3.so&"
	         "x-init-args=configdir='sql:/etc/pki/nssdb'%20certPrefix=''");
	assert_string_equal(uri.token, "NSS Certificate DB");
	assert_string_equal(
	    uri.init_args, "configdir='sql:/etc/pki/nssdb' certPrefix=''");
	p11_uri_clear(&uri);
}

static void
test_pin_source_abs(void **state)
{
	(void)state;
	parse_ok("pkcs11:token=t?pin-source=/run/strongroom/user.pin");
	assert_string_equal(uri.pin_source, "/run/strongroom/user.pin");
	parse_ok("pkcs11:token=t?pin-source=file:///etc/pin");
	assert_string_equal(uri.pin_source, "file:///etc/pin");
	p11_uri_clear(&uri);
}

static void
test_err_null(void **state)
{
	(void)state;
	assert_int_equal(p11_uri_parse("pkcs11:token=a", &uri, NULL), 0);
	assert_string_equal(uri.token, "a");
	assert_int_equal(
	    p11_uri_parse("pkcs11:token=a;token=b", &uri, NULL), P11_EURI);
	assert_zeroed(&uri);
	assert_int_equal(
	    p11_uri_parse("pkcs11:?pin-value=x&foo=1", &uri, NULL), P11_EURI);
	assert_zeroed(&uri);
}

static void
test_null_args(void **state)
{
	char err[P11_URI_ERR_MAX];

	(void)state;
	assert_int_equal(p11_uri_parse("pkcs11:", NULL, err), -EINVAL);
	assert_int_equal(p11_uri_parse(NULL, &uri, err), P11_EURI);
	assert_non_null(strstr(err, "pkcs11:"));
	assert_zeroed(&uri);
}

static void
test_clear_zeroed(void **state)
{
	static struct p11_uri z;

	(void)state;
	p11_uri_clear(&z);
	assert_zeroed(&z);
	p11_uri_clear(&z);
	assert_zeroed(&z);
	p11_uri_clear(NULL);
}

static void
test_failure_after_pin_zeroes(void **state)
{
	(void)state;
	/* The PIN is stored before the bad module-path is seen; the failure
	 * must free it (ASan reports a leak otherwise) and zero all. */
	parse_bad("pkcs11:token=t?pin-value=hunter2&module-path=lib.so",
	    "module-path", "absolute", "hunter2");
}

static void
test_long_name_message_bounded(void **state)
{
	char text[400];

	(void)state;
	memcpy(text, "pkcs11:", 7);
	memset(text + 7, 'n', 300);
	memcpy(text + 307, "=v", 3);
	parse_bad(text, "unknown attribute 'nnnn", NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Malformed URIs                                                       */
/* ------------------------------------------------------------------ */

#define BAD(name, text, want, want2) \
	static void test_bad_##name(void **state) \
	{ \
		(void)state; \
		parse_bad(text, want, want2, NULL); \
	}
#define BAD_PIN(name, text, want, want2, pin) \
	static void test_bad_##name(void **state) \
	{ \
		(void)state; \
		parse_bad(text, want, want2, pin); \
	}

BAD(no_scheme, "token=x", "missing 'pkcs11:' scheme", NULL)
BAD(http_scheme, "http://example.com/pkcs11:token=x", "'pkcs11:'", NULL)
BAD(short_scheme, "pkcs11", "'pkcs11:'", NULL)
BAD(empty_text, "", "'pkcs11:'", NULL)
BAD(unknown, "pkcs11:foo=bar", "unknown attribute 'foo'", NULL)
BAD(unknown_upper, "pkcs11:TOKEN=x", "unknown attribute 'TOKEN'", NULL)
BAD(unknown_vendor_no_x, "pkcs11:token=t;vendor-aaa=value-a",
    "unknown attribute 'vendor-aaa'", NULL)
BAD(unknown_x_alone, "pkcs11:x-=a", "unknown attribute 'x-'", NULL)
BAD(unknown_query, "pkcs11:?module=x", "unknown attribute 'module'", NULL)
BAD(repeat_path, "pkcs11:token=a;object=o;token=b",
    "attribute 'token' given twice", NULL)
BAD(repeat_query, "pkcs11:?module-name=a&module-name=b",
    "attribute 'module-name' given twice", NULL)
BAD(repeat_ignored, "pkcs11:library-version=1;library-version=2",
    "'library-version' given twice", NULL)
BAD(pct_truncated, "pkcs11:token=ab%4",
    "attribute 'token': bad percent-encoding at offset 15", NULL)
BAD(pct_truncated_mid, "pkcs11:token=%4;object=x",
    "attribute 'token': bad percent-encoding at offset 13", NULL)
BAD(pct_alone, "pkcs11:object=x%", "attribute 'object': bad percent", NULL)
BAD(pct_not_hex, "pkcs11:object=%zz", "attribute 'object': bad percent", NULL)
BAD(pct_half_hex, "pkcs11:?module-name=%4g",
    "attribute 'module-name': bad percent", NULL)
BAD(pct_ignored, "pkcs11:library-version=1%2",
    "attribute 'library-version': bad percent", NULL)
BAD(raw_space, "pkcs11:token=my token", "attribute 'token'", "percent-encoded")
BAD(raw_hash, "pkcs11:token=a#frag", "attribute 'token': character '#'",
    "percent-encoded")
BAD(raw_hash_query, "pkcs11:token=a?module-name=b#frag",
    "attribute 'module-name': character '#'", NULL)
BAD(raw_slash_path, "pkcs11:object=a/b", "attribute 'object': character '/'",
    NULL)
BAD(raw_non_ascii, "pkcs11:object=\xc3\xa1", "attribute 'object'", "0xc3")
BAD(raw_control, "pkcs11:object=a\tb", "attribute 'object'", "0x09")
BAD(raw_vendor, "pkcs11:x-foo=a b", "attribute 'x-foo'", "percent-encoded")
BAD(slot_negative, "pkcs11:slot-id=-1",
    "attribute 'slot-id': not a decimal number", NULL)
BAD(slot_plus, "pkcs11:slot-id=+1", "attribute 'slot-id': not a decimal number",
    NULL)
BAD(slot_suffix, "pkcs11:slot-id=12a",
    "attribute 'slot-id': not a decimal number", NULL)
BAD(slot_space, "pkcs11:slot-id=%201",
    "attribute 'slot-id': not a decimal number", NULL)
BAD(slot_overflow, "pkcs11:slot-id=99999999999999999999999",
    "attribute 'slot-id': out of range", NULL)
BAD(slot_overflow_long,
    "pkcs11:slot-id=1234567890123456789012345678901234567890",
    "attribute 'slot-id': out of range", NULL)
BAD(slot_long_junk, "pkcs11:slot-id=1234567890123456789012345678901234567890x",
    "attribute 'slot-id': not a decimal number", NULL)
BAD(type_unknown, "pkcs11:type=key", "attribute 'type': unknown", NULL)
BAD(type_upper, "pkcs11:type=CERT", "attribute 'type': unknown", NULL)
BAD(type_long, "pkcs11:type=secret-key-and-then-some",
    "attribute 'type': unknown", NULL)
BAD(token_33, "pkcs11:token=0123456789abcdef0123456789abcdefX",
    "attribute 'token': longer than 32 bytes", NULL)
BAD(token_utf8_long,
    "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1",
    "attribute 'token': longer than 32 bytes", NULL)
BAD(serial_17, "pkcs11:serial=0123456789abcdefX",
    "attribute 'serial': longer than 16 bytes", NULL)
BAD(manuf_33, "pkcs11:manufacturer=0123456789abcdef0123456789abcdefX",
    "attribute 'manufacturer': longer than 32 bytes", NULL)
BAD(id_65,
    "pkcs11:id=0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdefX",
    "attribute 'id': longer than 64 bytes", NULL)
BAD(module_path_relative, "pkcs11:?module-path=lib/libsofthsm2.so",
    "attribute 'module-path': not an absolute path", NULL)
BAD(pin_source_relative, "pkcs11:?pin-source=relative/x",
    "attribute 'pin-source'", NULL)
BAD(pin_source_scheme, "pkcs11:?pin-source=https:/x", "attribute 'pin-source'",
    NULL)
BAD(pin_source_file_relative, "pkcs11:?pin-source=file:pin",
    "attribute 'pin-source'", NULL)
BAD_PIN(pin_both, "pkcs11:token=t?pin-source=/etc/pin&pin-value=s3cret-PIN",
    "'pin-source'", "'pin-value'", "s3cret")
BAD_PIN(pin_both_reversed,
    "pkcs11:token=t?pin-value=s3cret-PIN&pin-source=/etc/pin", "'pin-source'",
    "'pin-value'", "s3cret")
BAD(empty_value, "pkcs11:token=", "attribute 'token': empty value", NULL)
BAD(empty_serial_rfc,
    "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;serial="
    "?pin-source=file:/etc/token_pin",
    "attribute 'serial': empty value", NULL)
BAD(empty_id, "pkcs11:id=", "attribute 'id': empty value", NULL)
BAD(empty_query_value,
    "pkcs11:?module-path=", "attribute 'module-path': empty value", NULL)
BAD(empty_vendor_value, "pkcs11:x-foo=", "attribute 'x-foo': empty value", NULL)
BAD(trailing_semicolon, "pkcs11:token=a;", "empty attribute at offset 15", NULL)
BAD(double_semicolon, "pkcs11:token=a;;object=b",
    "empty attribute at offset 15", NULL)
BAD(leading_semicolon, "pkcs11:;token=a", "empty attribute at offset 7", NULL)
BAD(empty_query, "pkcs11:token=a?", "empty attribute", NULL)
BAD(trailing_ampersand, "pkcs11:?module-name=a&", "empty attribute", NULL)
BAD(path_in_query, "pkcs11:?token=a", "attribute 'token' belongs in the path",
    NULL)
BAD(query_in_path, "pkcs11:module-path=/x",
    "attribute 'module-path' belongs in the query", NULL)
BAD_PIN(pin_in_path, "pkcs11:pin-value=hunter2",
    "attribute 'pin-value' belongs in the query", NULL, "hunter2")
BAD_PIN(pin_bad_pct, "pkcs11:?pin-value=hunter2%zz",
    "attribute 'pin-value': bad percent-encoding", NULL, "hunter2")
BAD_PIN(pin_raw_hash, "pkcs11:?pin-value=hunter#2", "attribute 'pin-value'",
    "percent-encoded", "#")
BAD_PIN(pin_nul, "pkcs11:?pin-value=hunter%002", "attribute 'pin-value'", "NUL",
    "hunter")
BAD_PIN(pin_twice, "pkcs11:?pin-value=hunter2&pin-value=hunter2",
    "attribute 'pin-value' given twice", NULL, "hunter2")
BAD_PIN(pin_too_long,
    "pkcs11:?pin-value="
    "hunter2-0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "attribute 'pin-value': longer than 256 bytes", NULL, "hunter2")
BAD(nul_token, "pkcs11:token=ab%00cd", "attribute 'token'", "NUL")
BAD(nul_module_path, "pkcs11:?module-path=/lib%00.so",
    "attribute 'module-path'", "NUL")
BAD(no_equals, "pkcs11:token", "has no '='", NULL)
BAD(empty_name, "pkcs11:=x", "empty attribute name", NULL)
BAD(bad_name_char, "pkcs11:to.ken=x", "bad character in attribute name", NULL)
BAD(hash_in_name, "pkcs11:token=a;#frag", "bad character in attribute name",
    NULL)

#define T(name) cmocka_unit_test(test_##name)
#define TB(name) cmocka_unit_test(test_bad_##name)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(rfc_full),
		T(rfc_module_name),
		T(rfc_pin_value),
		T(pin_value_decoded),
		T(rfc_substring),
		T(rfc_utf8_object),
		T(empty),
		T(query_only),
		T(ignored_attributes),
		T(vendor_attributes),
		T(slot_id),
		T(types),
		T(id_raw_bytes),
		T(limits_exact),
		T(allowed_raw_chars),
		T(init_args),
		T(pin_source_abs),
		T(err_null),
		T(null_args),
		T(clear_zeroed),
		T(failure_after_pin_zeroes),
		T(long_name_message_bounded),
		TB(no_scheme),
		TB(http_scheme),
		TB(short_scheme),
		TB(empty_text),
		TB(unknown),
		TB(unknown_upper),
		TB(unknown_vendor_no_x),
		TB(unknown_x_alone),
		TB(unknown_query),
		TB(repeat_path),
		TB(repeat_query),
		TB(repeat_ignored),
		TB(pct_truncated),
		TB(pct_truncated_mid),
		TB(pct_alone),
		TB(pct_not_hex),
		TB(pct_half_hex),
		TB(pct_ignored),
		TB(raw_space),
		TB(raw_hash),
		TB(raw_hash_query),
		TB(raw_slash_path),
		TB(raw_non_ascii),
		TB(raw_control),
		TB(raw_vendor),
		TB(slot_negative),
		TB(slot_plus),
		TB(slot_suffix),
		TB(slot_space),
		TB(slot_overflow),
		TB(slot_overflow_long),
		TB(slot_long_junk),
		TB(type_unknown),
		TB(type_upper),
		TB(type_long),
		TB(token_33),
		TB(token_utf8_long),
		TB(serial_17),
		TB(manuf_33),
		TB(id_65),
		TB(module_path_relative),
		TB(pin_source_relative),
		TB(pin_source_scheme),
		TB(pin_source_file_relative),
		TB(pin_both),
		TB(pin_both_reversed),
		TB(empty_value),
		TB(empty_serial_rfc),
		TB(empty_id),
		TB(empty_query_value),
		TB(empty_vendor_value),
		TB(trailing_semicolon),
		TB(double_semicolon),
		TB(leading_semicolon),
		TB(empty_query),
		TB(trailing_ampersand),
		TB(path_in_query),
		TB(query_in_path),
		TB(pin_in_path),
		TB(pin_bad_pct),
		TB(pin_raw_hash),
		TB(pin_nul),
		TB(pin_twice),
		TB(pin_too_long),
		TB(nul_token),
		TB(nul_module_path),
		TB(no_equals),
		TB(empty_name),
		TB(bad_name_char),
		TB(hash_in_name),
	};

	return cmocka_run_group_tests_name("pkcs11/uri", tests, NULL, NULL);
}
