/*-------------------------------------------------------------------------
 *
 * compress.h
 *		Row images stored compressed inline (compress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_COMPRESS_H
#define AUDIT_COMPRESS_H

#include "postgres.h"

#include "utils/jsonb.h"

extern Datum audit_compress_image(Jsonb *image);

#endif							/* AUDIT_COMPRESS_H */
