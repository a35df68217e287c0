/*
 * pkcs11/rv.c: translates foreign CK_RV codes into Strongroom's P11_E*
 * codes, names them for logs, and keeps each thread's last CK_RV.
 *
 * This is the only place a CK_RV becomes one of our codes; it must never
 * hide a code by mapping it to success.
 */
#include <stdio.h>

#include "pkcs11/internal.h"

static _Thread_local CK_RV p11_last;
static _Thread_local char p11_rvbuf[24];

#define P11_RV_NAMES(XX) \
	XX(CKR_OK) \
	XX(CKR_CANCEL) XX(CKR_HOST_MEMORY) XX(CKR_SLOT_ID_INVALID) XX(CKR_GENERAL_ERROR) XX( \
	    CKR_FUNCTION_FAILED) XX(CKR_ARGUMENTS_BAD) XX(CKR_NO_EVENT) XX(CKR_NEED_TO_CREATE_THREADS) \
	    XX(CKR_CANT_LOCK) XX(CKR_ATTRIBUTE_READ_ONLY) XX(CKR_ATTRIBUTE_SENSITIVE) XX( \
	        CKR_ATTRIBUTE_TYPE_INVALID) XX(CKR_ATTRIBUTE_VALUE_INVALID) XX(CKR_ACTION_PROHIBITED) \
	        XX(CKR_DATA_INVALID) XX(CKR_DATA_LEN_RANGE) XX(CKR_DEVICE_ERROR) XX(CKR_DEVICE_MEMORY) XX( \
	            CKR_DEVICE_REMOVED) XX(CKR_ENCRYPTED_DATA_INVALID) XX(CKR_ENCRYPTED_DATA_LEN_RANGE) \
	            XX(CKR_FUNCTION_CANCELED) XX(CKR_FUNCTION_NOT_PARALLEL) XX( \
	                CKR_FUNCTION_NOT_SUPPORTED) XX(CKR_KEY_HANDLE_INVALID) XX(CKR_KEY_SIZE_RANGE) \
	                XX(CKR_KEY_TYPE_INCONSISTENT) XX(CKR_KEY_NOT_NEEDED) XX(CKR_KEY_CHANGED) XX( \
	                    CKR_KEY_NEEDED) XX(CKR_KEY_INDIGESTIBLE) XX(CKR_KEY_FUNCTION_NOT_PERMITTED) \
	                    XX(CKR_KEY_NOT_WRAPPABLE) XX(CKR_KEY_UNEXTRACTABLE) XX( \
	                        CKR_MECHANISM_INVALID) XX(CKR_MECHANISM_PARAM_INVALID) XX(CKR_OBJECT_HANDLE_INVALID) \
	                        XX(CKR_OPERATION_ACTIVE) XX(CKR_OPERATION_NOT_INITIALIZED) XX( \
	                            CKR_PIN_INCORRECT) XX(CKR_PIN_INVALID) XX(CKR_PIN_LEN_RANGE) \
	                            XX(CKR_PIN_EXPIRED) XX(CKR_PIN_LOCKED) XX(CKR_SESSION_CLOSED) XX( \
	                                CKR_SESSION_COUNT) XX(CKR_SESSION_HANDLE_INVALID) XX(CKR_SESSION_PARALLEL_NOT_SUPPORTED) \
	                                XX(CKR_SESSION_READ_ONLY) XX(CKR_SESSION_EXISTS) XX( \
	                                    CKR_SESSION_READ_ONLY_EXISTS) XX(CKR_SESSION_READ_WRITE_SO_EXISTS) \
	                                    XX(CKR_SIGNATURE_INVALID) XX(CKR_SIGNATURE_LEN_RANGE) XX( \
	                                        CKR_TEMPLATE_INCOMPLETE) XX(CKR_TEMPLATE_INCONSISTENT) \
	                                        XX(CKR_TOKEN_NOT_PRESENT) XX(CKR_TOKEN_NOT_RECOGNIZED) XX( \
	                                            CKR_TOKEN_WRITE_PROTECTED) XX(CKR_UNWRAPPING_KEY_HANDLE_INVALID) \
	                                            XX(CKR_UNWRAPPING_KEY_SIZE_RANGE) XX( \
	                                                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) XX(CKR_USER_ALREADY_LOGGED_IN) \
	                                                XX(CKR_USER_NOT_LOGGED_IN) XX( \
	                                                    CKR_USER_PIN_NOT_INITIALIZED) XX(CKR_USER_TYPE_INVALID) \
	                                                    XX(CKR_USER_ANOTHER_ALREADY_LOGGED_IN) XX( \
	                                                        CKR_USER_TOO_MANY_TYPES) XX(CKR_WRAPPED_KEY_INVALID) \
	                                                        XX(CKR_WRAPPED_KEY_LEN_RANGE) XX( \
	                                                            CKR_WRAPPING_KEY_HANDLE_INVALID) XX(CKR_WRAPPING_KEY_SIZE_RANGE) \
	                                                            XX(CKR_WRAPPING_KEY_TYPE_INCONSISTENT) XX( \
	                                                                CKR_RANDOM_SEED_NOT_SUPPORTED) \
	                                                                XX(CKR_RANDOM_NO_RNG) XX( \
	                                                                    CKR_DOMAIN_PARAMS_INVALID) \
	                                                                    XX(CKR_BUFFER_TOO_SMALL) XX( \
	                                                                        CKR_SAVED_STATE_INVALID) \
	                                                                        XX(CKR_INFORMATION_SENSITIVE) XX( \
	                                                                            CKR_STATE_UNSAVEABLE) \
	                                                                            XX(CKR_CRYPTOKI_NOT_INITIALIZED) \
	                                                                                XX(CKR_CRYPTOKI_ALREADY_INITIALIZED) \
	                                                                                    XX(CKR_MUTEX_BAD) \
	                                                                                        XX(CKR_MUTEX_NOT_LOCKED) \
	                                                                                            XX(CKR_FUNCTION_REJECTED)

