/*
 * appliance/api_auth.c: who the caller is. An API key (format and checksum
 * first, then the keystore: from its verification cache on the loop, the
 * full check on a worker), a bearer JWT (signature against the OAuth key's
 * versions, then the client's record, on a worker) or a console session's
 * user; then the caller's roles and scopes, the resource's owner, and the
 * app's bound networks.
 *
 * It must never log or keep a credential past the check (the bearer is
 * wiped when the check ends), never say why a key was refused unless its
 * secret matched, and never wait for the HSM on an event loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yyjson.h>

#include "appliance/api_impl.h"

/* What an API key's refusal is called, once its secret matched. */
static const char *
refusal_code(int rc)
{
	switch (rc) {
	case KS_EREVOKED:
		return "key_revoked";
	case KS_ESUSPENDED:
		return "key_suspended";
	case KS_EEXPIRED:
		return "key_expired";
	case KS_ENOTYET:
		return "key_not_yet_valid";
	default:
		return "invalid_api_key";
	}
}

/* The roles of a record of @p kind whose scope JSON is @p root (NULL when
 * it does not parse): apps are services; a user's roles are in its scope
 * ({"roles":[...],"scopes":[...]}); anything else has none. */
static unsigned
roles_of(unsigned kind, yyjson_val *root)
{
	yyjson_val *arr, *v;
	size_t i, n;
	unsigned roles = 0;
	int bit;

	if (kind == KS_KIND_APP)
		return POLICY_ROLE_SERVICE;
	if (kind != KS_KIND_USER)
		return 0;
	arr = yyjson_obj_get(root, "roles");
	yyjson_arr_foreach(arr, i, n, v)
	{
		bit = yyjson_is_str(v)
		    ? policy_role_from_name(yyjson_get_str(v))
		    : -EINVAL;
		if (bit > 0)
			roles |= (unsigned)bit;
	}
	return roles;
}

unsigned
api_meta_roles(const struct ks_meta *m)
{
	yyjson_doc *doc;
	unsigned roles;

	if (m->kind != KS_KIND_USER)
		return roles_of(m->kind, NULL);
	doc = yyjson_read(m->scope, strlen(m->scope), 0);
	roles = roles_of(m->kind, yyjson_doc_get_root(doc));
	yyjson_doc_free(doc);
	return roles;
}

/* Roles, scopes and its own rate limit from a caller's record, its scope
 * JSON read once. */
void
api_caller_from_meta(struct api_req *r, const struct ks_meta *m)
{
	yyjson_doc *doc;
	yyjson_val *arr, *v, *root;
	size_t i, n;

	r->caller = *m;
	r->scopes[0] = '\0';
	n = sr_strlcpy(r->actor,
	    m->kind == KS_KIND_USER ? "user:" : "app:", sizeof(r->actor));
	sr_strlcpy(r->actor + n, m->id, sizeof(r->actor) - n);
	doc = yyjson_read(m->scope, strlen(m->scope), 0);
	root = yyjson_doc_get_root(doc);
	r->roles = roles_of(m->kind, root);
	if (doc == NULL)
		return;
	/* {"rate_limit":{"rate":R,"burst":B}}: the caller's own limit. */
	v = yyjson_obj_get(root, "rate_limit");
	if (yyjson_is_num(yyjson_obj_get(v, "rate")))
		r->rate = yyjson_get_num(yyjson_obj_get(v, "rate"));
	if (yyjson_is_num(yyjson_obj_get(v, "burst")))
		r->burst = yyjson_get_num(yyjson_obj_get(v, "burst"));
	arr = yyjson_obj_get(root, "scopes");
	yyjson_arr_foreach(arr, i, n, v)
	{
		size_t used = strlen(r->scopes);

		if (yyjson_is_str(v))
			snprintf(r->scopes + used, sizeof(r->scopes) - used,
			    "%s%s", used ? " " : "", yyjson_get_str(v));
	}
	yyjson_doc_free(doc);
}

/* A token's requests are those of the API key it was issued for, and end
 * with it: revoking, suspending or retiring that key ends its tokens as
 * revoking the app does. (A token without the claim names no key.) */
static int
token_key_usable(struct api_req *r, const struct jwt_claims *cl)
{
	int rc;

	if (cl->client_key[0] == '\0')
		return 0;
	snprintf(r->key_id, sizeof(r->key_id), "%.12s", cl->client_key);
	ks_request_init(&r->kq, KS_OP_GET);
	snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s", r->key_id);
	rc = api_ks(r);
	if (rc == KS_ENOTFOUND ||
	    (rc == 0 &&
	        (r->kr.meta.kind != KS_KIND_APIKEY ||
	            strcmp(r->kr.meta.parent, cl->sub) != 0)))
		return APP_EJWTFORMAT; /* not a key of this client */
	return rc != 0 ? rc : ks_meta_refusal(&r->kr.meta, (int64_t)time(NULL));
}

/* The whole check of the credential, and the resource's owner: on a
 * worker, or on the loop with r->on_loop (then any keystore call that
 * would wait sets r->loop_miss instead). */
