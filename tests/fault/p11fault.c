/*
 * tests/fault/p11fault.c: a PKCS#11 module that injects faults, for tests.
 *
 * It loads the real module (SR_P11FAULT_TARGET, default SoftHSM2) with dlopen
 * on the first C_GetFunctionList or C_Initialize and hands out its own
 * function list, whose every entry counts the call and forwards it to the
 * real module.  A test arms the counter with sr_p11fault_arm() (or
 * sr_p11fault_arm_sticky()): the n-th call from then on returns the armed
 * CK_RV without reaching the real module.  sr_p11fault_hide_mechanism() and
 * SR_P11FAULT_HIDE (comma-separated numbers, hex with 0x) make mechanisms
 * look unsupported: C_GetMechanismInfo answers CKR_MECHANISM_INVALID for them
 * and C_GetMechanismList leaves them out.
 *
 * Every call through the list is counted except C_GetFunctionList; a call
 * that the gate fails is counted too.  A failed call has written nothing to
 * its output arguments.
 *
 * This module is never used outside tests; it never changes arguments of
 * calls it forwards (the one thing it edits is the mechanism list it was
 * told to filter), never allocates per call, and never unloads the real
 * module: the dlopen handle lives as long as the process.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define SR_EXPORT __attribute__((visibility("default")))

#define DEFAULT_TARGET "/usr/lib/softhsm/libsofthsm2.so"
#define MAX_HIDDEN 16
#define MAX_MECHS 512 /* largest mechanism list of a target we filter */

SR_EXPORT void sr_p11fault_arm(unsigned long n, unsigned long rv);
SR_EXPORT void sr_p11fault_arm_sticky(
    unsigned long n, unsigned long rv, unsigned long count);
SR_EXPORT unsigned long sr_p11fault_calls(void);
SR_EXPORT void sr_p11fault_reset(void);
SR_EXPORT unsigned long sr_p11fault_fired(void);
SR_EXPORT void sr_p11fault_hide_mechanism(unsigned long mech);

/* The real module, set once under load_once and never released. */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static void *real_handle;
static CK_FUNCTION_LIST_PTR real;

/* Gate state, all under gate_lock. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long gate_calls; /* calls since the last arm or reset */
static unsigned long gate_from;  /* first call to fail, 1-based; 0: off */
static unsigned long gate_count; /* how many calls fail from gate_from */
static unsigned long gate_fired; /* calls failed since the last arm */
static CK_RV gate_rv;            /* what a failed call returns */
static CK_MECHANISM_TYPE hidden[MAX_HIDDEN];
static size_t nhidden;

static void
load_target(void)
{
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR list = NULL;
	const char *path;

	path = getenv("SR_P11FAULT_TARGET");
	if (path == NULL || *path == '\0')
		path = DEFAULT_TARGET;
	real_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (real_handle == NULL)
		return;
	get = (CK_C_GetFunctionList)dlsym(real_handle, "C_GetFunctionList");
	if (get == NULL || get(&list) != CKR_OK || list == NULL)
		return;
	real = list;
}

/* Loads the real module once; nonzero when it is there. */
static int
load(void)
{
	pthread_once(&load_once, load_target);
	return real != NULL;
}

/* Counts one call; nonzero, with *rv set, when this call is to fail. */
static int
gate(CK_RV *rv)
{
	int fail = 0;

	pthread_mutex_lock(&gate_lock);
	gate_calls++;
	if (gate_from != 0 && gate_calls >= gate_from &&
	    gate_calls - gate_from < gate_count) {
		gate_fired++;
		*rv = gate_rv;
		fail = 1;
	}
	pthread_mutex_unlock(&gate_lock);
	return fail;
}

static int
in_list(CK_MECHANISM_TYPE mech, const CK_MECHANISM_TYPE *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (list[i] == mech)
			return 1;
	return 0;
}

