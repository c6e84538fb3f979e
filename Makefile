# audit_log: PGXS build for PostgreSQL 15 to 18 (make PG_CONFIG=/path/to/pg_config).
EXTENSION = audit_log
EXTVERSION = 1.1
MODULE_big = audit_log
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is assembled from src/sql/*.sql,
# one file per concern, in name order.  Released install scripts
# (audit_log--1.0.sql, as shipped) and the upgrade scripts live at the root.
DATA_built = audit_log--$(EXTVERSION).sql
DATA = audit_log--1.0.sql audit_log--1.0--1.1.sql
SQL_PARTS = $(sort $(wildcard src/sql/*.sql))
EXTRA_CLEAN = audit_log--$(EXTVERSION).sql results output_iso tmp_check tmp_check_iso log regression.diffs regression.out pg_regress_compare

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -I$(libpq_srcdir)
# libpq: sources.c asks it whether a source asked for a password.
SHLIB_LINK_INTERNAL = $(libpq)
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare $(AUDIT_CFLAGS)

# Regression suite (sql/, expected/), isolation specs (test/specs,
# test/expected) and TAP tests (test/t), each on its own temporary instance.
REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
# The same encoding and collation whatever the environment's locale.
ENCODING = UTF8
NO_LOCALE = 1
# RUNNING_SERVER=1: against the server at PGHOST/PGPORT instead (configured
# like test/audit_log.conf), as Debian's pg_buildext installcheck runs them.
# Every regression database gets the extension from pg_regress itself
# (test/include/setup_fresh.sql drops and re-creates it for the files that
# need a new one).
LOAD_EXTENSIONS = --load-extension=pgcrypto --load-extension=audit_log
ifdef RUNNING_SERVER
REGRESS_OPTS = $(LOAD_EXTENSIONS)
ISOLATION_OPTS = --inputdir=$(srcdir)/test
else
REGRESS_OPTS = $(LOAD_EXTENSIONS) --temp-instance=tmp_check --temp-config=$(srcdir)/test/audit_log.conf
ISOLATION_OPTS = --inputdir=$(srcdir)/test --temp-instance=tmp_check_iso --temp-config=$(srcdir)/test/audit_log.conf
endif
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The TAP files' shared module (test/t/AuditLogNode.pm).  After the include:
# PGXS sets PG_PROVE_FLAGS, and empties PROVE_FLAGS, which stays the
# caller's (PROVE_FLAGS=--verbose).
PG_PROVE_FLAGS += -I $(srcdir)/test/t

audit_log--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@

# PGXS tracks no header dependencies: rebuild when a header changes.
$(OBJS): $(wildcard src/*.h)

# One suite at a time (scripts/test.sh runs all three even when one fails).
check-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
check-isolation:
	$(if $(ISOLATION),$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION),@echo "no isolation specs")
check-tap:
	$(if $(PROVE_TESTS),$(prove_installcheck),@echo "no TAP tests")
.PHONY: check-regress check-isolation check-tap
