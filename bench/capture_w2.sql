-- W2: INSERT a row, UPDATE a random row, DELETE the inserted row, in one
-- transaction (the table keeps its size).
\set id random(1, :rows)
BEGIN;
INSERT INTO :tbl (id, name, email, amount, created_at, attrs, active, qty)
VALUES (nextval('bench_ids'), 'new customer', 'new@example.com', 12.34, now(), '{"tier": 1, "tags": ["n"]}', true, 1)
RETURNING id AS nid \gset
UPDATE :tbl SET qty = qty + 1 WHERE id = :id;
DELETE FROM :tbl WHERE id = :nid;
END;
