# shellcheck shell=dash
# SPDX-License-Identifier: MIT
# otagw-uci2ini.sh - /etc/config/otagw (UCI) as the daemon's INI file. Sourced by
# /etc/init.d/otagw after /lib/functions.sh; POSIX sh plus `local` (OpenWrt's ash). Uses
# config_load, config_get, config_get_bool, config_foreach and the config_cb/option_cb/list_cb
# hooks of /lib/functions.sh, nothing else of it. Must not start anything or touch any file
# but the INI it is asked to write.
#
# Each UCI section becomes the INI section of its type ([gateway], [http], [tcp], [cache],
# [cloud]; `config serial NAME` becomes [serial NAME]); each option the key of the same name,
# written quoted (the daemon strips one pair of double quotes, so '#', spaces and quotes in a
# value survive). An option left out or set to '' is left out: the daemon's default applies.

# The daemon's keys per section, in `otagw --print-config` order (tests/pkg keeps them equal);
# read by section type through eval, hence the SC2034 directives.
# shellcheck disable=SC2034
OTAGW_KEYS_gateway='log_level syslog data_dir timeout_check bundle_key require_signed_bundles
	import_dir import_interval'
# shellcheck disable=SC2034
OTAGW_KEYS_http='bind port api_token device_auth max_poll_wait public_url www_dir live_interval'
# shellcheck disable=SC2034
OTAGW_KEYS_tcp='bind port codec auth idle_timeout max_connections max_frame max_chunk
	default_product image_url'
# shellcheck disable=SC2034
OTAGW_KEYS_cache='max_bytes min_free_bytes max_downloads timeout max_retry_delay ca_file
	signing_key'
# shellcheck disable=SC2034
OTAGW_KEYS_cloud='url gateway_id token ca_file progress_interval status_interval ping_interval'
# shellcheck disable=SC2034
OTAGW_KEYS_serial='path baud data_bits parity stop_bits flow rs485 product max_line
	ymodem_timeout ymodem_retries ymodem_start_timeout ymodem_blocks reopen_max_delay'
# Options the init script reads itself; never written to the INI.
# shellcheck disable=SC2034
OTAGW_OWN_gateway='enabled user jail' OTAGW_OWN_serial='enabled' OTAGW_OWN_http='' \
	OTAGW_OWN_tcp='' OTAGW_OWN_cache='' OTAGW_OWN_cloud=''
# The single sections, in INI order.
OTAGW_SECTIONS='gateway http tcp cache cloud'

OTAGW_NL='
'

# Appends one error line (the UCI name of what is wrong, then why).
otagw_uci_error() {
	otagw_uci_errors="${otagw_uci_errors}otagw: /etc/config/otagw: $*$OTAGW_NL"
}

# True when word $1 is in the whitespace-separated list $2.
otagw_in_list() {
	local w
	for w in $2; do
		[ "$w" = "$1" ] && return 0
	done
	return 1
}

# config_load hooks: check every section type and option name as it is read.
otagw_uci_config_cb() {
	otagw_uci_type=$1
	otagw_uci_sec=$2
	[ -n "$1" ] || return 0
	case "$1" in
	gateway | http | tcp | cache | cloud)
		if otagw_in_list "$1" "$otagw_uci_seen"; then
			otagw_uci_error "more than one '$1' section (otagw.$2)"
		fi
		otagw_uci_seen="$otagw_uci_seen $1"
		eval "otagw_sec_$1=\$2"
		;;
	serial) ;;
	*) otagw_uci_error "unknown section type '$1' (otagw.$2)" ;;
	esac
}

otagw_uci_option_cb() {
	local keys own
	case "$otagw_uci_type" in
	gateway | http | tcp | cache | cloud | serial) ;;
	*) return 0 ;;
	esac
	eval "keys=\$OTAGW_KEYS_$otagw_uci_type own=\$OTAGW_OWN_$otagw_uci_type"
	otagw_in_list "$1" "$keys $own" ||
		otagw_uci_error "unknown option otagw.$otagw_uci_sec.$1 in a '$otagw_uci_type' section"
	case "$2" in *"$OTAGW_NL"*)
		otagw_uci_error "otagw.$otagw_uci_sec.$1: a value cannot span lines" ;;
	esac
}

otagw_uci_list_cb() {
	otagw_uci_error "otagw.$otagw_uci_sec.$1 is a list; the daemon takes single values"
}

# Loads /etc/config/otagw, checking it. 0, or 1 with the errors on stderr.
otagw_uci_load() {
	otagw_uci_errors=
	otagw_uci_seen=
	otagw_uci_type=
	otagw_sec_gateway=gateway otagw_sec_http=http otagw_sec_tcp=tcp otagw_sec_cache=cache
	otagw_sec_cloud=cloud
	# shellcheck disable=SC2317 # the hooks are called by config_load
	config_cb() { otagw_uci_config_cb "$@"; }
	# shellcheck disable=SC2317
	option_cb() { otagw_uci_option_cb "$@"; }
	# shellcheck disable=SC2317
	list_cb() { otagw_uci_list_cb "$@"; }
	config_load otagw
	reset_cb
	[ -z "$otagw_uci_errors" ] && return 0
	printf '%s' "$otagw_uci_errors" >&2
	return 1
}

# otagw_get VAR TYPE OPTION [DEFAULT]: config_get from the one section of TYPE (gateway, http,
# tcp, cache or cloud), named or anonymous. After otagw_uci_load.
otagw_get() {
	local sec
	eval "sec=\$otagw_sec_$2"
	config_get "$1" "$sec" "$3" "$4"
}

# One config_foreach callback: the section $1, whose type is $2 (the INI header).
otagw_ini_section() {
	local sec="$1" type="$2" keys key val enabled
	if [ "$type" = serial ]; then
		config_get_bool enabled "$sec" enabled 1
		[ "$enabled" = 1 ] || return 0
		printf '\n[serial %s]\n' "$sec"
	else
		printf '\n[%s]\n' "$type"
	fi
	eval "keys=\$OTAGW_KEYS_$type"
	for key in $keys; do
		config_get val "$sec" "$key"
		[ -n "$val" ] && printf '%s = "%s"\n' "$key" "$val"
	done
	return 0
}

# Writes the INI for the loaded config to $1 (through $1.tmp and a rename, mode 0640).
otagw_ini_write() {
	local out="$1" type
	(
		umask 027
		{
			echo "# Generated from /etc/config/otagw by /etc/init.d/otagw: edit that file."
			for type in $OTAGW_SECTIONS; do
				config_foreach otagw_ini_section "$type" "$type"
			done
			config_foreach otagw_ini_section serial serial
		} >"$out.tmp"
	) && mv -f "$out.tmp" "$out"
}

# The whole mapping: load and check /etc/config/otagw, write the INI to $1.
otagw_uci2ini() {
	otagw_uci_load || return 1
	mkdir -p "$(dirname "$1")" && otagw_ini_write "$1"
}
