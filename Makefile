# SPDX-License-Identifier: MIT
# otagw - edge-gateway OTA proxy. GNU make.
#   make [all]     build build/otagw
#   make test      unit tests (plain and ASan+UBSan), integration tests; one closing line
#   make run       install missing Debian packages (as root), build, run on ./var, 127.0.0.1:8080
#   make bench     benchmarks against references measured in the same run
#   make install   DESTDIR=... PREFIX=/usr (daemon, config, console, systemd unit); uninstall
#   make dist      build/otagw-VERSION.tar.gz, a source tarball that builds on its own
#   make CROSS_COMPILE=aarch64-linux-gnu-   cross build (into build/aarch64-linux-gnu/)
#   make cross-test ARCH=arm64|armhf        cross build + unit and smoke tests under qemu-user
# Packagers' CC, CFLAGS, LDFLAGS and PKG_CONFIG are honoured; ours are added.

VERSION    := 0.1.0

# Cross builds. CROSS_COMPILE is the toolchain prefix; CC, AR and STRIP follow it unless given.
# PKG_CONFIG, unless given, is the toolchain's own TRIPLET-pkg-config (Yocto, Buildroot and
# OpenWrt put one in PATH) or else pkg-config reading Debian's multiarch .pc files for TRIPLET.
ifneq ($(CROSS_COMPILE),)
TRIPLET    := $(notdir $(CROSS_COMPILE:%-=%))
ifeq ($(origin CC),default)
CC         := $(CROSS_COMPILE)gcc
endif
ifeq ($(origin AR),default)
AR         := $(CROSS_COMPILE)ar
endif
STRIP      ?= $(CROSS_COMPILE)strip
ifeq ($(origin PKG_CONFIG),undefined)
PKG_CONFIG := $(or $(shell command -v $(CROSS_COMPILE)pkg-config 2>/dev/null),\
	PKG_CONFIG_LIBDIR=/usr/lib/$(TRIPLET)/pkgconfig:/usr/share/pkgconfig pkg-config)
endif
B          ?= build/$(TRIPLET)
endif

CC         ?= cc
CFLAGS     ?= -O2 -g
PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr
SYSCONFDIR ?= /etc
SBINDIR    ?= $(PREFIX)/sbin
# systemd's unit and sysusers.d directories; WITH_SYSTEMD=0 installs neither.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
WITH_SYSTEMD   ?= 1
# INSTALL_STRIP=0 for build systems that strip (and split debug info) themselves (Yocto).
INSTALL_STRIP  ?= 1
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

.PHONY: all test unit run bench install uninstall dist cross-test clean lint FORCE
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

CONF := $(SYSCONFDIR)/otagw/otagw.conf
# The unit names the daemon and its config by path: rewritten for SBINDIR and SYSCONFDIR.
UNIT_SED := -e 's|/usr/sbin/otagw|$(SBINDIR)/otagw|g' -e 's|/etc/otagw/|$(SYSCONFDIR)/otagw/|g'

# Creates nothing outside DESTDIR. A config that differs from the default (a site's edits) is
# kept; otagw --print-config shows the new defaults.
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/otagw
	install -m 0755 $(if $(filter 1,$(INSTALL_STRIP)),-s --strip-program=$(or $(STRIP),strip)) \
		$(B)/otagw $(DESTDIR)$(SBINDIR)/otagw
	@if [ -e $(DESTDIR)$(CONF) ] && ! cmp -s rootfs/etc/otagw/otagw.conf $(DESTDIR)$(CONF); then \
		echo "install: kept the edited $(DESTDIR)$(CONF)"; \
	else \
		echo "install -m 0644 rootfs/etc/otagw/otagw.conf $(DESTDIR)$(CONF)"; \
		install -m 0644 rootfs/etc/otagw/otagw.conf $(DESTDIR)$(CONF); \
	fi
	for f in $(WWW_FILES); do \
		install -D -m 0644 $(WWW_DIR)/$$f $(DESTDIR)$(PREFIX)/share/otagw/www/$$f || exit 1; \
	done
ifeq ($(WITH_SYSTEMD),1)
	sed $(UNIT_SED) rootfs/systemd/otagw.service > $(B)/otagw.service
	install -D -m 0644 $(B)/otagw.service $(DESTDIR)$(SYSTEMDUNITDIR)/otagw.service
	install -D -m 0644 rootfs/systemd/otagw.sysusers $(DESTDIR)$(SYSUSERSDIR)/otagw.conf
endif

# Leaves a config with a site's edits in place (as dpkg keeps conffiles).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/otagw $(DESTDIR)$(SYSTEMDUNITDIR)/otagw.service \
		$(DESTDIR)$(SYSUSERSDIR)/otagw.conf
	@if cmp -s rootfs/etc/otagw/otagw.conf $(DESTDIR)$(CONF); then \
		echo "rm -f $(DESTDIR)$(CONF)"; rm -f $(DESTDIR)$(CONF); \
	elif [ -e $(DESTDIR)$(CONF) ]; then \
		echo "uninstall: kept the edited $(DESTDIR)$(CONF)"; \
	fi
	rm -rf $(DESTDIR)$(PREFIX)/share/otagw/www
	@rmdir $(DESTDIR)$(SYSCONFDIR)/otagw $(DESTDIR)$(PREFIX)/share/otagw 2>/dev/null || true

# A reproducible source tarball (sorted, owner 0, mtime of the last commit) of what a build,
# `make test` and the packaging need; no build output, no node_modules.
DIST      := otagw-$(VERSION)
DIST_SRC  := Makefile LICENSE README.md .ci gateway cache southbound northbound rootfs tests \
	$(wildcard docs)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || stat -c %Y Makefile)
dist:
	rm -rf $(B)/dist $(B)/$(DIST).tar.gz
	mkdir -p $(B)/dist/$(DIST)
	tar -cf - --exclude=node_modules --exclude=__pycache__ --exclude='*.pyc' \
		--exclude=.pytest_cache $(DIST_SRC) | tar -xf - -C $(B)/dist/$(DIST)
	tar -C $(B)/dist --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 \
		--numeric-owner -cf - $(DIST) | gzip -9n > $(B)/$(DIST).tar.gz
	rm -rf $(B)/dist
	@echo "dist: $(B)/$(DIST).tar.gz"

# Installs the cross toolchain, the target's libraries and qemu-user (apt, as root), builds
# into build/ARCH/, runs the unit tests and a smoke test under emulation (tests/cross/run.sh).
cross-test:
	@case "$(ARCH)" in arm64|armhf) ;; \
	*) echo "usage: make cross-test ARCH=arm64 (or ARCH=armhf)"; exit 2 ;; esac
	tests/cross/run.sh $(ARCH)

SRC_ALL := $(wildcard gateway/*.[ch] cache/*.[ch] southbound/*.[ch] northbound/*.[ch])
lint:
	@if grep -nE '\b(atoi|sprintf|strcpy|strcat|strtok|gets|system)[[:space:]]*\(' $(SRC_ALL); \
		then echo "lint: banned function used"; exit 1; fi

clean:
	rm -rf $(B)

# make analyze (cppcheck, clang-tidy), make valgrind; make fuzz, make fuzz-ci
-include tests/lint/analyze.mk
-include tests/fuzz/fuzz.mk

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
