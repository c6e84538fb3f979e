-- Table capture: how column values of each type are recorded.
\i test/include/setup.sql
\set SHOW_CONTEXT never

\i test/include/table_events.sql

CREATE TYPE typ_mood AS ENUM ('sad', 'happy');
CREATE TYPE typ_pair AS (x int, y text);
CREATE DOMAIN typ_posint AS int CHECK (VALUE > 0);
CREATE TABLE typ_all (
    id bigint PRIMARY KEY,
    i2 smallint, i4 int, i8 bigint,
    num numeric, num_big numeric(40, 10),
    f4 real, f8 double precision,
    txt text, vc varchar(20), ch char(3),
    b bool,
    ts timestamp, tstz timestamptz, d date, t time, ttz timetz, iv interval,
    j json, jb jsonb,
    ia int[], ta text[], ia2 int[][],
    by bytea, u uuid, ip inet,
    mood typ_mood, pair typ_pair, pos typ_posint,
    dropped_later text,
    gen bigint GENERATED ALWAYS AS (i4::bigint * 2) STORED
);
ALTER TABLE typ_all DROP COLUMN dropped_later;
SELECT audit_log.enable('typ_all');

INSERT INTO typ_all (id, i2, i4, i8, num, num_big, f4, f8, txt, vc, ch, b, ts, tstz, d, t, ttz, iv,
                     j, jb, ia, ta, ia2, by, u, ip, mood, pair, pos)
