-- W1: one single-column UPDATE of a random row per transaction.
\set id random(1, :rows)
UPDATE :tbl SET qty = qty + 1 WHERE id = :id;
