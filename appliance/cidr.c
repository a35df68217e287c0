/*
 * appliance/cidr.c: strict parsing of CIDR lists and matching of client
 * addresses against them (API in appliance/cidr.h).
 *
 * It must never accept an item it had to guess about (missing prefix, host
 * bits set, odd number forms): a widened network is an access-control bug
 * that nobody sees. It never resolves names and never allocates to match.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/cidr.h"
#include "lib/sr.h"

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" and "/128" fit in 64. */
#define CIDR_ITEM_MAX 64

static const uint8_t cidr_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
	0xff };

void
cidr_list_init(struct cidr_list *l)
{
	l->items = NULL;
	l->count = 0;
}

void
cidr_list_free(struct cidr_list *l)
{
	if (l == NULL)
		return;
	free(l->items);
	cidr_list_init(l);
}

static void
cidr_err(char *err, size_t idx, const char *item, const char *problem)
{
	if (err != NULL)
		snprintf(err, 256, "item %zu '%s': %s", idx, item, problem);
}

/* A prefix length: decimal digits, no sign, no leading zero, <= max. */
static int
cidr_prefix_parse(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 3)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Whether any bit of @p addr at or after bit @p prefix is set. */
static int
cidr_host_bits_set(const uint8_t *addr, unsigned bytes, unsigned prefix)
{
	unsigned i;

	for (i = prefix; i < bytes * 8; i++)
		if (addr[i / 8] & (0x80u >> (i % 8)))
			return 1;
	return 0;
}

/* Parse one trimmed item into @p net; on failure write @p err. */
static int
cidr_item_parse(struct cidr_net *net, const char *item, size_t idx, char *err)
{
	char buf[CIDR_ITEM_MAX];
	char *slash;
	unsigned prefix, max;
	int family;

	if (strlen(item) >= sizeof(buf)) {
		cidr_err(err, idx, "...", "item too long");
		return APP_ECIDR;
	}
	memcpy(buf, item, strlen(item) + 1);
	slash = strchr(buf, '/');
	if (slash == NULL) {
		cidr_err(err, idx, item,
		    "no prefix length (write /32 or /128 for one address)");
		return APP_ECIDR;
	}
	*slash = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		family = AF_INET6;
		max = 128;
	} else {
		cidr_err(err, idx, item, "not an IPv4 or IPv6 address");
		return APP_ECIDR;
	}
	if (cidr_prefix_parse(slash + 1, max, &prefix) != 0) {
		cidr_err(err, idx, item,
		    family == AF_INET
		        ? "bad prefix length (0 to 32 for IPv4)"
		        : "bad prefix length (0 to 128 for IPv6)");
		return APP_ECIDR;
	}
	if (cidr_host_bits_set(net->addr, max / 8, prefix)) {
		char msg[96];

		snprintf(msg, sizeof(msg), "host bits set below the /%u prefix",
		    prefix);
		cidr_err(err, idx, item, msg);
		return APP_ECIDR;
	}
	/* An IPv4-mapped network is the IPv4 network it names. */
	if (family == AF_INET6 && prefix >= 96 &&
	    memcmp(net->addr, cidr_v4mapped, 12) == 0) {
		memmove(net->addr, net->addr + 12, 4);
		memset(net->addr + 4, 0, 12);
		family = AF_INET;
		prefix -= 96;
	}
	net->family = (uint8_t)family;
	net->prefix = (uint8_t)prefix;
	return 0;
}

int
cidr_list_parse(struct cidr_list *l, const char *text, char err[256])
{
	struct cidr_net *items = NULL;
	size_t n = 0, idx = 0, len, a, b;
	const char *p, *end;
	char item[CIDR_ITEM_MAX + 1];
	int rc;

	cidr_list_init(l);
	if (err != NULL)
		err[0] = '\0';
	len = strnlen(text, CIDR_TEXT_MAX + 1);
	if (len > CIDR_TEXT_MAX) {
		if (err != NULL)
			snprintf(err, 256, "list longer than %d bytes",
			    CIDR_TEXT_MAX);
		return APP_ECIDR;
	}
	p = text;
	for (;;) {
		idx++;
		end = strchr(p, ',');
		if (end == NULL)
			end = text + len;
		a = 0;
		b = (size_t)(end - p);
		while (a < b && (p[a] == ' ' || p[a] == '\t'))
			a++;
		while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
			b--;
		if (b == a) {
			cidr_err(err, idx, "",
			    len == 0 ? "empty list" : "empty item");
			rc = APP_ECIDR;
			goto bad;
		}
		if (b - a > CIDR_ITEM_MAX) {
			cidr_err(err, idx, "...", "item too long");
			rc = APP_ECIDR;
			goto bad;
		}
		memcpy(item, p + a, b - a);
		item[b - a] = '\0';
		if (n == CIDR_LIST_MAX) {
			cidr_err(err, idx, item, "more than 1024 networks");
			rc = APP_ECIDR;
			goto bad;
		}
		if (n == 0 || (n & (n - 1)) == 0) {
			size_t cap = n == 0 ? 4 : n * 2;
			struct cidr_net *grown;

			grown = realloc(items, cap * sizeof(*items));
			if (grown == NULL) {
				rc = -ENOMEM;
				goto bad;
			}
			items = grown;
		}
		rc = cidr_item_parse(&items[n], item, idx, err);
		if (rc != 0)
			goto bad;
		n++;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	l->items = items;
	l->count = n;
	return 0;
bad:
	free(items);
	return rc;
}

/* Whether the first @p prefix bits of @p a and @p b agree. */
static int
cidr_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xffu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

int
cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	const uint8_t *addr;
	int family;
	size_t i;

	if (l == NULL || sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		addr = (const uint8_t *)&(
		    (const struct sockaddr_in *)(const void *)sa)
		           ->sin_addr;
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		addr = ((const struct sockaddr_in6 *)(const void *)sa)
		           ->sin6_addr.s6_addr;
		family = AF_INET6;
		if (memcmp(addr, cidr_v4mapped, 12) == 0) {
			addr += 12;
			family = AF_INET;
		}
	} else {
		return 0;
	}
	for (i = 0; i < l->count; i++)
		if (l->items[i].family == family &&
		    cidr_prefix_equal(
		        addr, l->items[i].addr, l->items[i].prefix))
			return 1;
	return 0;
}

int
cidr_list_format(const struct cidr_list *l, char *out, size_t cap)
{
	char addr[INET6_ADDRSTRLEN];
	size_t used = 0, i;
	int n;

	if (cap == 0)
		return -ENOSPC;
	out[0] = '\0';
	for (i = 0; i < l->count; i++) {
		inet_ntop(
		    l->items[i].family, l->items[i].addr, addr, sizeof(addr));
		n = snprintf(out + used, cap - used, "%s%s/%u",
		    i == 0 ? "" : ", ", addr, l->items[i].prefix);
		if (n < 0 || (size_t)n >= cap - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	return (int)used;
}
