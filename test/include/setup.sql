-- setup: how every regression file starts.  Times in UTC.  The extension
-- is there already: pg_regress creates it with the database
-- (--load-extension, Makefile), and a file keeps what earlier files left.
SET timezone = 'UTC';
