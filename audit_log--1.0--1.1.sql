/*
 * audit_log upgrade script 1.0 -> 1.1.
 *
 * Every schema change of 1.1, in the order of src/sql, so that a database
 * updated with ALTER EXTENSION audit_log UPDATE has exactly the objects of a
 * fresh 1.1 install (test/t/upgrade_1_0.pl compares the two dumps).  Events,
 * seals, policies, holds and audited tables are kept: nothing here rewrites
 * or drops a table that holds them.
 */
\echo Use "ALTER EXTENSION audit_log UPDATE TO '1.1'" to load this file. \quit
