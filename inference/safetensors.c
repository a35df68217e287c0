/*
 * inference/safetensors.c: reads safetensors files: maps the file, parses
 * the JSON header with yyjson and validates it as the format's reference
 * reader does (header size bound, '{' first, tensors contiguous from 0 with
 * no hole or overlap, each size equal to its shape's product times the
 * dtype's size in checked arithmetic, the file exactly as long as the last
 * tensor, __metadata__ a string map). It never trusts a header: every
 * offset is checked before any pointer into the data is made.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yyjson.h>

#include "inference/model_internal.h"

struct st_dtype {
	const char *name;
	unsigned bits;
	enum inf_dtype dtype;
};

/* Every dtype of the format (safetensors/src/tensor.rs), so a file with
 * tensors the engine cannot use still validates; the loader refuses those
 * tensors by name. */
static const struct st_dtype st_dtypes[] = {
	{ "F64", 64, INF_DT_OTHER },
	{ "F32", 32, INF_DT_F32 },
	{ "F16", 16, INF_DT_F16 },
	{ "BF16", 16, INF_DT_BF16 },
	{ "F8_E5M2", 8, INF_DT_OTHER },
	{ "F8_E4M3", 8, INF_DT_OTHER },
	{ "F8_E8M0", 8, INF_DT_OTHER },
	{ "F8_E4M3FNUZ", 8, INF_DT_OTHER },
	{ "F8_E5M2FNUZ", 8, INF_DT_OTHER },
	{ "F6_E2M3", 6, INF_DT_OTHER },
	{ "F6_E3M2", 6, INF_DT_OTHER },
	{ "F4", 4, INF_DT_OTHER },
	{ "I64", 64, INF_DT_OTHER },
	{ "I32", 32, INF_DT_OTHER },
	{ "I16", 16, INF_DT_OTHER },
	{ "I8", 8, INF_DT_OTHER },
	{ "U64", 64, INF_DT_OTHER },
	{ "U32", 32, INF_DT_OTHER },
	{ "U16", 16, INF_DT_OTHER },
	{ "U8", 8, INF_DT_OTHER },
	{ "BOOL", 8, INF_DT_OTHER },
	{ "C64", 64, INF_DT_OTHER },
};

size_t
inf__dtype_size(enum inf_dtype dt)
{
	switch (dt) {
	case INF_DT_F32:
		return 4;
	case INF_DT_F16:
	case INF_DT_BF16:
		return 2;
	default:
		return 0;
	}
}

static const struct st_dtype *
st_dtype_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
		if (strcmp(st_dtypes[i].name, name) == 0)
			return &st_dtypes[i];
	return NULL;
}

static int st_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
st_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return INF_EFORMAT;
}