const char *
p11_rv_name(unsigned long rv)
{
	switch (rv) {
#define P11_RV_CASE(name) \
	case name: \
		return #name;
		P11_RV_NAMES(P11_RV_CASE)
#undef P11_RV_CASE
	default:
		snprintf(p11_rvbuf, sizeof(p11_rvbuf), "CKR_0x%lX", rv);
		return p11_rvbuf;
	}
}

int
p11__rv_is_session_loss(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_OPERATION_ACTIVE;
}

int
p11__rv_is_device_loss(CK_RV rv)
{
	return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
	    rv == CKR_DEVICE_ERROR || rv == CKR_CRYPTOKI_NOT_INITIALIZED ||
	    rv == CKR_TOKEN_NOT_RECOGNIZED;
}

int
p11_rv_to_error(unsigned long rv)
{
	switch (rv) {
	case CKR_OK:
		return 0;
	case CKR_HOST_MEMORY:
	case CKR_DEVICE_MEMORY:
		return P11_ENOMEM;
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return P11_EDEVICE;
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_OPERATION_ACTIVE:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_WRAPPING_KEY_HANDLE_INVALID:
	case CKR_UNWRAPPING_KEY_HANDLE_INVALID:
		return P11_ESESSION;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_USER_PIN_NOT_INITIALIZED:
		return P11_EPIN;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
		return P11_EMECH;
	case CKR_KEY_SIZE_RANGE:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_KEY_NOT_WRAPPABLE:
	case CKR_KEY_UNEXTRACTABLE:
	case CKR_WRAPPING_KEY_SIZE_RANGE:
	case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
	case CKR_UNWRAPPING_KEY_SIZE_RANGE:
	case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
	case CKR_ATTRIBUTE_SENSITIVE:
		return P11_EKEY;
	case CKR_DATA_INVALID:
	case CKR_DATA_LEN_RANGE:
	case CKR_ARGUMENTS_BAD:
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_TEMPLATE_INCOMPLETE:
	case CKR_BUFFER_TOO_SMALL:
		return P11_EDATA;
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
	case CKR_WRAPPED_KEY_INVALID:
	case CKR_WRAPPED_KEY_LEN_RANGE:
	case CKR_SIGNATURE_INVALID:
		return P11_EINTEGRITY;
	case CKR_FUNCTION_NOT_SUPPORTED:
	case CKR_RANDOM_NO_RNG:
		return P11_ENOTSUPP;
	default:
		return P11_EGENERAL;
	}
}

void
p11__set_last_rv(CK_RV rv)
{
	p11_last = rv;
}

unsigned long
p11_last_rv(void)
{
	return p11_last;
}
