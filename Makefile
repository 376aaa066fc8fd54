# p2pcat: netcat for hosts behind NAT.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/p2pcat
PKG_CONFIG ?= pkg-config
PKGS = libcurl libcjson libsodium libcrypto libprotobuf-c zlib
PROTOC_C ?= protoc-c

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -MMD -MP
# ASan and UBSan; an error ends the program (tests/run.sh fails the test).
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

# Build targets need the libraries; the others (clean, deps, ...) must not.
NODEPS_GOALS = clean distclean deps uninstall demo check bench
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell $(PKG_CONFIG) --exists $(PKGS) && echo ok),ok)
$(error missing build libraries; run `sh tests/deps.sh build' (as root it installs them))
endif
endif
CFLAGS += $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDLIBS += $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lm

SRCS := $(sort $(wildcard *.c))
# Code for the protobuf messages of Firestore's Listen (fslisten.c), made
# with protoc-c from the trimmed copies of Google's protos under proto/.
PROTOS := google/protobuf/timestamp google/protobuf/wrappers google/rpc/status \
	google/firestore/v1/listen
PB_C := $(PROTOS:%=pb/%.pb-c.c)
PB_H := $(PB_C:.c=.h)
PB_O := $(PB_C:.c=.o)
OBJS := $(SRCS:.c=.o) $(PB_O)
CFLAGS += -iquote pb
LIBOBJS := $(filter-out p2pcat.o,$(OBJS))
UNITS := $(patsubst %.c,%,$(sort $(wildcard tests/unit_*.c)))
TOOLS := $(patsubst %.c,%,$(sort $(wildcard tests/tool_*.c)))

all: p2pcat

pb/%.pb-c.c pb/%.pb-c.h: proto/%.proto
	@mkdir -p pb
	$(PROTOC_C) --proto_path=proto --c_out=pb $<

# protoc-c initialises a message's unions with one brace level too few.
$(PB_O): CFLAGS += -Wno-missing-braces
# Whatever includes the generated headers waits for them.
fslisten.o firestore.o: $(PB_H)

p2pcat: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

# tests/unit_X links X.o and util.o; a test needing more names it below.
# tests/unit_netem tests a test helper, tests/netem.c.
$(filter-out tests/unit_netem,$(UNITS)): tests/unit_%: tests/unit_%.c %.o util.o
	$(CC) $(CFLAGS) -iquote . $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(LDLIBS)
tests/unit_netem: tests/unit_netem.c tests/netem.o
	$(CC) $(CFLAGS) -iquote . $(LDFLAGS) -o $@ $< tests/netem.o -lm

# tests/tool_X are test helpers (servers, forwarders); they name their objects below.
$(TOOLS): tests/tool_%: tests/tool_%.c
	$(CC) $(CFLAGS) -iquote . $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(LDLIBS)

# Extra objects of unit tests and tools, one line each.
tests/tool_stunc: stun.o crypto.o util.o
FSOBJS = fslisten.o grpc.o $(PB_O)
tests/unit_firestore: signal.o $(FSOBJS)
tests/unit_stream: cc.o
tests/unit_session: punch.o turnchan.o crypto.o stream.o cc.o stun.o signal.o firestore.o $(FSOBJS)
tests/unit_stun: crypto.o
tests/unit_turnchan: punch.o stun.o crypto.o
# unit_punch's own poll(2) moves its clock (see its top comment).
tests/unit_punch: stun.o crypto.o turnchan.o
tests/unit_punch: LDFLAGS += -Wl,--wrap=poll
tests/unit_trust: crypto.o signal.o firestore.o $(FSOBJS)
tests/unit_signal: firestore.o $(FSOBJS)
# tests/tun.c: the TUN device, signals and random stream of the TUN tools;
# tests/netem.c: netem's model.
tests/tool_netem tests/tool_mitm: tests/tun.o
tests/tool_netem: tests/netem.o

tests: $(UNITS) $(TOOLS)

# libFuzzer targets (clang): tests/fuzz_NAME.c, seed corpus tests/fuzz/NAME/.
# `make fuzz' builds them all and runs each for FUZZ_SECONDS (tests/fuzz.sh);
# a crash fails it.  A target is built, instrumented, from its own file,
# util.c and the sources named below it.
FUZZ := $(patsubst %.c,%,$(sort $(wildcard tests/fuzz_*.c)))
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-missing-braces \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -iquote . -iquote pb \
    $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
$(FUZZ): tests/fuzz_%: tests/fuzz_%.c util.c $(wildcard *.h) | $(PB_H)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(LDLIBS)

# Extra sources of fuzz targets, one line each.  FUZZLIB: the whole
# library, every source but main's and the generated protobuf code.
FUZZLIB = $(filter-out p2pcat.c,$(SRCS)) $(PB_C)
tests/fuzz_stun: stun.c crypto.c
# signal.c names every backend: these link all of the library.
tests/fuzz_dirfile: $(FUZZLIB)
tests/fuzz_trust: $(FUZZLIB)
# The settings (opts.c, config.c), and all that their checks call.
tests/fuzz_config: $(FUZZLIB)
tests/fuzz_options: $(FUZZLIB)
tests/fuzz_grpc: grpc.c
tests/fuzz_listen: fslisten.c grpc.c $(PB_C)
tests/fuzz_frames: crypto.c stream.c cc.c
tests/fuzz_packets: $(FUZZLIB) tests/fuzzdet.c
tests/fuzz_handshake: $(FUZZLIB) tests/fuzzdet.c
# fuzz_turn serves punch_gather's polls itself (see its top comment).
tests/fuzz_turn: $(FUZZLIB) tests/fuzzdet.c
tests/fuzz_turn: FUZZ_CFLAGS += -Wl,--wrap=poll
tests/fuzz_firestore: $(FUZZLIB)

fuzz-build: $(FUZZ)

fuzz: fuzz-build
	@sh tests/fuzz.sh $(FUZZ_SECONDS) $(FUZZ)

# The two commands of the README's quick start.
demo:
	@sh tests/deps.sh build
	@$(MAKE) --no-print-directory all
	@sh tests/demo.sh

check:
	@sh tests/deps.sh test
	@$(MAKE) --no-print-directory all tests
	@sh tests/run.sh

# A bench that exits 77 (a tool missing) is skipped, with its reason, and
# the others still run; any other failure stops make bench.
BENCHES = $(sort $(wildcard tests/bench*.sh))
bench:
	@sh tests/deps.sh test
	@$(MAKE) --no-print-directory all tests
	@for b in $(BENCHES); do \
		sh $$b; rc=$$?; \
		if [ $$rc -eq 77 ]; then echo "SKIP $$b"; \
		elif [ $$rc -ne 0 ]; then echo "FAIL $$b (exit $$rc)"; exit 1; fi; \
	done

deps:
	@sh tests/deps.sh test

install: p2pcat
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 p2pcat $(DESTDIR)$(BINDIR)/p2pcat
	install -m 644 man/p2pcat.1 $(DESTDIR)$(MANDIR)/man1/p2pcat.1
	install -d $(DESTDIR)$(DOCDIR)
	install -m 644 p2pcat.conf.example firestore.rules $(DESTDIR)$(DOCDIR)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/p2pcat $(DESTDIR)$(MANDIR)/man1/p2pcat.1
	rm -f $(DESTDIR)$(DOCDIR)/p2pcat.conf.example $(DESTDIR)$(DOCDIR)/firestore.rules

clean:
	rm -f p2pcat *.o *.d tests/*.o tests/*.d $(UNITS) $(TOOLS) $(FUZZ)
	rm -rf pb

.PHONY: all tests fuzz fuzz-build demo check bench deps install uninstall clean

-include $(SRCS:.c=.d) $(PB_O:.o=.d) $(UNITS:=.d) $(TOOLS:=.d) tests/tun.d tests/netem.d
