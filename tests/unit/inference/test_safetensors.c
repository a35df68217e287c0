/*
 * tests/unit/inference/test_safetensors.c: inference/safetensors.c's
 * parser on files built in memory: what the reference reader accepts
 * (metadata, scalars, empty tensors, padding, any order of entries) and
 * each thing it refuses with its message (duplicate names, metadata that
 * is not a string map, sub-byte sizes, overflowing shapes, size against
 * shape, reversed offsets, trailing bytes, bad JSON); then the 16-bit to
 * fp32 conversions, subnormals and infinities included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/model_internal.h"

/* A file: the 8-byte size, the header padded to 8, then @p data bytes
 * (filled with a pattern). */
static unsigned char *
build(const char *header, size_t data, size_t *size)
{
	size_t hl = strlen(header), hn = (hl + 7) & ~(size_t)7, i;
	unsigned char *b = malloc(8 + hn + data + 1);

	assert_non_null(b);
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)hn >> (8 * i));
	memcpy(b + 8, header, hl);
	memset(b + 8 + hl, ' ', hn - hl);
	for (i = 0; i < data; i++)
		b[8 + hn + i] = (unsigned char)i;
	*size = 8 + hn + data;
	return b;
}

static int
parse(const char *header, size_t data, char *err)
{
	struct inf_st_file f = { 0 };
	size_t size;
	unsigned char *b = build(header, data, &size);
	int rc = inf__st_parse(b, size, &f, err, INF_ERR_MAX);

	inf__st_close(&f);
	free(b);
	return rc;
}

static void
refused(const char *header, size_t data, const char *needle)
{
	char err[INF_ERR_MAX] = "";
	int rc = parse(header, data, err);

	if (rc != INF_EFORMAT || strstr(err, needle) == NULL)
		fail_msg("%s: got %s \"%s\", wanted \"%s\"", header,
		    sr_errname(rc), err, needle);
}

static void
test_accepts(void **state)
{
	const char *h = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
	                "\"data_offsets\":[4,12]},"
	                "\"__metadata__\":{\"format\":\"pt\",\"x\":\"y\"},"
	                "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],"
	                "\"data_offsets\":[0,4]},"
	                "\"s\":{\"dtype\":\"F16\",\"shape\":[],"
	                "\"data_offsets\":[12,14]},"
	                "\"e\":{\"dtype\":\"F32\",\"shape\":[3,0],"
	                "\"data_offsets\":[14,14]},"
	                "\"q\":{\"dtype\":\"F4\",\"shape\":[4],"
	                "\"data_offsets\":[14,16]}}";
	struct inf_st_file f = { 0 };
	const struct inf_st_tensor *t;
	char err[INF_ERR_MAX];
	size_t size;
	unsigned char *b = build(h, 16, &size);

	(void)state;
	assert_int_equal(inf__st_parse(b, size, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n_tensors, 5);
	assert_int_equal(f.n_metadata, 2);
	t = inf__st_find(&f, "b");
	assert_non_null(t);
	assert_int_equal(t->dtype, INF_DT_F32);
	assert_int_equal(t->ndim, 1);
	assert_int_equal(t->shape[0], 2);
	assert_ptr_equal(t->data, b + size - 16 + 4);
	t = inf__st_find(&f, "s");
	assert_int_equal(t->ndim, 0);
	assert_int_equal(t->dtype, INF_DT_F16);
	assert_int_equal(inf__st_find(&f, "q")->dtype, INF_DT_OTHER);
	assert_null(inf__st_find(&f, "nope"));
	assert_null(inf__st_find(&f, "__metadata__"));
	inf__st_close(&f);
	free(b);
}

static void
test_refusals(void **state)
{
	char err[INF_ERR_MAX];
	struct inf_st_file f = { 0 };
	unsigned char small[7] = { 0 };

	(void)state;
	assert_int_equal(
	    inf__st_parse(small, sizeof(small), &f, err, sizeof(err)),
	    INF_EFORMAT);
	assert_non_null(strstr(err, "shorter than the 8-byte header"));
	inf__st_close(&f);
	refused(
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	    8, "tensor a appears twice");
	refused("{\"__metadata__\":{\"n\":1}}", 0,
	    "__metadata__ value of \"n\" is not a string");
	refused("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
	refused(
	    "{\"q\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}",
	    2, "3 elements of F4 are not whole bytes");
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
	        "\"data_offsets\":[0,4]}}",
	    4, "shape overflows 64 bits");
	refused("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
	        "\"data_offsets\":[0,4]}}",
	    4, "size overflows 64 bits");
	refused(
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",
	    4, "hold 4 bytes, but shape and dtype F32 need 8");
	refused(
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}",
	    4, "hold 0 bytes");
	refused(
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	    6, "the tensors end at byte 4 but the file holds 6 bytes");
	refused(
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
	    4, "shape[0] is not a non-negative integer");
	refused(
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
	    "data_offsets must be two non-negative integers");
	refused("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
	    "needs a string \"dtype\"");
	refused("{\"a\":5}", 0, "tensor a: entry is not an object");
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
	        "\"data_offsets\":[0,4]}}",
	    4, "9 dimensions (at most 8)");
	refused("{\"a\":{\"dtype\":\"F32\"", 0, "header is not JSON at byte");
	refused(
	    "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	    4, "a tensor name is empty");
	refused("[]", 0, "header does not start with '{'");
	refused("{}  x", 0, "header is not JSON");
}