/* One header entry into @p t; the name is already set. */
static int
st_entry(yyjson_val *v, struct inf_st_tensor *t, char *err, size_t errlen)
{
	yyjson_val *dt, *shape, *offs, *d;
	const struct st_dtype *desc;
	size_t i, n;
	uint64_t elems = 1, bits;

	if (!yyjson_is_obj(v))
		return st_fail(
		    err, errlen, "tensor %s: entry is not an object", t->name);
	dt = yyjson_obj_get(v, "dtype");
	shape = yyjson_obj_get(v, "shape");
	offs = yyjson_obj_get(v, "data_offsets");
	if (!yyjson_is_str(dt) || !yyjson_is_arr(shape) || !yyjson_is_arr(offs))
		return st_fail(err, errlen,
		    "tensor %s: needs a string \"dtype\", an array \"shape\" "
		    "and an array \"data_offsets\"",
		    t->name);
	desc = st_dtype_find(yyjson_get_str(dt));
	if (desc == NULL)
		return st_fail(err, errlen,
		    "tensor %s: unknown dtype \"%.32s\"", t->name,
		    yyjson_get_str(dt));
	t->dtype_name = desc->name;
	t->dtype = desc->dtype;
	n = yyjson_arr_size(shape);
	if (n > INF_ST_MAX_DIMS)
		return st_fail(err, errlen,
		    "tensor %s: %zu dimensions (at most %d)", t->name, n,
		    INF_ST_MAX_DIMS);
	t->ndim = (int)n;
	for (i = 0; i < n; i++) {
		d = yyjson_arr_get(shape, i);
		if (!yyjson_is_uint(d))
			return st_fail(err, errlen,
			    "tensor %s: shape[%zu] is not a non-negative "
			    "integer",
			    t->name, i);
		t->shape[i] = yyjson_get_uint(d);
		if (__builtin_mul_overflow(elems, t->shape[i], &elems))
			return st_fail(err, errlen,
			    "tensor %s: shape overflows 64 bits", t->name);
	}
	if (yyjson_arr_size(offs) != 2 ||
	    !yyjson_is_uint(yyjson_arr_get(offs, 0)) ||
	    !yyjson_is_uint(yyjson_arr_get(offs, 1)))
		return st_fail(err, errlen,
		    "tensor %s: data_offsets must be two non-negative integers",
		    t->name);
	t->begin = yyjson_get_uint(yyjson_arr_get(offs, 0));
	t->end = yyjson_get_uint(yyjson_arr_get(offs, 1));
	if (__builtin_mul_overflow(elems, (uint64_t)desc->bits, &bits))
		return st_fail(
		    err, errlen, "tensor %s: size overflows 64 bits", t->name);
	if (bits % 8 != 0)
		return st_fail(err, errlen,
		    "tensor %s: %llu elements of %s are not whole bytes",
		    t->name, (unsigned long long)elems, desc->name);
	if (t->end < t->begin || t->end - t->begin != bits / 8)
		return st_fail(err, errlen,
		    "tensor %s: data_offsets [%llu, %llu] hold %llu bytes, but "
		    "shape and dtype %s need %llu",
		    t->name, (unsigned long long)t->begin,
		    (unsigned long long)t->end,
		    (unsigned long long)(t->end >= t->begin ? t->end - t->begin
		                                            : 0),
		    desc->name, (unsigned long long)(bits / 8));
	return 0;
}

static int
st_metadata(yyjson_val *v, struct inf_st_file *f, char *err, size_t errlen)
{
	yyjson_obj_iter it;
	yyjson_val *k;

	if (!yyjson_is_obj(v))
		return st_fail(err, errlen, "__metadata__ is not an object");
	yyjson_obj_iter_init(v, &it);
	while ((k = yyjson_obj_iter_next(&it)) != NULL) {
		if (!yyjson_is_str(yyjson_obj_iter_get_val(k)))
			return st_fail(err, errlen,
			    "__metadata__ value of \"%.64s\" is not a string",
			    yyjson_get_str(k));
		f->n_metadata++;
	}
	return 0;
}

