# SPDX-License-Identifier: MIT
# Yocto/OpenEmbedded recipe of otagw, the edge-gateway OTA proxy. Needs meta-oe (libwebsockets,
# cjson) and meta-networking (mbedtls) beside poky. The source is `make dist`'s tarball,
# copied into files/ beside this recipe (no download site yet):
#   make -C /path/to/otagw dist && cp /path/to/otagw/build/otagw-0.1.0.tar.gz files/
# To build a checkout instead: devtool modify otagw, or in local.conf
#   INHERIT += "externalsrc"
#   EXTERNALSRC:pn-otagw = "/path/to/otagw"
SUMMARY = "Edge-gateway OTA proxy for LAN devices"
DESCRIPTION = "otagw manages firmware upgrades of the devices on a gateway's LAN in the \
style of the JetLinks firmware module: firmware catalogue, push and pull tasks, per-device \
records, a verified image cache, TCP, serial (YMODEM) and HTTP devices, an optional cloud \
link, offline bundles, a REST API and a web console."
SECTION = "net"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=0ad9e1b85f79f517f88aa668080fcb97"

SRC_URI = "file://otagw-${PV}.tar.gz"

DEPENDS = "libwebsockets sqlite3 cjson libarchive mbedtls zlib"

inherit pkgconfig systemd useradd

# The environment carries CC, CFLAGS, LDFLAGS and pkg-config's sysroot; the Makefile honours
# them. OE strips and splits debug info itself (INSTALL_STRIP=0).
EXTRA_OEMAKE = "PREFIX=${prefix} SBINDIR=${sbindir} SYSCONFDIR=${sysconfdir} \
    SYSTEMDUNITDIR=${systemd_system_unitdir} SYSUSERSDIR=${nonarch_libdir}/sysusers.d \
    INSTALL_STRIP=0 \
    WITH_SYSTEMD=${@bb.utils.contains('DISTRO_FEATURES', 'systemd', '1', '0', d)}"

do_compile() {
    oe_runmake
}

do_install() {
    oe_runmake install DESTDIR=${D} PREFIX=${prefix}
}

# The unit runs the daemon as otagw (group dialout for the serial ports) with its state in
# /var/lib/otagw (StateDirectory=); useradd creates the user in the image.
USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/otagw --no-create-home \
    --shell ${base_sbindir}/nologin --user-group otagw"

SYSTEMD_SERVICE:${PN} = "otagw.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

CONFFILES:${PN} = "${sysconfdir}/otagw/otagw.conf"
FILES:${PN} += "${datadir}/otagw ${nonarch_libdir}/sysusers.d/otagw.conf"
