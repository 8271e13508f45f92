# Shortcuts for the checks; tests/run.sh stays the one full test command.
#
#   make help   this list
#   make unit   fast, needs no root: fmt, clippy, docs, and every test that
#               runs without root (policy, policy-core, the unit tests of
#               agent-init and vault-preload)
#   make test   the whole suite (tests/run.sh: needs root, builds the release
#               preload, runs the container tests)
#   make deny   licenses, banned crates and sources of the dependency tree

CARGO ?= cargo
# cargo nextest when installed, else cargo test.
TEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: help unit test deny fmt lint doc

help:
	@sed -n '3,10p' Makefile | sed 's/^# \{0,1\}//'

unit: fmt lint doc
	$(CARGO) $(TEST) --locked -p agent-vault-policy -p agent-vault-policy-core
	$(CARGO) $(TEST) --locked -p agent-init --bins
	$(CARGO) $(TEST) --locked -p vault-preload --lib

test:
	tests/run.sh

deny:
	$(CARGO) deny check bans licenses sources

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace --locked
