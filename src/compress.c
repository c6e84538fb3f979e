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
 * Cost.  An attempt costs about as much whether it succeeds or not (LZ4
 * through toast_compress_datum(), which also clears LZ4's 16 kB table for
 * every value): 5-7% of a 200,000-row UPDATE's time.  So after
 * COMPRESS_MISSES_BEFORE_BACKOFF failed attempts in a row on images under
 * COMPRESS_ALWAYS_BYTES, each further failure makes the next 1, 3, 7 ...
 * 63 such images skip compression (a success resets it): the rows of a
 * statement look alike, and a table whose images mostly compress keeps
 * them compressed.  Images of COMPRESS_ALWAYS_BYTES or more are always
 * tried.  (Compressing with liblz4's streaming API, one stream per backend
 * reset without clearing, was tried and left out: its smaller hash table
 * compressed the benchmark's 287-byte images 2.4 bytes worse on average,
 * enough to fit one row fewer in a heap page, for about 1% of a bulk
 * statement's time.)
 *
 * Backend-local state only (the back-off); no locks.  The result is
 * palloc'd in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "compress.h"

#include "access/toast_compression.h"
#include "access/toast_internals.h"

#include "compat.h"

#define COMPRESS_MIN_BYTES 160
#define COMPRESS_ALWAYS_BYTES 1024
#define COMPRESS_MISSES_BEFORE_BACKOFF 4
#define COMPRESS_MAX_BACKOFF 6

static int	compress_misses = 0;	/* failed attempts in a row (capped) */
static int	compress_skip = 0;		/* images to store as they are */

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
	c = DatumGetPointer(toast_compress_datum(d, AUDIT_TOAST_COMPRESSION));
	if (c != NULL)
	{
		compress_misses = 0;
		compress_skip = 0;
		return PointerGetDatum(c);
	}
	if (size < COMPRESS_ALWAYS_BYTES)
	{
		compress_misses = Min(compress_misses + 1,
							  COMPRESS_MISSES_BEFORE_BACKOFF - 1 + COMPRESS_MAX_BACKOFF);
		if (compress_misses >= COMPRESS_MISSES_BEFORE_BACKOFF)
			compress_skip = (1 << (compress_misses - COMPRESS_MISSES_BEFORE_BACKOFF + 1)) - 1;
	}
	return d;
}