static void
test_conversions(void **state)
{
	const uint16_t bf[4] = { 0x3f80, 0xc000, 0x7f80, 0x0001 };
	const uint16_t hf[6] = { 0x3c00, 0xc000, 0x7c00, 0x0001, 0x03ff,
		0x8000 };
	const float f32[2] = { 1.5f, -2.25f };
	float out[6];

	(void)state;
	inf__to_f32(out, bf, INF_DT_BF16, 4);
	assert_true(out[0] == 1.0f && out[1] == -2.0f);
	assert_true(isinf(out[2]) && out[2] > 0);
	assert_true(out[3] == 0x1p-133f);
	inf__to_f32(out, hf, INF_DT_F16, 6);
	assert_true(out[0] == 1.0f && out[1] == -2.0f);
	assert_true(isinf(out[2]));
	assert_true(out[3] == 0x1p-24f);
	assert_true(out[4] == 1023 * 0x1p-24f);
	assert_true(out[5] == 0.0f && signbit(out[5]));
	inf__to_f32(out, f32, INF_DT_F32, 2);
	assert_true(out[0] == 1.5f && out[1] == -2.25f);
	assert_int_equal(inf__dtype_size(INF_DT_BF16), 2);
	assert_int_equal(inf__dtype_size(INF_DT_F32), 4);
	assert_int_equal(inf__dtype_size(INF_DT_OTHER), 0);
}

/* Both kernel paths against a double-precision reference, for every
 * dtype and shapes with tails (rows % 4, tokens % 3, cols % 8). */
static void
test_matmul_paths(void **state)
{
	enum { R = 7, C = 21, T = 5 };
	uint16_t wb[R * C];
	float wf[R * C], x[T * C], y[T * R], bias[R], ref;
	struct inf_matrix w = { NULL, INF_DT_BF16, R, C };
	int path, dt, r, t, k;

	(void)state;
	for (k = 0; k < R * C; k++) {
		float v = (float)((k * 37) % 19 - 9) / 8.0f;
		uint32_t u;

		memcpy(&u, &v, 4);
		wb[k] = (uint16_t)(u >> 16); /* exact in BF16 */
		wf[k] = v;
	}
	for (k = 0; k < T * C; k++)
		x[k] = (float)((k * 11) % 13 - 6) / 4.0f;
	for (r = 0; r < R; r++)
		bias[r] = (float)r;
	for (path = 0; path < 2; path++)
		for (dt = 0; dt < 2; dt++) {
			cpu__force_portable = path;
			w.data = dt ? (const void *)wf : (const void *)wb;
			w.dtype = dt ? INF_DT_F32 : INF_DT_BF16;
			memset(y, 0, sizeof(y));
			cpu__matmul_rows(y, R, x, T, &w, bias, 1, R);
			for (t = 0; t < T; t++) {
				assert_true(y[t * R] == 0);
				for (r = 1; r < R; r++) {
					for (ref = bias[r], k = 0; k < C; k++)
						ref += wf[r * C + k] *
						    x[t * C + k];
					assert_float_equal(
					    y[t * R + r], ref, 1e-4);
				}
			}
		}
	cpu__force_portable = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_conversions),
		cmocka_unit_test(test_matmul_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