VALUES (1, -32768, 2147483647, 9223372036854775807, 1.50, 123456789012345678901234567890.0123456789,
        1.5, -2.25e-10, E'quote " backslash \\ newline \n tab \t ünïcødé', 'varchar', 'ab', true,
        '2024-02-29 23:59:59.5', '2024-01-02 03:04:05.123456+02', '2024-02-29', '12:34:56', '12:34:56+05:30',
        '1 year 2 mons 3 days 04:05:06',
        '{"b": 1, "a": [1, "x", null]}', '{"nested": {"deep": [1, {"k": [true, null]}]}, "n": 1.0}',
        '{1,2,3}', '{"a b",NULL,"c,d"}', '{{1,2},{3,4}}', '\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        '192.168.0.1/24', 'happy', ROW(1, 'one'), 7);
-- NULL in every nullable column.
INSERT INTO typ_all (id) VALUES (2);
-- Special values.
INSERT INTO typ_all (id, num, f4, f8, tstz, ts, d)
VALUES (3, 'NaN', 'Infinity', '-Infinity', 'infinity', '-infinity', 'infinity');

SELECT resource_id, jsonb_pretty(new_data) FROM table_events
 WHERE object_name = 'public.typ_all' AND command = 'INSERT' ORDER BY event_id;
-- Scalars keep their JSON type, arrays are JSON arrays (nested for more
-- dimensions), composites JSON objects; other types are strings in their
-- text form.
SELECT k, jsonb_typeof(v) FROM table_events, jsonb_each(new_data) AS e(k, v)
 WHERE object_name = 'public.typ_all' AND resource_id = '1' ORDER BY k;

-- timestamptz is recorded in UTC whatever the writer's TimeZone, so the
-- same instant reads the same; a plain timestamp is recorded as given.
SET timezone = 'America/New_York';
INSERT INTO typ_all (id, tstz, ts) VALUES (10, '2024-06-01 12:00:00+00', '2024-06-01 12:00:00');
SET timezone = 'Asia/Kolkata';
INSERT INTO typ_all (id, tstz, ts) VALUES (11, '2024-06-01 12:00:00+00', '2024-06-01 12:00:00');
SET datestyle = 'SQL, DMY';
INSERT INTO typ_all (id, tstz, ts) VALUES (12, '2024-06-01 12:00:00+00', '2024-06-01 12:00:00');
RESET datestyle;
SET timezone = 'UTC';
SELECT resource_id, new_data -> 'tstz' AS tstz, new_data -> 'ts' AS ts FROM table_events
 WHERE object_name = 'public.typ_all' AND resource_id IN ('10', '11', '12') ORDER BY resource_id;
-- Intervals and bytea are recorded in PostgreSQL's default styles whatever
-- the writer's IntervalStyle and bytea_output; floats as the shortest number
-- that reads back exactly, whatever extra_float_digits.
SET IntervalStyle = 'iso_8601';
SET bytea_output = 'escape';
SET extra_float_digits = -3;
INSERT INTO typ_all (id, iv, by, f4, f8) VALUES (13, '1 year 2 mons 3 days 04:05:06', '\xdeadbeef', 0.1, 0.1::float8 + 0.2::float8);
SET extra_float_digits = 3;
INSERT INTO typ_all (id, f4, f8) VALUES (14, 0.1, 0.1::float8 + 0.2::float8);
RESET IntervalStyle;
RESET bytea_output;
RESET extra_float_digits;
SELECT resource_id, new_data -> 'iv' AS iv, new_data -> 'by' AS by, new_data -> 'f4' AS f4, new_data -> 'f8' AS f8
  FROM table_events WHERE object_name = 'public.typ_all' AND resource_id IN ('1', '13', '14') ORDER BY resource_id;
SELECT DISTINCT (new_data ->> 'f8')::float8 = 0.1::float8 + 0.2::float8 AS f8_exact,
       (new_data ->> 'f4')::float4 = 0.1::float4 AS f4_exact
  FROM table_events WHERE object_name = 'public.typ_all' AND resource_id IN ('13', '14');
-- The recorded string is the original instant.
SELECT DISTINCT (new_data ->> 'tstz')::timestamptz = '2024-06-01 12:00:00+00' AS same_instant
  FROM table_events WHERE object_name = 'public.typ_all' AND resource_id IN ('10', '11', '12');

-- Array elements and composite attributes follow the scalar rules
-- (timestamptz in UTC whatever the TimeZone, numbers as numbers, NaN as a
-- string), NULL elements are null, arrays of domains, enums and composites,
-- composites holding arrays and composites; an empty array is [].
CREATE DOMAIN typ_posints AS int[] CHECK (0 < ALL (VALUE));
CREATE TYPE typ_stamp AS (at timestamptz, tags text[], p typ_pair, gone int);
ALTER TYPE typ_stamp DROP ATTRIBUTE gone;
CREATE TABLE typ_arr (id int PRIMARY KEY, tsa timestamptz[], na numeric[], ba bool[], ea text[],
                      ja jsonb[], ma typ_mood[], pa typ_pair[], da typ_posint[], dd typ_posints,
                      ba3 int[][][], st typ_stamp);
SELECT audit_log.enable('typ_arr');
SET timezone = 'Asia/Kolkata';
INSERT INTO typ_arr VALUES (1, ARRAY['2024-06-01 12:00:00+00'::timestamptz, NULL], '{1.5,NaN,-2}', '{t,f}', '{}',
    ARRAY['{"a": [1, null]}'::jsonb, 'null'], '{happy,sad}', ARRAY[ROW(1, 'one')::typ_pair, NULL],
    ARRAY[3, 4]::typ_posint[], '{5,6}', '{{{1,2}},{{3,4}}}',
    ROW('2024-06-01 12:00:00+00', '{a,NULL}', ROW(2, NULL))::typ_stamp);
UPDATE typ_arr SET ea = '{"x y"}', ba3 = '[0:1]={7,8}', st.tags = '{b}';
SET timezone = 'UTC';
SELECT command, old_data, new_data FROM table_events
 WHERE object_name = 'public.typ_arr' AND category = 'data' ORDER BY event_id;
SELECT k, jsonb_typeof(v) FROM table_events, jsonb_each(new_data) AS e(k, v)
 WHERE object_name = 'public.typ_arr' AND command = 'INSERT' ORDER BY k;
-- The row after the UPDATE (old_data || new_data) is what to_jsonb() writes
-- in UTC: no column differs.
SELECT k, v AS recorded, jv AS to_jsonb
  FROM table_events e, jsonb_each(e.old_data || e.new_data) AS n(k, v), typ_arr t,
       jsonb_each(to_jsonb(t)) AS j(jk, jv)
 WHERE e.object_name = 'public.typ_arr' AND e.command = 'UPDATE' AND t.id = 1 AND jk = k AND v <> jv
 ORDER BY k;

-- UPDATE detects changes per type: equal values record nothing, a changed
-- one is the only key of new_data.
SELECT count(*) AS before FROM table_events WHERE object_name = 'public.typ_all' \gset
UPDATE typ_all SET jb = jb, ia = ia, num = num, tstz = tstz, pair = pair, txt = txt WHERE id = 1;
UPDATE typ_all SET jb = '{"n": 1.0, "nested": {"deep": [1, {"k": [true, null]}]}}' WHERE id = 1;
SELECT count(*) - :before AS new_events FROM table_events WHERE object_name = 'public.typ_all';
UPDATE typ_all SET jb = jsonb_set(jb, '{nested,deep,0}', '2') WHERE id = 1;
UPDATE typ_all SET ia = ia || 4, i4 = 5 WHERE id = 1;
UPDATE typ_all SET b = NULL, txt = NULL WHERE id = 1;
UPDATE typ_all SET num = 1.5 WHERE id = 1;
SELECT new_data FROM table_events
 WHERE object_name = 'public.typ_all' AND command = 'UPDATE' ORDER BY event_id;
-- Every UPDATE's old_data || new_data is the row after (for the columns
-- changed above).
SELECT (e.old_data || e.new_data) -> 'ia' AS ia, (e.old_data || e.new_data) -> 'gen' AS gen
  FROM table_events e
 WHERE object_name = 'public.typ_all' AND command = 'UPDATE' ORDER BY event_id DESC LIMIT 1;

