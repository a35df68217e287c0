/*
 * lib/err.c: turns Strongroom's negative error codes into text and names.
 *
 * The codes are defined once, in SR_ERROR_MAP in lib/sr.h; this file only
 * reads that table. It must never define a code of its own.
 */
#include <errno.h>
#include <string.h>

#include "lib/sr.h"

struct sr_errdesc {
	int code;
	const char *name;
	const char *text;
};

static const struct sr_errdesc sr_errtab[] = {
#define SR__ERR_DESC(name, value, text) { (value), #name, (text) },
	SR_ERROR_MAP(SR__ERR_DESC)
#undef SR__ERR_DESC
};

static const struct sr_errdesc *
sr_errfind(int code)
{
	size_t i;

	for (i = 0; i < sizeof(sr_errtab) / sizeof(sr_errtab[0]); i++)
		if (sr_errtab[i].code == code)
			return &sr_errtab[i];
	return NULL;
}

const char *
sr_strerror(int code)
{
	const struct sr_errdesc *d;

	if (code == 0)
		return "success";
	if (code < 0 && code > -1000)
		return strerrorname_np(-code) != NULL ? strerror(-code)
		                                      : "unknown error";
	d = sr_errfind(code);
	return d != NULL ? d->text : "unknown error";
}

const char *
sr_errname(int code)
{
	const struct sr_errdesc *d;
	const char *name;

	if (code == 0)
		return "OK";
	if (code < 0 && code > -1000) {
		name = strerrorname_np(-code);
		return name != NULL ? name : "EUNKNOWN";
	}
	d = sr_errfind(code);
	return d != NULL ? d->name : "EUNKNOWN";
}