static int
st_cmp_offset(const void *a, const void *b)
{
	const struct inf_st_tensor *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static int
st_cmp_name(const void *a, const void *b)
{
	const struct inf_st_tensor *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Tensors sorted by offset must tile the buffer from 0 exactly. */
static int
st_check_layout(
    struct inf_st_file *f, uint64_t data_start, char *err, size_t errlen)
{
	uint64_t at = 0;
	size_t i;

	qsort(f->tensors, f->n_tensors, sizeof(f->tensors[0]), st_cmp_offset);
	for (i = 0; i < f->n_tensors; i++) {
		struct inf_st_tensor *t = &f->tensors[i];

		if (t->begin < at)
			return st_fail(err, errlen,
			    "tensor %s: data_offsets [%llu, %llu] overlap the "
			    "previous tensor, which ends at %llu",
			    t->name, (unsigned long long)t->begin,
			    (unsigned long long)t->end, (unsigned long long)at);
		if (t->begin > at)
			return st_fail(err, errlen,
			    "tensor %s: data_offsets [%llu, %llu] leave a hole "
			    "of %llu bytes after offset %llu",
			    t->name, (unsigned long long)t->begin,
			    (unsigned long long)t->end,
			    (unsigned long long)(t->begin - at),
			    (unsigned long long)at);
		at = t->end;
	}
	if (at != f->size - data_start)
		return st_fail(err, errlen,
		    "the tensors end at byte %llu but the file holds %llu "
		    "bytes of data (truncated or trailing bytes)",
		    (unsigned long long)at,
		    (unsigned long long)(f->size - data_start));
	for (i = 0; i < f->n_tensors; i++)
		f->tensors[i].data =
		    f->bytes + data_start + f->tensors[i].begin;
	qsort(f->tensors, f->n_tensors, sizeof(f->tensors[0]), st_cmp_name);
	for (i = 1; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
			return st_fail(err, errlen, "tensor %s appears twice",
			    f->tensors[i].name);
	return 0;
}

int
inf__st_parse(const unsigned char *bytes, size_t size, struct inf_st_file *f,
    char *err, size_t errlen)
{
	yyjson_read_err jerr;
	yyjson_doc *doc;
	yyjson_obj_iter it;
	yyjson_val *root, *k;
	uint64_t hsize = 0;
	size_t n = 0, i;
	int rc;

	f->bytes = bytes;
	f->size = size;
	if (size < 8)
		return st_fail(err, errlen,
		    "%zu bytes: shorter than the 8-byte header size", size);
	for (i = 0; i < 8; i++)
		hsize |= (uint64_t)bytes[i] << (8 * i);
	if (hsize > INF_ST_MAX_HEADER)
		return st_fail(err, errlen,
		    "header size %llu is above the limit of %llu",
		    (unsigned long long)hsize, INF_ST_MAX_HEADER);
	if (hsize > size - 8)
		return st_fail(err, errlen,
		    "header size %llu runs past the end of the file (%zu "
		    "bytes)",
		    (unsigned long long)hsize, size);
	if (hsize < 2 || bytes[8] != '{')
		return st_fail(err, errlen, "header does not start with '{'");
	doc = yyjson_read_opts(
	    (char *)(uintptr_t)(bytes + 8), hsize, 0, NULL, &jerr);
	if (doc == NULL) {
		if (jerr.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION)
			return -ENOMEM;
		return st_fail(err, errlen,
		    "header is not JSON at byte %zu: %s", 8 + jerr.pos,
		    jerr.msg);
	}
	f->_doc = doc;
	root = yyjson_doc_get_root(doc);
	if (!yyjson_is_obj(root))
		return st_fail(err, errlen, "header is not a JSON object");
	f->tensors = calloc(yyjson_obj_size(root) + 1, sizeof(f->tensors[0]));
	if (f->tensors == NULL)
		return -ENOMEM;
	yyjson_obj_iter_init(root, &it);
	while ((k = yyjson_obj_iter_next(&it)) != NULL) {
		const char *name = yyjson_get_str(k);

		if (strlen(name) != yyjson_get_len(k) || name[0] == '\0')
			return st_fail(err, errlen,
			    "a tensor name is empty or holds a NUL byte");
		if (strcmp(name, "__metadata__") == 0) {
			rc = st_metadata(
			    yyjson_obj_iter_get_val(k), f, err, errlen);
		} else {
			f->tensors[n].name = name;
			rc = st_entry(yyjson_obj_iter_get_val(k),
			    &f->tensors[n], err, errlen);
			n++;
		}
		if (rc != 0)
			return rc;
	}
	f->n_tensors = n;
	return st_check_layout(f, 8 + hsize, err, errlen);
}

int
inf__st_open(const char *path, struct inf_st_file *f, char *err, size_t errlen)
{
	struct stat st;
	char why[INF_ERR_MAX];
	void *map;
	int fd, rc;

	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(
		    err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = S_ISREG(st.st_mode) ? -errno : INF_EFORMAT;
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return rc;
	}
	if (st.st_size < 8) {
		close(fd);
		snprintf(err, errlen,
		    "%s: %lld bytes: shorter than the 8-byte header size", path,
		    (long long)st.st_size);
		return INF_EFORMAT;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		rc = -errno;
		snprintf(
		    err, errlen, "%s: cannot map: %s", path, strerror(errno));
		return rc;
	}
	f->_map = map;
	rc = inf__st_parse(map, (size_t)st.st_size, f, why, sizeof(why));
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path,
		    rc == -ENOMEM ? "out of memory" : why);
	return rc;
}

void
inf__st_close(struct inf_st_file *f)
{
	if (f == NULL)
		return;
	if (f->_map != NULL)
		munmap(f->_map, f->size);
	yyjson_doc_free(f->_doc);
	free(f->tensors);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

const struct inf_st_tensor *
inf__st_find(const struct inf_st_file *f, const char *name)
{
	struct inf_st_tensor key;

	if (f->n_tensors == 0)
		return NULL;
	key.name = name;
	return bsearch(
	    &key, f->tensors, f->n_tensors, sizeof(key), st_cmp_name);
}
