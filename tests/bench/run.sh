#!/bin/bash
# tests/bench/run.sh BUILD - benchmarks, each figure next to a reference
# measured in the same run on the same machine, and their ratio. Each
# script prints its details; every figure also goes to one table
# (tests/bench/benchtab.py) printed at the end with its target and whether
# it was met. A script that fails is named in the table as FAILED, the
# others still run, and the exit status is then 1.
#   api-list: GET /api/firmware?size=20 (a 20-item JSON page from SQLite) on
#             otagw vs nginx serving the same bytes as a static file.
# Needs wrk, nginx, socat, lrzsz (Debian: apt-get install wrk nginx-light socat lrzsz).
# Env: BENCH_SECONDS (wrk run length, default 10), BENCH_ONLY (a list of
# script names such as "tcp cache" to run only those, plus api-list).
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build}
DUR=${BENCH_SECONDS:-10}
PY=/usr/bin/python3
for tool in wrk nginx curl; do
	command -v $tool >/dev/null || { echo "bench needs $tool: apt-get install -y wrk nginx-light curl"; exit 1; }
done
tmp=$(mktemp -d)
export OTAGW_BENCH_TABLE=$tmp/table.jsonl
: > "$OTAGW_BENCH_TABLE"
cleanup() { [ -f "$tmp/otagw.pid" ] && kill "$(cat "$tmp/otagw.pid")" 2>/dev/null
	    [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

gp=$(free_port)
printf '[http]\nport = %s\n[gateway]\nlog_level = warn\n' "$gp" > "$tmp/otagw.conf"
"$B/otagw" -c "$tmp/otagw.conf" -d "$tmp/data" 2>"$tmp/otagw.log" & echo $! > "$tmp/otagw.pid"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$gp/api/health" >/dev/null && break; sleep 0.1; done
for i in $(seq 1 20); do
	curl -sf -XPOST "http://127.0.0.1:$gp/api/firmware" -o /dev/null -d "{\"productId\":\"p\",
	  \"name\":\"firmware $i\",\"version\":\"1.$i\",\"versionOrder\":$i,\"url\":\"http://x/$i.bin\",
	  \"size\":1048576,\"properties\":{\"hw\":\"A$i\"},\"description\":\"benchmark entry\"}"
done
mkdir -p "$tmp/www"
curl -sf "http://127.0.0.1:$gp/api/firmware?size=20" > "$tmp/www/list.json"

np=$(free_port)
cat > "$tmp/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx.err;
events { worker_connections 1024; }
http { access_log off; default_type application/json; sendfile on; keepalive_requests 100000;
  client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server { listen 127.0.0.1:$np; root $tmp/www; } }
NGX
nginx -c "$tmp/nginx.conf" -p "$tmp" & sleep 0.5

rate() { wrk -t1 -c16 -d"${DUR}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
ours=$(rate "http://127.0.0.1:$gp/api/firmware?size=20")
ref=$(rate "http://127.0.0.1:$np/list.json")
printf '%-44s %12s %14s %8s\n' benchmark otagw reference ratio
printf '%-44s %10.0f/s %12.0f/s %8.2f  (reference: nginx static file, same %s bytes)\n' \
	"api-list (GET /api/firmware, 20 items)" "$ours" "$ref" \
	"$(echo "$ours $ref" | awk '{print $1/$2}')" "$(stat -c %s "$tmp/www/list.json")"
$PY tests/bench/benchtab.py row "$OTAGW_BENCH_TABLE" "api: GET /api/firmware, 20 items" \
	"$ours" "req/s" "$ref" "nginx static file, same $(stat -c %s "$tmp/www/list.json") bytes"
kill "$(cat "$tmp/otagw.pid")" "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
rm -f "$tmp/otagw.pid" "$tmp/nginx.pid"

failed=0
bench() {	# bench NAME: runs tests/bench/NAME_bench.py BUILD, notes a failure
	case " ${BENCH_ONLY:-$1} " in *" $1 "*) ;; *) return 0 ;; esac
	echo; echo "== $1 =="
	if ! $PY "tests/bench/$1_bench.py" "$B"; then
		$PY tests/bench/benchtab.py failed "$OTAGW_BENCH_TABLE" "$1_bench.py" \
			"exited non-zero; see its output above"
		failed=1
	fi
}

# TCP devices: messages/s through the core at 1,000 devices, RSS at 1,000
# idle connections, in-band chunk throughput vs socat of the same file.
bench tcp

# Image cache: download from nginx vs curl -o; hashing cost per MiB.
bench cache
# HTTP devices: image serving vs nginx (sendfile on/off), report/pull requests/s.
bench http
# Serial devices: 1 MiB to lrzsz's rz, otagw vs sb --ymodem -k; effective
# throughput at 115200 baud through a pacing relay.
bench serial
# Offline bundles: import of a 512 MiB tar.gz vs tar -xzf of it, RSS and API latency meanwhile.
bench bundle
# Cloud link: progress aggregation vs one frame per update, state-change delay, outbox insert rate (10,000 TCP devices).
bench cloud
# Footprint: stripped size, idle memory and console size next to nginx.
bench footprint

$PY tests/bench/benchtab.py print "$OTAGW_BENCH_TABLE"
exit $failed