-- Large (TOASTed) values are recorded whole, in INSERT, UPDATE and DELETE.
CREATE TABLE typ_big (id int PRIMARY KEY, body text, doc jsonb, other int);
SELECT audit_log.enable('typ_big');
INSERT INTO typ_big SELECT 1, string_agg(md5(g::text), ''), jsonb_build_object('items', jsonb_agg(g)), 0
  FROM generate_series(1, 2000) g;
UPDATE typ_big SET other = 1;
UPDATE typ_big SET body = body || 'x';
DELETE FROM typ_big;
SELECT command, length(old_data ->> 'body') AS old_body, length(new_data ->> 'body') AS new_body,
       jsonb_array_length(old_data -> 'doc' -> 'items') AS old_items,
       jsonb_array_length(new_data -> 'doc' -> 'items') AS new_items,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(new_data) k) AS new_keys
  FROM table_events WHERE object_name = 'public.typ_big' AND category = 'data' ORDER BY event_id;

-- What capture knows of a table is kept from one statement to the next
-- (capture_table.c): a new attribute of a column's composite type, a new
-- column and a renamed schema are seen by the very next statement of the
-- same session.
CREATE SCHEMA typ_kept;
CREATE TYPE typ_kept.pt AS (x int);
CREATE TABLE typ_kept.t (id int PRIMARY KEY, p typ_kept.pt);
SELECT audit_log.enable('typ_kept.t');
INSERT INTO typ_kept.t VALUES (1, ROW(1));
ALTER TYPE typ_kept.pt ADD ATTRIBUTE y int;
INSERT INTO typ_kept.t VALUES (2, ROW(2, 3));
ALTER TABLE typ_kept.t ADD COLUMN note text;
INSERT INTO typ_kept.t VALUES (3, ROW(4, 5), 'n');
ALTER SCHEMA typ_kept RENAME TO typ_kept2;
INSERT INTO typ_kept2.t VALUES (4, NULL, NULL);
SELECT object_name, resource_id, new_data FROM table_events
 WHERE object_name IN ('typ_kept.t', 'typ_kept2.t') AND command = 'INSERT' ORDER BY event_id;

-- Ranges and multiranges are strings in range_out()'s form, their bounds
-- written like columns (timestamptz in UTC, dates in ISO, floats shortest),
-- money a number: the same row reads the same whatever the writer's
-- TimeZone, DateStyle, IntervalStyle and extra_float_digits.
CREATE TYPE typ_floatrange AS RANGE (subtype = float8);
CREATE TYPE typ_ivrange AS RANGE (subtype = interval);
CREATE TABLE typ_ranges (id int PRIMARY KEY, tz tstzrange, ts tsrange, d daterange, n numrange,
    f typ_floatrange, iv typ_ivrange, mtz tstzmultirange, md datemultirange, da daterange[],
    e int4range, m money);
SELECT audit_log.enable('typ_ranges');
INSERT INTO typ_ranges VALUES (1, '[2024-06-01 12:00:00+00,2024-06-02 00:00:00+00)',
    '(2024-06-01 12:00:00.5,infinity]', '[2024-02-29,2024-03-02)', '(1.50,)', '[0.1,0.30000000000000004]',
    '[1 day 02:00:00,2 years)', '{[2024-06-01 12:00:00+00,2024-06-01 13:00:00+00),[2024-06-02 00:00:00+00,)}',
    '{}', ARRAY['[2024-01-01,2024-01-05)'::daterange, 'empty'], 'empty', 1234.56);
