/*
 * appliance/cidr.h: lists of IPv4 and IPv6 networks in CIDR notation
 * ("10.0.0.0/8, 2001:db8::/32, 127.0.0.2/32") and the question "is this
 * client address inside one of them?". App API keys are bound to such a
 * list and the access policy's `from=` rules use one.
 *
 * Parsing is strict, because a lenient parser silently widens access:
 * every item needs an explicit prefix length, host bits below the prefix
 * must be zero ("10.0.0.1/8" is refused, not rounded down), prefix lengths
 * are plain decimal within the family's range, and an empty item (",,")
 * is an error. IPv4 addresses are dotted quads as inet_pton(3) reads them
 * (no octal, no shortened forms). An IPv4-mapped IPv6 network
 * ("::ffff:10.0.0.0/104") is stored as the IPv4 network it names, and an
 * IPv4-mapped IPv6 client address matches IPv4 networks, so a dual-stack
 * listener and an IPv4 listener see the same rules.
 *
 * Threading: a parsed list is immutable; cidr_list_match() may run on any
 * number of threads at once. Parsing and freeing are the owner's business.
 */
#ifndef SR_APPLIANCE_CIDR_H
#define SR_APPLIANCE_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The most networks one list may hold. */
#define CIDR_LIST_MAX 1024
/* The longest list text cidr_list_parse() reads. */
#define CIDR_TEXT_MAX 65536

/* One network: the address with host bits zero, and its prefix length. */
struct cidr_net {
	uint8_t addr[16]; /* IPv4 in the first 4 bytes */
	uint8_t prefix;   /* 0..32 for IPv4, 0..128 for IPv6 */
	uint8_t family;   /* AF_INET or AF_INET6 */
};

/* A list of networks. Owns items; cidr_list_free() releases them. */
struct cidr_list {
	struct cidr_net *items;
	size_t count;
};

/**
 * @brief Zero @p l (an empty list that matches nothing). Cannot fail.
 */
void cidr_list_init(struct cidr_list *l);

/**
 * @brief Parse a comma-separated list of networks; blanks around items
 * are ignored.
 * @param[out] l     filled on success; left empty on failure.
 * @param[in]  text  NUL-terminated; not kept.
 * @param[out] err   on failure, a message naming the offending item and
 *                   the problem ("item 2 '10.0.0.1/8': host bits set below
 *                   the /8 prefix"); may be NULL.
 * @return 0; APP_ECIDR for any malformed, empty or too long list (show
 *         @p err to whoever wrote it); -ENOMEM.
 * @note Any thread. The caller owns @p l and frees it with cidr_list_free().
 */
int cidr_list_parse(struct cidr_list *l, const char *text, char err[256]);

/**
 * @brief Whether @p sa lies inside one of the list's networks.
 * @param[in] sa  a struct sockaddr_in or sockaddr_in6 (for example from a
 *                struct sockaddr_storage); any other family matches nothing.
 * @return 1 inside, 0 outside (also for an empty list or NULL @p sa).
 * @note Any thread; constant work per network, no allocation.
 */
int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/**
 * @brief Write the list back in canonical form ("10.0.0.0/8, ::1/128"),
 * for JSON replies and the audit log.
 * @return the length written (without the NUL), or -ENOSPC when @p cap is
 *         too small (the output is then truncated but NUL-terminated).
 */
int cidr_list_format(const struct cidr_list *l, char *out, size_t cap);

/**
 * @brief Release the items and leave @p l empty. Safe on an empty, zeroed
 * or already freed list, and on NULL.
 */
void cidr_list_free(struct cidr_list *l);

#endif /* SR_APPLIANCE_CIDR_H */
