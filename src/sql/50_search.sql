/*
 * audit_log install script, part 50: the views that search reads.
 */

CREATE VIEW @extschema@.event_types AS
SELECT event_type, category, description
  FROM @extschema@.event_type_catalog;
COMMENT ON VIEW @extschema@.event_types IS 'Every event code with its category and description.';
COMMENT ON COLUMN @extschema@.event_types.event_type IS 'Lowercase dotted event code, e.g. role.created.';
COMMENT ON COLUMN @extschema@.event_types.category IS 'Category of the code: data, ddl, privilege, role, auth, config, audit or app.';
COMMENT ON COLUMN @extschema@.event_types.description IS 'What an event of this code means.';

CREATE VIEW @extschema@.event_log AS
SELECT e.*,
       t.description,
       CASE WHEN e.command = 'UPDATE' AND e.new_data IS NOT NULL
            THEN ARRAY(SELECT pg_catalog.jsonb_object_keys(e.new_data))
       END AS changed_columns
  FROM @extschema@.events e
  LEFT JOIN @extschema@.event_type_catalog t ON t.event_type = e.event_type;
COMMENT ON VIEW @extschema@.event_log IS 'Every audit event, with the description of its code and the columns an UPDATE changed.';

REVOKE ALL ON @extschema@.event_types, @extschema@.event_log FROM PUBLIC;
GRANT SELECT ON @extschema@.event_types, @extschema@.event_log TO audit_log_reader, audit_log_admin;
