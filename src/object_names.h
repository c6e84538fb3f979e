/*-------------------------------------------------------------------------
 *
 * object_names.h
 *		How events name things (object_names.c): roles, relations, object
 *		nodes, object types, command tags and ddl.* codes.  Lookups never
 *		lock and never raise an error.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_OBJECT_NAMES_H
#define AUDIT_OBJECT_NAMES_H

#include "postgres.h"

#include "nodes/parsenodes.h"

extern const char *audit_rolespec_name(RoleSpec *r);
extern List *audit_rolespec_names(List *specs);
extern Oid	audit_rv_relid(RangeVar *rv);
extern char *audit_rv_name(RangeVar *rv);
extern char *audit_node_name(Node *n);
extern const char *audit_objtype_name(ObjectType t);
extern char *audit_tag_object_type(const char *tag);
extern char *audit_tag_code(const char *tag);
extern char *audit_defel_value(DefElem *d);
extern const char *audit_ddl_name(Node *n, RangeVar **later);
extern const char *audit_schema_name(CreateSchemaStmt *s);

#endif							/* AUDIT_OBJECT_NAMES_H */