/* Copies the hidden mechanisms into out[MAX_HIDDEN]; returns how many. */
static size_t
hidden_copy(CK_MECHANISM_TYPE *out)
{
	size_t n;

	pthread_mutex_lock(&gate_lock);
	n = nhidden;
	memcpy(out, hidden, n * sizeof(*out));
	pthread_mutex_unlock(&gate_lock);
	return n;
}

static int
is_hidden(CK_MECHANISM_TYPE mech)
{
	int r;

	pthread_mutex_lock(&gate_lock);
	r = in_list(mech, hidden, nhidden);
	pthread_mutex_unlock(&gate_lock);
	return r;
}

SR_EXPORT void
sr_p11fault_arm_sticky(unsigned long n, unsigned long rv, unsigned long count)
{
	pthread_mutex_lock(&gate_lock);
	gate_calls = 0;
	gate_fired = 0;
	gate_from = n;
	gate_count = n != 0 ? count : 0;
	gate_rv = rv;
	pthread_mutex_unlock(&gate_lock);
}

SR_EXPORT void
sr_p11fault_arm(unsigned long n, unsigned long rv)
{
	sr_p11fault_arm_sticky(n, rv, 1);
}

SR_EXPORT void
sr_p11fault_reset(void)
{
	sr_p11fault_arm_sticky(0, CKR_OK, 0);
}

SR_EXPORT unsigned long
sr_p11fault_calls(void)
{
	unsigned long n;

	pthread_mutex_lock(&gate_lock);
	n = gate_calls;
	pthread_mutex_unlock(&gate_lock);
	return n;
}

SR_EXPORT unsigned long
sr_p11fault_fired(void)
{
	unsigned long n;

	pthread_mutex_lock(&gate_lock);
	n = gate_fired;
	pthread_mutex_unlock(&gate_lock);
	return n;
}

SR_EXPORT void
sr_p11fault_hide_mechanism(unsigned long mech)
{
	pthread_mutex_lock(&gate_lock);
	if (mech == (unsigned long)-1)
		nhidden = 0;
	else if (!in_list(mech, hidden, nhidden) && nhidden < MAX_HIDDEN)
		hidden[nhidden++] = mech;
	pthread_mutex_unlock(&gate_lock);
}

/* SR_P11FAULT_HIDE="0x251,592": read once, when the module is loaded. */
__attribute__((constructor)) static void
read_env(void)
{
	const char *s = getenv("SR_P11FAULT_HIDE");
	unsigned long mech;
	char *end;

	while (s != NULL && *s != '\0') {
		mech = strtoul(s, &end, 0);
		if (end != s && (*end == ',' || *end == '\0'))
			sr_p11fault_hide_mechanism(mech);
		s = strchr(end, ',');
		if (s != NULL)
			s++;
	}
}

/*
 * FWD(name, params, args) defines fault_<name>, which counts the call and
 * either fails it or passes args to the real C_<name> untouched.
 */
