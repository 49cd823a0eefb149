# SPDX-License-Identifier: MIT
# otagw - edge-gateway OTA proxy. GNU make.
#   make [all]     build build/otagw
#   make test      unit tests (plain and ASan+UBSan), integration tests; one closing line
#   make run       install missing Debian packages (as root), build, run on ./var, 127.0.0.1:8080
#   make bench     benchmarks against references measured in the same run
#   make install   DESTDIR=... PREFIX=/usr
# Packagers' CC, CFLAGS, LDFLAGS and PKG_CONFIG are honoured; ours are added.

VERSION    := 0.1.0
CC         ?= cc
CFLAGS     ?= -O2 -g
PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr
SYSCONFDIR ?= /etc
DESTDIR    ?=
B          ?= build

PKGS     := libwebsockets sqlite3 libcjson libarchive zlib
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
# Debian 12 ships no .pc file for mbedTLS.
LIBS     := $(PKG_LIBS) -lmbedcrypto

WARN     := -Wall -Wextra -Wformat=2 -Wmissing-declarations -Wshadow -Wno-unused-parameter
override CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-DOTAGW_VERSION='"$(VERSION)"' -DOTAGW_WWW_DIR='"$(PREFIX)/share/otagw/www"' -Igateway -Isouthbound -Inorthbound -Icache $(PKG_CFLAGS)
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ifeq ($(SAN),1)
override CFLAGS += $(SANFLAGS)
override LDFLAGS += $(SANFLAGS)
endif

LIB_SRC  := $(filter-out gateway/main.c,$(wildcard gateway/*.c cache/*.c southbound/*.c northbound/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
MAIN_OBJ := $(B)/obj/gateway/main.o
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)

.PHONY: all test unit run bench install uninstall clean lint FORCE
all: $(B)/otagw

# Rebuild everything when the flags change (e.g. WERROR=1 or SAN=1).
$(B)/flags: FORCE
	@mkdir -p $(B)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@

$(B)/obj/%.o: %.c $(B)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/libotagw.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(B)/otagw: $(MAIN_OBJ) $(B)/libotagw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: tests/%.c tests/test_sb.h $(B)/libotagw.a $(B)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $< \
		$(B)/libotagw.a $(LIBS) $(shell $(PKG_CONFIG) --libs cmocka)

unit: $(B)/otagw $(TEST_BIN)

# Three builds: plain (build/), sanitized (build/san/), then the runner.
test:
	$(MAKE) WERROR=1 unit
	$(MAKE) WERROR=1 SAN=1 B=$(B)/san unit
	tests/run.sh $(B) $(B)/san

run:
	@.ci/deps.sh
	$(MAKE) all
	@mkdir -p var
	$(B)/otagw -d ./var $(RUN_ARGS)

bench: all
	tests/bench/run.sh $(B)

# The web console's files (paths relative to rootfs/share/otagw/www).
WWW_DIR   := rootfs/share/otagw/www
WWW_FILES := $(patsubst $(WWW_DIR)/%,%,$(shell find $(WWW_DIR) -type f 2>/dev/null))

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSCONFDIR)/otagw
	install -m 0755 -s --strip-program=$(or $(STRIP),strip) $(B)/otagw $(DESTDIR)$(PREFIX)/sbin/otagw
	install -m 0644 rootfs/etc/otagw/otagw.conf $(DESTDIR)$(SYSCONFDIR)/otagw/otagw.conf
	for f in $(WWW_FILES); do \
		install -D -m 0644 $(WWW_DIR)/$$f $(DESTDIR)$(PREFIX)/share/otagw/www/$$f || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/otagw $(DESTDIR)$(SYSCONFDIR)/otagw/otagw.conf
	rm -rf $(DESTDIR)$(PREFIX)/share/otagw/www
	-rmdir $(DESTDIR)$(SYSCONFDIR)/otagw $(DESTDIR)$(PREFIX)/share/otagw

SRC_ALL := $(wildcard gateway/*.[ch] cache/*.[ch] southbound/*.[ch] northbound/*.[ch])
lint:
	@if grep -nE '\b(atoi|sprintf|strcpy|strcat|strtok|gets|system)[[:space:]]*\(' $(SRC_ALL); \
		then echo "lint: banned function used"; exit 1; fi

clean:
	rm -rf $(B)

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
