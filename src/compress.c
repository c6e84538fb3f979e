/*-------------------------------------------------------------------------
 *
 * compress.c
 *		Row images (old_data, new_data) stored compressed inline.
 *
 * Heap rows under 2 kB never reach the TOAST compressor, and an audit row
 * is mostly its row image, so the writer compresses images of
 * COMPRESS_MIN_BYTES or more itself: LZ4 where the server was built with
 * it (Debian's are), else pglz.  The result is an ordinary compressed
 * inline datum (PostgreSQL's format, method in its header): readers see a
 * jsonb, detoasting is transparent, and it is kept only when it saves more
 * than 2 bytes, as toast_compress_datum() decides.
 *
 * Cost.  PostgreSQL's LZ4 call clears LZ4's 16 kB hash table before every
 * value: for a row image of a few hundred bytes that is most of the work
 * (callgrind: 80% of the instructions of compressing a 280-byte image).
 * With liblz4's header at build time (AUDIT_DIRECT_LZ4, see the Makefile)
 * the writer keeps one LZ4 stream per backend and resets it the cheap way
 * (LZ4_resetStream_fast) between images, each compressed as an
 * independent block, which PostgreSQL decompresses like its own.
 * And a failed attempt on an image under COMPRESS_ALWAYS_BYTES makes the
 * next 1, 3, 7 ... 63 such images skip compression (a success resets it):
 * the rows of a statement look alike.  Images of COMPRESS_ALWAYS_BYTES or
 * more are always tried.
 *
 * Backend-local state only (the stream, the back-off); no locks.  The
 * result is palloc'd in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "compress.h"

#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "utils/memutils.h"

#include "compat.h"

#ifdef AUDIT_DIRECT_LZ4
#include <lz4.h>
#endif

#define COMPRESS_MIN_BYTES 160
#define COMPRESS_ALWAYS_BYTES 1024
#define COMPRESS_MAX_BACKOFF 6

static int	compress_misses = 0;	/* failed attempts in a row (capped) */
static int	compress_skip = 0;		/* images to store as they are */

#ifdef AUDIT_DIRECT_LZ4
static LZ4_stream_t *lz4_stream = NULL;

/*
 * lz4_compress: the image LZ4-compressed as an independent block, in
 * PostgreSQL's compressed inline format; NULL when that saves 2 bytes or
 * fewer (toast_compress_datum()'s rule).
 */
static struct varlena *
lz4_compress(Jsonb *image)
{
	int32		valsize = VARSIZE_ANY_EXHDR(image);
	int			bound = LZ4_compressBound(valsize);
	struct varlena *c;
	int			len;

	if (lz4_stream == NULL)
	{
		lz4_stream = MemoryContextAlloc(TopMemoryContext, sizeof(LZ4_stream_t));
		if (LZ4_initStream(lz4_stream, sizeof(LZ4_stream_t)) == NULL)
			elog(ERROR, "could not initialize an LZ4 stream");
	}
	else
		LZ4_resetStream_fast(lz4_stream);
	c = palloc(bound + VARHDRSZ_COMPRESSED);
	len = LZ4_compress_fast_continue(lz4_stream, VARDATA_ANY(image),
									 (char *) c + VARHDRSZ_COMPRESSED,
									 valsize, bound, 1);
	if (len <= 0)
		elog(ERROR, "lz4 compression failed");
	if (len + VARHDRSZ_COMPRESSED >= valsize - 2)
	{
		pfree(c);
		return NULL;
	}
	SET_VARSIZE_COMPRESSED(c, len + VARHDRSZ_COMPRESSED);
	TOAST_COMPRESS_SET_SIZE_AND_COMPRESS_METHOD(c, valsize, TOAST_LZ4_COMPRESSION_ID);
	return c;
}
#endif

/*
 * audit_compress_image: a row image as the writer stores it: compressed
 * inline when it is large enough and images like it have compressed, else
 * as it is.
 */
Datum
audit_compress_image(Jsonb *image)
{
	Datum		d = JsonbPGetDatum(image);
	Size		size = VARSIZE_ANY(image);
	Pointer		c;

	if (size < COMPRESS_MIN_BYTES || VARATT_IS_EXTENDED(image))
		return d;
	if (size < COMPRESS_ALWAYS_BYTES && compress_skip > 0)
	{
		compress_skip--;
		return d;
	}
#ifdef AUDIT_DIRECT_LZ4
	c = (Pointer) lz4_compress(image);
#else
	c = DatumGetPointer(toast_compress_datum(d, AUDIT_TOAST_COMPRESSION));
#endif
	if (c != NULL)
	{
		compress_misses = 0;
		compress_skip = 0;
		return PointerGetDatum(c);
	}
	if (size < COMPRESS_ALWAYS_BYTES)
	{
		compress_misses = Min(compress_misses + 1, COMPRESS_MAX_BACKOFF);
		compress_skip = (1 << compress_misses) - 1;
	}
	return d;
}
