# shellcheck shell=dash
# SPDX-License-Identifier: MIT
# uci_stub.sh - just enough of OpenWrt's /lib/functions.sh, /lib/functions/procd.sh and
# rc.common to run rootfs/openwrt/otagw/files/{otagw-uci2ini.sh,otagw.init} on a Debian
# machine (dash), written from their documented behaviour:
#   config_load PKG      reads the UCI file $UCI_DIR/PKG (the syntax `uci export` prints:
#                        config TYPE ['NAME'] / option NAME 'VALUE' / list NAME 'VALUE'),
#                        calling config_cb/option_cb/list_cb, and config_cb once more with no
#                        arguments at the end; anonymous sections are named cfgNNNNNN
#   config_get VAR SECTION OPTION [DEFAULT]   (DEFAULT also when the option is '')
#   config_get SECTION OPTION                 (prints it)
#   get_bool, config_get_bool, config_foreach, config_set, reset_cb, user_exists ($STUB_PASSWD)
#   procd_*              append one line per call to $PROCD_LOG: the function's name, then
#                        its arguments separated by '|'
# Never used on a gateway.

reset_cb() {
	config_cb() { return 0; }
	option_cb() { return 0; }
	list_cb() { return 0; }
}
reset_cb

config_set() {
	# Option names are [A-Za-z0-9_] in UCI; the value goes through a variable, never eval'd.
	_stub_val=$3
	eval "CONFIG_${1}_${2}=\$_stub_val"
}

package() { return 0; }

config() {
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	CONFIG_SECTION=${2:-$(printf 'cfg%06d' "$CONFIG_NUM_SECTIONS")}
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	config_set "$CONFIG_SECTION" TYPE "$1"
	config_cb "$1" "$CONFIG_SECTION"
}

option() {
	local name="$1"
	shift
	config_set "$CONFIG_SECTION" "$name" "$*"
	option_cb "$name" "$*"
}

list() {
	local name="$1" len
	shift
	eval "len=\${CONFIG_${CONFIG_SECTION}_${name}_LENGTH:-0}"
	len=$((len + 1))
	config_set "$CONFIG_SECTION" "${name}_ITEM$len" "$*"
	config_set "$CONFIG_SECTION" "${name}_LENGTH" "$len"
	list_cb "$name" "$*"
}

config_load() {
	local f="$UCI_DIR/$1" s
	for s in $CONFIG_SECTIONS; do
		unset "CONFIG_${s}_TYPE"
	done
	CONFIG_SECTIONS=
	CONFIG_NUM_SECTIONS=0
	CONFIG_SECTION=
	[ -r "$f" ] || return 1
	# shellcheck disable=SC1090 # the UCI file under test
	. "$f"
	[ -n "$CONFIG_SECTION" ] && config_cb
	return 0
}

config_get() {
	case "$3" in
	"") eval "printf '%s\\n' \"\${CONFIG_${1}_${2}:-}\"" ;;
	*) eval "$1=\${CONFIG_${2}_${3}:-\$4}" ;;
	esac
}

get_bool() {
	case "$1" in
	1 | on | true | yes | enabled) printf 1 ;;
	0 | off | false | no | disabled) printf 0 ;;
	*) printf '%s' "$2" ;;
	esac
}

config_get_bool() {
	local _v
	config_get _v "$2" "$3" "$4"
	_v=$(get_bool "$_v" "$4")
	eval "$1=\$_v"
}

config_foreach() {
	local fn="$1" type="$2" s t
	shift 2
	for s in $CONFIG_SECTIONS; do
		eval "t=\${CONFIG_${s}_TYPE:-}"
		[ -n "$type" ] && [ "$t" != "$type" ] && continue
		"$fn" "$s" "$@"
	done
}

user_exists() {
	grep -qs "^$1:" "${STUB_PASSWD:-/etc/passwd}"
}

stub_procd() {
	local IFS='|'
	printf '%s\n' "$*" >>"$PROCD_LOG"
}
procd_open_instance() { stub_procd procd_open_instance "$@"; }
procd_close_instance() { stub_procd procd_close_instance "$@"; }
procd_set_param() { stub_procd procd_set_param "$@"; }
procd_append_param() { stub_procd procd_append_param "$@"; }
procd_add_jail() { stub_procd procd_add_jail "$@"; }
procd_add_jail_mount() { stub_procd procd_add_jail_mount "$@"; }
procd_add_jail_mount_rw() { stub_procd procd_add_jail_mount_rw "$@"; }
procd_add_reload_trigger() { stub_procd procd_add_reload_trigger "$@"; }
procd_open_trigger() { stub_procd procd_open_trigger "$@"; }
procd_close_trigger() { stub_procd procd_close_trigger "$@"; }
