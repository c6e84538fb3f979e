/*-------------------------------------------------------------------------
 *
 * jsonb_object.h
 *		A jsonb object written straight into its binary form
 *		(jsonb_object.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_JSONB_OBJECT_H
#define AUDIT_JSONB_OBJECT_H

#include "postgres.h"

#include "utils/jsonb.h"

extern Jsonb *audit_jsonb_object(const JsonbPair *pairs, int npairs);

#endif							/* AUDIT_JSONB_OBJECT_H */