SET timezone = 'America/New_York';
SET datestyle = 'SQL, DMY';
SET IntervalStyle = 'iso_8601';
SET extra_float_digits = -3;
INSERT INTO typ_ranges SELECT 2, tz, ts, d, n, f, iv, mtz, md, da, e, m FROM typ_ranges WHERE id = 1;
RESET timezone;
RESET datestyle;
RESET IntervalStyle;
RESET extra_float_digits;
SELECT count(DISTINCT new_data - 'id') AS images FROM table_events WHERE object_name = 'public.typ_ranges';
SELECT k, v FROM table_events, jsonb_each(new_data) AS e(k, v)
 WHERE object_name = 'public.typ_ranges' AND resource_id = '2' ORDER BY k;
-- the recorded text reads back as the same value
SELECT (new_data ->> 'tz')::tstzrange = r.tz AS tz, (new_data ->> 'ts')::tsrange = r.ts AS ts,
       (new_data ->> 'mtz')::tstzmultirange = r.mtz AS mtz, (new_data ->> 'f')::typ_floatrange = r.f AS f,
       (new_data ->> 'iv')::typ_ivrange = r.iv AS iv, (new_data ->> 'm')::numeric::money = r.m AS m
  FROM table_events, typ_ranges r
 WHERE object_name = 'public.typ_ranges' AND resource_id = '2' AND r.id = 2;
SELECT audit_log.disable('typ_ranges');
DROP TABLE typ_ranges;
DROP TYPE typ_floatrange, typ_ivrange;

-- A json value jsonb cannot hold (a \u0000 escape, a number beyond
-- numeric) is recorded as the JSON string of its text: any writer could
-- store one, and its row must stay writable.  Others are JSON as usual.
INSERT INTO typ_all (id, j) VALUES (20, '{"a": "x\u0000y", "b": 1}'), (21, '"\\u0000 \u0000"'),
    (22, '[1e100000, 2]'), (23, '{"ok": "\u00e9\ud83d\ude00 \\u0000", "n": -1.5e-30}');
UPDATE typ_all SET j = '{"b": 2}' WHERE id = 20;
UPDATE typ_all SET j = '[1e-100000]' WHERE id = 23;
DELETE FROM typ_all WHERE id IN (21, 22);
-- Lone surrogates: json takes them, jsonb does not.
INSERT INTO typ_all (id, j) VALUES (24, '{"a": "\udc00"}'), (25, '["\ud800x"]'), (26, '"\ud800\ud800"');
DELETE FROM typ_all WHERE id IN (24, 25, 26);
SELECT resource_id, command, old_data -> 'j' AS old_j, jsonb_typeof(old_data -> 'j') AS old_type,
       new_data -> 'j' AS new_j, jsonb_typeof(new_data -> 'j') AS new_type
  FROM table_events WHERE object_name = 'public.typ_all' AND resource_id IN ('20', '21', '22', '23', '24', '25', '26')
 ORDER BY event_id;

-- Row images (compress.c): an image that compresses is stored compressed,
-- a small one (under 1 kB) as well as a large one; images that do not
-- compress are stored as they are (and after a run of those the writer
-- stops trying small ones for a while, never large ones); every image
-- reads back whole.
CREATE TABLE typ_comp (id int PRIMARY KEY, note text);
SELECT audit_log.enable('typ_comp');
INSERT INTO typ_comp VALUES (1, repeat('abcd', 60));
INSERT INTO typ_comp
SELECT g, (SELECT string_agg(md5((g * 100 + k)::text), '' ORDER BY k) FROM generate_series(1, 8) k)
  FROM generate_series(2, 21) g;
-- compressible, but small and right after the run: stored as it is
INSERT INTO typ_comp VALUES (22, repeat('abcd', 60));
-- large: always tried
INSERT INTO typ_comp VALUES (23, repeat('audit ', 500));
SELECT e.resource_id::int AS id, length(e.new_data ->> 'note') AS note_length,
       (e.new_data ->> 'note') = c.note AS reads_back,
       pg_column_compression(e.new_data) IS NOT NULL AS compressed
  FROM audit_log.events e JOIN typ_comp c ON c.id = e.resource_id::int
 WHERE e.object_name = 'public.typ_comp' AND e.resource_id::int IN (1, 2, 3, 21, 22, 23)
 ORDER BY 1;
