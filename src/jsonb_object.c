/*-------------------------------------------------------------------------
 *
 * jsonb_object.c
 *		A row image (a flat jsonb object) written straight into jsonb's
 *		binary form, byte for byte what JsonbValueToJsonb() writes for the
 *		same pairs, without its tree walk and growing buffer: the size is
 *		known before the first byte is written, and a value that already
 *		is jsonb (a jsonb or json column) is copied in as it is stored
 *		instead of being unpacked into a tree and packed again.
 *
 * The layout (PostgreSQL's utils/jsonb.h, convertJsonbObject()): a varlena
 * header; the object's header (count | JB_FOBJECT); one JEntry per key,
 * then one per value; the keys' bytes; the values' bytes.  A JEntry holds
 * the type and the length of its item, or, every JB_OFFSET_STRIDE-th one,
 * the end offset of the item (JENTRY_HAS_OFF).  Numerics and containers
 * start on a 4-byte boundary of the buffer, their padding counted in their
 * length.
 *
 * Pure computation: no locks, no catalog access; memory in
 * CurrentMemoryContext.  Assert-enabled builds check every object against
 * JsonbValueToJsonb() (capture_dml.c).
 *
 *-------------------------------------------------------------------------
 */
#include "jsonb_object.h"

/*
 * pad_to_int: zero bytes up to the next 4-byte boundary of the buffer;
 * the new offset.
 */
static inline Size
pad_to_int(char *buf, Size off)
{
	Size		aligned = INTALIGN(off);

	while (off < aligned)
		buf[off++] = '\0';
	return off;
}

/*
 * check_length: error when length, of the elements or of the whole
 * object, is more than a JEntry can hold (as JsonbValueToJsonb() does).
 */
static inline void
check_length(Size length)
{
	if (length > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("total size of jsonb object elements exceeds the maximum of %d bytes",
						JENTRY_OFFLENMASK)));
}

/*
 * audit_jsonb_object: the pairs as a jsonb object.  The keys must be
 * unique and in jsonb's key order (shorter first, then bytewise), as
 * JsonbValueToJsonb() expects of an object it is given.  Values: null,
 * bool, string, numeric, a container (jbvBinary, copied as it is), or an
 * array or object (written by JsonbValueToJsonb() and copied in).
 */
Jsonb *
audit_jsonb_object(const JsonbPair *pairs, int npairs)
{
	Jsonb	  **nested = NULL;
	Size		bound;
	char	   *buf;
	Size		off;
	Size		entries;
	uint32		header;
	uint32		totallen = 0;
	int			i;

	/* The size: exact but for the padding (3 bytes at most per value). */
	bound = VARHDRSZ + sizeof(uint32) + 2 * (Size) npairs * sizeof(JEntry);
	for (i = 0; i < npairs; i++)
	{
		const JsonbValue *v = &pairs[i].value;

		Assert(pairs[i].key.type == jbvString);
		bound += pairs[i].key.val.string.len;
		switch (v->type)
		{
			case jbvNull:
			case jbvBool:
				break;
			case jbvString:
				bound += v->val.string.len;
				break;
			case jbvNumeric:
				bound += VARSIZE_ANY(v->val.numeric) + 3;
				break;
			case jbvBinary:
				bound += v->val.binary.len + 3;
				break;
			case jbvArray:
			case jbvObject:
				if (nested == NULL)
					nested = palloc0(sizeof(Jsonb *) * npairs);
				nested[i] = JsonbValueToJsonb((JsonbValue *) v);
				bound += VARSIZE(nested[i]) - VARHDRSZ + 3;
				break;
			default:
				elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
		}
	}

	buf = palloc(bound);
	header = (uint32) npairs | JB_FOBJECT;
	memcpy(buf + VARHDRSZ, &header, sizeof(uint32));
	entries = VARHDRSZ + sizeof(uint32);
	off = entries + 2 * (Size) npairs * sizeof(JEntry);

	/* The keys. */
	for (i = 0; i < npairs; i++)
	{
		int			len = pairs[i].key.val.string.len;
		JEntry		meta;

		memcpy(buf + off, pairs[i].key.val.string.val, len);
		off += len;
		totallen += len;
		meta = (i % JB_OFFSET_STRIDE) == 0 ?
			JENTRY_ISSTRING | JENTRY_HAS_OFF | totallen : JENTRY_ISSTRING | len;
		memcpy(buf + entries + i * sizeof(JEntry), &meta, sizeof(JEntry));
	}

	/* The values. */
	for (i = 0; i < npairs; i++)
	{
		const JsonbValue *v = &pairs[i].value;
		Size		start = off;
		JEntry		type;
		JEntry		meta;
		uint32		len;

		switch (v->type)
		{
			case jbvNull:
				type = JENTRY_ISNULL;
				break;
			case jbvBool:
				type = v->val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
				break;
			case jbvString:
				memcpy(buf + off, v->val.string.val, v->val.string.len);
				off += v->val.string.len;
				type = JENTRY_ISSTRING;
				break;
			case jbvNumeric:
				off = pad_to_int(buf, off);
				memcpy(buf + off, v->val.numeric, VARSIZE_ANY(v->val.numeric));
				off += VARSIZE_ANY(v->val.numeric);
				type = JENTRY_ISNUMERIC;
				break;
			case jbvBinary:
				off = pad_to_int(buf, off);
				memcpy(buf + off, v->val.binary.data, v->val.binary.len);
				off += v->val.binary.len;
				type = JENTRY_ISCONTAINER;
				break;
			default:			/* jbvArray, jbvObject */
				off = pad_to_int(buf, off);
				memcpy(buf + off, &nested[i]->root, VARSIZE(nested[i]) - VARHDRSZ);
				off += VARSIZE(nested[i]) - VARHDRSZ;
				type = JENTRY_ISCONTAINER;
				break;
		}
		len = (uint32) (off - start);
		totallen += len;
		check_length(totallen);
		meta = ((i + npairs) % JB_OFFSET_STRIDE) == 0 ?
			type | JENTRY_HAS_OFF | totallen : type | len;
		memcpy(buf + entries + (npairs + i) * sizeof(JEntry), &meta, sizeof(JEntry));
	}
	Assert(off <= bound);
	check_length(off - VARHDRSZ);
	SET_VARSIZE(buf, off);
	return (Jsonb *) buf;
}
