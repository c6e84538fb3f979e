/*-------------------------------------------------------------------------
 *
 * util.c
 *		The helpers of util.h that are not inline: text -> jsonb, merging
 *		two jsonb objects, a socket address as text, a name made valid in
 *		an encoding, a text argument as a C string, a text[] literal as a
 *		list of names.
 *
 * No transaction or locking rules: pure functions of their arguments,
 * allocating in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "util.h"

#include <sys/socket.h>
#include <netdb.h>

#include "catalog/pg_type.h"
#include "common/ip.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"

/*
 * audit_text_to_jsonb: the jsonb of a JSON text; NULL for NULL.  Invalid
 * JSON is an error (the callers build it with the j_* functions).
 */
Jsonb *
audit_text_to_jsonb(const char *s)
{
	return s ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s))) : NULL;
}

/*
 * audit_jsonb_merge: the keys of object a and those of object b, b's value
 * winning when both have a key (jsonb ||).  NULL stands for {}.
 */
Jsonb *
audit_jsonb_merge(Jsonb *a, Jsonb *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
											  JsonbPGetDatum(a), JsonbPGetDatum(b)));
}

/*
 * audit_addr_text: a client's address as text (as inet_client_addr()
 * shows it); NULL for NULL, a unix socket, or an address that cannot be
 * printed.
 */
const char *
audit_addr_text(const SockAddr *addr)
{
	char		host[NI_MAXHOST];

	if (addr == NULL)
		return NULL;
	if (addr->addr.ss_family != AF_INET && addr->addr.ss_family != AF_INET6)
		return NULL;
	if (pg_getnameinfo_all(&addr->addr, addr->salen, host, sizeof(host),
						   NULL, 0, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return NULL;
	clean_ipv6_addr(addr->addr.ss_family, host);
	return pstrdup(host);
}

/*
 * audit_valid_text: s when it is valid in encoding; else a copy with each
 * byte of an invalid sequence replaced by '?' (and *changed set, when
 * changed is not NULL).  Names from unauthenticated clients are stored as
 * given, but never as invalid text.
 */
const char *
audit_valid_text(const char *s, int encoding, bool *changed)
{
	char	   *copy;
	int			len;
	int			i = 0;

	if (s == NULL || pg_encoding_verifymbstr(encoding, s, strlen(s)) == (int) strlen(s))
		return s;
	if (changed)
		*changed = true;
	copy = pstrdup(s);
	len = strlen(copy);
	while (i < len)
	{
		int			l = pg_encoding_verifymbchar(encoding, copy + i, len - i);

		if (l < 0)
		{
			copy[i] = '?';
			l = 1;
		}
		i += l;
	}
	return copy;
}

/*
 * audit_text_arg: text argument n of a SQL-callable function as a C
 * string; NULL for SQL NULL.
 */
char *
audit_text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * audit_name_list: the names in a text[] literal (a trigger argument);
 * NIL for NULL or ''.
 */
List *
audit_name_list(const char *literal)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *result = NIL;

	if (literal == NULL || literal[0] == '\0')
		return NIL;
	arr = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, (char *) literal,
												  TEXTOID, -1));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	return result;
}