#define FWD(name, params, args) \
	static CK_RV fault_##name params \
	{ \
		CK_RV rv; \
\
		if (!load()) \
			return CKR_GENERAL_ERROR; \
		if (gate(&rv)) \
			return rv; \
		if (real->C_##name == NULL) \
			return CKR_FUNCTION_NOT_SUPPORTED; \
		return real->C_##name args; \
	}

/* Short names for the parameter lists below. */
typedef CK_SESSION_HANDLE SH;
typedef CK_OBJECT_HANDLE OH;
typedef CK_BYTE_PTR BP;
typedef CK_ULONG UL;
typedef CK_ULONG_PTR ULP;
typedef CK_MECHANISM_PTR MP;
typedef CK_ATTRIBUTE_PTR AP;

FWD(Initialize, (CK_VOID_PTR a), (a))
FWD(Finalize, (CK_VOID_PTR r), (r))
FWD(GetInfo, (CK_INFO_PTR i), (i))
FWD(GetSlotList, (CK_BBOOL p, CK_SLOT_ID_PTR l, ULP n), (p, l, n))
FWD(GetSlotInfo, (CK_SLOT_ID s, CK_SLOT_INFO_PTR i), (s, i))
FWD(GetTokenInfo, (CK_SLOT_ID s, CK_TOKEN_INFO_PTR i), (s, i))
FWD(WaitForSlotEvent, (CK_FLAGS f, CK_SLOT_ID_PTR s, CK_VOID_PTR r), (f, s, r))
FWD(InitToken, (CK_SLOT_ID s, CK_UTF8CHAR_PTR p, UL n, CK_UTF8CHAR_PTR l),
    (s, p, n, l))
FWD(InitPIN, (SH s, CK_UTF8CHAR_PTR p, UL n), (s, p, n))
FWD(SetPIN, (SH s, CK_UTF8CHAR_PTR o, UL on, CK_UTF8CHAR_PTR p, UL pn),
    (s, o, on, p, pn))
FWD(OpenSession,
    (CK_SLOT_ID s, CK_FLAGS f, CK_VOID_PTR a, CK_NOTIFY n,
        CK_SESSION_HANDLE_PTR h),
    (s, f, a, n, h))
FWD(CloseSession, (SH s), (s))
FWD(CloseAllSessions, (CK_SLOT_ID s), (s))
FWD(GetSessionInfo, (SH s, CK_SESSION_INFO_PTR i), (s, i))
FWD(GetOperationState, (SH s, BP st, ULP n), (s, st, n))
FWD(SetOperationState, (SH s, BP st, UL n, OH e, OH a), (s, st, n, e, a))
FWD(Login, (SH s, CK_USER_TYPE u, CK_UTF8CHAR_PTR p, UL n), (s, u, p, n))
FWD(Logout, (SH s), (s))
FWD(CreateObject, (SH s, AP t, UL n, CK_OBJECT_HANDLE_PTR o), (s, t, n, o))
FWD(CopyObject, (SH s, OH o, AP t, UL n, CK_OBJECT_HANDLE_PTR no),
    (s, o, t, n, no))
FWD(DestroyObject, (SH s, OH o), (s, o))
FWD(GetObjectSize, (SH s, OH o, ULP n), (s, o, n))
FWD(GetAttributeValue, (SH s, OH o, AP t, UL n), (s, o, t, n))
FWD(SetAttributeValue, (SH s, OH o, AP t, UL n), (s, o, t, n))
FWD(FindObjectsInit, (SH s, AP t, UL n), (s, t, n))
FWD(FindObjects, (SH s, CK_OBJECT_HANDLE_PTR o, UL max, ULP n), (s, o, max, n))
FWD(FindObjectsFinal, (SH s), (s))
FWD(EncryptInit, (SH s, MP m, OH k), (s, m, k))
FWD(Encrypt, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(EncryptUpdate, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(EncryptFinal, (SH s, BP o, ULP on), (s, o, on))
FWD(DecryptInit, (SH s, MP m, OH k), (s, m, k))
FWD(Decrypt, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(DecryptUpdate, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(DecryptFinal, (SH s, BP o, ULP on), (s, o, on))
FWD(DigestInit, (SH s, MP m), (s, m))
FWD(Digest, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(DigestUpdate, (SH s, BP d, UL dn), (s, d, dn))
FWD(DigestKey, (SH s, OH k), (s, k))
FWD(DigestFinal, (SH s, BP o, ULP on), (s, o, on))
FWD(SignInit, (SH s, MP m, OH k), (s, m, k))
FWD(Sign, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(SignUpdate, (SH s, BP d, UL dn), (s, d, dn))
FWD(SignFinal, (SH s, BP o, ULP on), (s, o, on))
FWD(SignRecoverInit, (SH s, MP m, OH k), (s, m, k))
FWD(SignRecover, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(VerifyInit, (SH s, MP m, OH k), (s, m, k))
FWD(Verify, (SH s, BP d, UL dn, BP g, UL gn), (s, d, dn, g, gn))
FWD(VerifyUpdate, (SH s, BP d, UL dn), (s, d, dn))
FWD(VerifyFinal, (SH s, BP g, UL gn), (s, g, gn))
FWD(VerifyRecoverInit, (SH s, MP m, OH k), (s, m, k))
FWD(VerifyRecover, (SH s, BP g, UL gn, BP o, ULP on), (s, g, gn, o, on))
FWD(DigestEncryptUpdate, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(DecryptDigestUpdate, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(SignEncryptUpdate, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(DecryptVerifyUpdate, (SH s, BP d, UL dn, BP o, ULP on), (s, d, dn, o, on))
FWD(GenerateKey, (SH s, MP m, AP t, UL n, CK_OBJECT_HANDLE_PTR k),
    (s, m, t, n, k))
FWD(GenerateKeyPair,
    (SH s, MP m, AP pt, UL pn, AP vt, UL vn, CK_OBJECT_HANDLE_PTR pk,
        CK_OBJECT_HANDLE_PTR vk),
    (s, m, pt, pn, vt, vn, pk, vk))
FWD(WrapKey, (SH s, MP m, OH w, OH k, BP o, ULP on), (s, m, w, k, o, on))
FWD(UnwrapKey,
    (SH s, MP m, OH u, BP w, UL wn, AP t, UL n, CK_OBJECT_HANDLE_PTR k),
    (s, m, u, w, wn, t, n, k))
FWD(DeriveKey, (SH s, MP m, OH b, AP t, UL n, CK_OBJECT_HANDLE_PTR k),
    (s, m, b, t, n, k))
FWD(SeedRandom, (SH s, BP d, UL dn), (s, d, dn))
FWD(GenerateRandom, (SH s, BP o, UL on), (s, o, on))
FWD(GetFunctionStatus, (SH s), (s))
FWD(CancelFunction, (SH s), (s))

static CK_RV
fault_GetMechanismInfo(
    CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	CK_RV rv;

	if (!load())
		return CKR_GENERAL_ERROR;
	if (gate(&rv))
		return rv;
	if (is_hidden(type))
		return CKR_MECHANISM_INVALID;
	if (real->C_GetMechanismInfo == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	return real->C_GetMechanismInfo(slot, type, info);
}

/*
 * With mechanisms hidden, the real list is read into a stack buffer and
 * filtered; the caller sees the usual two-call protocol on the filtered
 * list (NULL list: the count; short buffer: CKR_BUFFER_TOO_SMALL and the
 * count needed).
 */
static CK_RV
fault_GetMechanismList(
    CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_MECHANISM_TYPE all[MAX_MECHS], hid[MAX_HIDDEN];
	CK_ULONG n = MAX_MECHS, i, m = 0;
	size_t nhid;
	CK_RV rv;

	if (!load())
		return CKR_GENERAL_ERROR;
	if (gate(&rv))
		return rv;
	if (real->C_GetMechanismList == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	nhid = hidden_copy(hid);
	if (nhid == 0 || count == NULL)
		return real->C_GetMechanismList(slot, list, count);
	rv = real->C_GetMechanismList(slot, all, &n);
	if (rv == CKR_BUFFER_TOO_SMALL)
		return CKR_GENERAL_ERROR; /* target has over MAX_MECHS */
	if (rv != CKR_OK)
		return rv;
	for (i = 0; i < n; i++)
		if (!in_list(all[i], hid, nhid))
			all[m++] = all[i];
	if (list != NULL && *count < m) {
		*count = m;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (list != NULL)
		memcpy(list, all, m * sizeof(*all));
	*count = m;
	return CKR_OK;
}

static CK_FUNCTION_LIST fault_list = {
	.version = { 2, 40 },
	.C_Initialize = fault_Initialize,
	.C_Finalize = fault_Finalize,
	.C_GetInfo = fault_GetInfo,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = fault_GetSlotList,
	.C_GetSlotInfo = fault_GetSlotInfo,
	.C_GetTokenInfo = fault_GetTokenInfo,
	.C_GetMechanismList = fault_GetMechanismList,
	.C_GetMechanismInfo = fault_GetMechanismInfo,
	.C_InitToken = fault_InitToken,
	.C_InitPIN = fault_InitPIN,
	.C_SetPIN = fault_SetPIN,
	.C_OpenSession = fault_OpenSession,
	.C_CloseSession = fault_CloseSession,
	.C_CloseAllSessions = fault_CloseAllSessions,
	.C_GetSessionInfo = fault_GetSessionInfo,
	.C_GetOperationState = fault_GetOperationState,
	.C_SetOperationState = fault_SetOperationState,
	.C_Login = fault_Login,
	.C_Logout = fault_Logout,
	.C_CreateObject = fault_CreateObject,
	.C_CopyObject = fault_CopyObject,
	.C_DestroyObject = fault_DestroyObject,
	.C_GetObjectSize = fault_GetObjectSize,
	.C_GetAttributeValue = fault_GetAttributeValue,
	.C_SetAttributeValue = fault_SetAttributeValue,
	.C_FindObjectsInit = fault_FindObjectsInit,
	.C_FindObjects = fault_FindObjects,
	.C_FindObjectsFinal = fault_FindObjectsFinal,
	.C_EncryptInit = fault_EncryptInit,
	.C_Encrypt = fault_Encrypt,
	.C_EncryptUpdate = fault_EncryptUpdate,
	.C_EncryptFinal = fault_EncryptFinal,
	.C_DecryptInit = fault_DecryptInit,
	.C_Decrypt = fault_Decrypt,
	.C_DecryptUpdate = fault_DecryptUpdate,
	.C_DecryptFinal = fault_DecryptFinal,
	.C_DigestInit = fault_DigestInit,
	.C_Digest = fault_Digest,
	.C_DigestUpdate = fault_DigestUpdate,
	.C_DigestKey = fault_DigestKey,
	.C_DigestFinal = fault_DigestFinal,
	.C_SignInit = fault_SignInit,
	.C_Sign = fault_Sign,
	.C_SignUpdate = fault_SignUpdate,
	.C_SignFinal = fault_SignFinal,
	.C_SignRecoverInit = fault_SignRecoverInit,
	.C_SignRecover = fault_SignRecover,
	.C_VerifyInit = fault_VerifyInit,
	.C_Verify = fault_Verify,
	.C_VerifyUpdate = fault_VerifyUpdate,
	.C_VerifyFinal = fault_VerifyFinal,
	.C_VerifyRecoverInit = fault_VerifyRecoverInit,
	.C_VerifyRecover = fault_VerifyRecover,
	.C_DigestEncryptUpdate = fault_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = fault_DecryptDigestUpdate,
	.C_SignEncryptUpdate = fault_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = fault_DecryptVerifyUpdate,
	.C_GenerateKey = fault_GenerateKey,
	.C_GenerateKeyPair = fault_GenerateKeyPair,
	.C_WrapKey = fault_WrapKey,
	.C_UnwrapKey = fault_UnwrapKey,
	.C_DeriveKey = fault_DeriveKey,
	.C_SeedRandom = fault_SeedRandom,
	.C_GenerateRandom = fault_GenerateRandom,
	.C_GetFunctionStatus = fault_GetFunctionStatus,
	.C_CancelFunction = fault_CancelFunction,
	.C_WaitForSlotEvent = fault_WaitForSlotEvent,
};

/* Not counted: loads the real module and hands out the gated list. */
SR_EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!load())
		return CKR_GENERAL_ERROR;
	*list = &fault_list;
	return CKR_OK;
}