static void
authenticate(struct api_req *r)
{
	struct jwt_claims *cl;
	struct jwt_verify_opts vo;
	int rc;

	if (r->session_user[0] != '\0') {
		/* A console session: the user must still be active. */
		ks_request_init(&r->kq, KS_OP_GET);
		snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s",
		    r->session_user);
		rc = api_ks(r);
		if (rc == 0 &&
		    (r->kr.meta.kind != KS_KIND_USER ||
		        r->kr.meta.state != KS_STATE_ACTIVE))
			rc = KS_ESUSPENDED;
		r->auth_rc = rc;
		if (rc == 0)
			api_caller_from_meta(r, &r->kr.meta);
		else
			r->auth_code = "invalid_session";
	} else if (strncmp(r->bearer, "srk_", 4) == 0) {
		r->is_apikey = 1;
		ks_request_init(&r->kq, KS_OP_APIKEY_VERIFY);
		sr_strlcpy(r->kq.u.apikey_verify.key, r->bearer,
		    sizeof(r->kq.u.apikey_verify.key));
		rc = api_ks(r);
		sr_wipe(&r->kq, sizeof(r->kq));
		r->auth_rc = rc;
		if (rc == 0)
			api_caller_from_meta(r, &r->kr.meta);
		else
			r->auth_code = refusal_code(rc);
		if (rc == KS_EAPIKEY) /* malformed: its id names nothing */
			r->key_id[0] = '\0';
	} else {
		cl = calloc(1, sizeof(*cl));
		/* On the loop only a signature the keyset has already
		 * verified is taken; a new one goes to a worker. */
		vo = (struct jwt_verify_opts){ r->api->issuer, r->api->issuer,
			(int64_t)time(NULL), r->on_loop };
		rc = cl == NULL ? -ENOMEM
		                : jwt_verify(r->api->jwks, r->bearer, &vo, cl);
		if (rc == -EAGAIN && r->on_loop) {
			r->loop_miss = 1;
			free(cl);
			return;
		}
		if (rc == 0) {
			/* The client must still be usable: revoking an app
			 * ends its tokens too. */
			ks_request_init(&r->kq, KS_OP_GET);
			snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s",
			    cl->sub);
			rc = api_ks(r);
			if (rc == 0 && r->kr.meta.state != KS_STATE_ACTIVE)
				rc = r->kr.meta.state == KS_STATE_SUSPENDED
				    ? KS_ESUSPENDED
				    : KS_EREVOKED;
			if (rc == 0) {
				api_caller_from_meta(r, &r->kr.meta);
				/* A token carries the scopes it was issued
				 * with, never more than its client has now
				 * (an app's scopes narrowed since). */
				policy_scopes_keep(cl->scope, r->scopes);
				snprintf(r->scopes, sizeof(r->scopes), "%s",
				    cl->scope);
				rc = token_key_usable(r, cl);
			}
		}
		r->auth_rc = rc;
		if (rc != 0)
			r->auth_code = rc == KS_EREVOKED ||
			        rc == KS_ESUSPENDED || rc == KS_EEXPIRED
			    ? refusal_code(rc)
			    : "invalid_token";
		free(cl);
	}
	if (r->auth_rc == 0 && r->id[0] != '\0') {
		ks_request_init(&r->kq, KS_OP_GET);
		snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s", r->id);
		if (api_ks(r) == 0) {
			/* Kept for the route, which would read it again. */
			r->res_meta = r->kr.meta;
			r->res_read = 1;
			/* An API key's owner is its app's or user's owner. */
			snprintf(r->owner, sizeof(r->owner), "%s",
			    r->kr.meta.kind == KS_KIND_APP ||
			            r->kr.meta.kind == KS_KIND_APIKEY
			        ? r->kr.meta.parent
			        : r->kr.meta.id);
			/* An app key: the app's owner, one level up. */
			ks_request_init(&r->kq, KS_OP_GET);
			snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s",
			    r->owner);
			if (r->kr.meta.kind == KS_KIND_APIKEY &&
			    r->owner[0] != '\0' && api_ks(r) == 0 &&
			    r->kr.meta.kind == KS_KIND_APP)
				snprintf(r->owner, sizeof(r->owner), "%s",
				    r->kr.meta.parent);
		}
	}
}

void
api_auth_work(void *arg)
{
	struct api_req *r = arg;

	authenticate(r);
	sr_wipe(r->bearer, sizeof(r->bearer));
}

/* Loop: the check where the keystore answers without waiting (an API key
 * in the verification cache, a session's user record, owners read from
 * LMDB, a JWT whose signature the keyset has verified before): no thread
 * hop. 0 when done; -EAGAIN when a worker must do it. A JWT's first
 * signature check is left to a worker: about 80 us of ECDSA. */
int
api_auth_on_loop(struct api_req *r)
{
	r->on_loop = 1;
	authenticate(r);
	r->on_loop = 0;
	if (!r->loop_miss) {
		sr_wipe(r->bearer, sizeof(r->bearer));
		return 0;
	}
	/* Start over on a worker from what the request brought. */
	r->loop_miss = 0;
	r->auth_rc = 0;
	r->auth_code = NULL;
	r->owner[0] = '\0';
	return -EAGAIN;
}

/* The app's key is good only from its bound networks. */
int
api_from_bound_network(const struct api_req *r)
{
	const struct ks_cidr *c;
	size_t i, bits, n;
	int any = 0,
	    v4 = memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;

	for (i = 0; i < KS_CIDR_MAX; i++) {
		c = &r->caller.cidrs[i];
		if (c->family == 0)
			continue;
		any = 1;
		if ((c->family == 4) != v4)
			continue;
		bits = c->prefix;
		const uint8_t *a = v4 ? r->addr + 12 : r->addr;
		n = bits / 8;
		if (memcmp(a, c->addr, n) != 0)
			continue;
		if (bits % 8 != 0 &&
		    ((a[n] ^ c->addr[n]) & (uint8_t)(0xff << (8 - bits % 8))))
			continue;
		return 1;
	}
	return !any;
}
