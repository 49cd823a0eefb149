#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""cloudsim - the cloud side of otagw's northbound link (northbound/PROTOCOL.md).

A WebSocket server on 127.0.0.1 (ws or wss) speaking subprotocol
otagw-cloud.v1: it checks the bearer token and the subprotocol on the upgrade,
answers GATEWAY_HELLO with HELLO_ACK {ackSeq}, stores every sequenced frame
once (deduplicating by seq, counting duplicates), acknowledges cumulatively
(every frame, lazily, or not at all), sends commands and matches REPLYs by
messageId, checks what the gateway sends against the protocol (violations()),
and injects faults: refused token (HTTP 401 or ERROR + close 4001), a frame
cut mid-way, a 16 MiB frame, malformed JSON, unknown types, a wrong first
frame, no HELLO_ACK, closes with any code, going down and coming back on the
same port with its stored state.

Library use (pytest), everything thread-safe and every wait bounded:

    sim = CloudSim(token="T", gateway_id="gw1")          # port 0: any free port
    sim.start()                                          # sim.port, sim.url
    ...start otagw with [cloud] url = sim.url, token = T...
    sim.wait_connected(timeout=10)
    rep = sim.send_command({"messageType": "TASK_CANCEL", "taskId": "t1"}, timeout=10)
    sim.wait_for(lambda s: s.frames("RECORD_STATE"), timeout=10)
    sim.stop(); sim.start()                              # down and back, same port
    sim.close()

CLI (frames and events as JSON lines on stdout; JSON commands on stdin are
sent and their REPLY printed):

    /usr/bin/python3 tests/cloudsim.py --port 0 --token T [--tls CERT KEY]
    /usr/bin/python3 tests/cloudsim.py --self-test

Needs python3-websockets (Debian 12: 10.4, its asyncio "legacy" API).
"""

import argparse
import asyncio
import collections
import http
import json
import os
import re
import ssl
import sys
import threading
import time
import uuid

import websockets
import websockets.exceptions
import websockets.legacy.server

SUBPROTOCOL = "otagw-cloud.v1"
FRAME_MAX = 1024 * 1024          # bytes of one frame, either way
WINDOW = 64                      # unacked upstream frames the gateway may have in flight
INT_MAX = 2 ** 53 - 1
HELLO_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 10.0

CLOSE_UNAUTHORIZED = 4001
CLOSE_PROTOCOL = 4002
CLOSE_SUPERSEDED = 4003
CLOSE_ACK_TIMEOUT = 4004
CLOSE_HELLO_TIMEOUT = 4005

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
STATES = ("waiting", "processing", "success", "failed", "canceled")
COMMANDS = ("FIRMWARE_UPSERT", "FIRMWARE_DELETE", "TASK_CREATE", "TASK_PUBLISH",
            "TASK_CANCEL", "CHILD")

# Upstream keys per messageType: (required, optional). PROTOCOL.md section 5.
UP_KEYS = {
    "GATEWAY_HELLO": ({"messageType", "timestamp", "gatewayId", "version", "protocol",
                       "lastSeq"}, set()),
    "CHILD": ({"seq", "messageType", "timestamp", "deviceId", "childDeviceId",
               "childDeviceMessage"}, set()),
    "RECORD_STATE": ({"seq", "messageType", "timestamp", "taskId", "recordId", "deviceId",
                      "firmwareId", "version", "to", "progress", "time"},
                     {"from", "errorReason"}),
    "PROGRESS_BATCH": ({"seq", "messageType", "timestamp", "taskId", "items", "counts"}, set()),
    "GATEWAY_STATUS": ({"seq", "messageType", "timestamp", "version", "uptime", "online",
                        "devices", "cache", "outbox"}, set()),
    "TASK_EVENT": ({"seq", "messageType", "timestamp", "taskId", "event", "wave", "time"},
                   {"reason"}),
    "REPLY": ({"seq", "messageType", "timestamp", "messageId", "success"},
              {"replyTo", "code", "message", "result"}),
    "ERROR": ({"messageType", "timestamp", "code"}, {"message", "messageId"}),
}
UNSEQUENCED = ("GATEWAY_HELLO", "ERROR")


class CloudsimError(Exception):
    """Base class of what cloudsim raises."""


class Timeout(CloudsimError, TimeoutError):
    """A bounded wait ran out."""


def now_ms():
    return int(time.time() * 1000)


def is_int(v, lo=0, hi=INT_MAX):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def is_id(v):
    return isinstance(v, str) and ID_RE.match(v) is not None


def _compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# -- checks of upstream frames (the gateway's side of the contract) ----------------------

def _check_keys(msg, mtype):
    req, opt = UP_KEYS[mtype]
    keys = set(msg)
    out = ["%s: missing field '%s'" % (mtype, k) for k in sorted(req - keys)]
    out += ["%s: unknown field '%s'" % (mtype, k) for k in sorted(keys - req - opt)]
    return out


def _check_fields(msg, mtype, gateway_id):
    """Type-specific field checks; returns a list of problems."""
    p = []
    g = msg.get
    if "timestamp" in msg and not is_int(g("timestamp")):
        p.append("%s: timestamp is not an integer ms" % mtype)
    if mtype == "CHILD":
        inner = g("childDeviceMessage")
        if gateway_id and g("deviceId") != gateway_id:
            p.append("CHILD: deviceId is not the gateway's id")
        if not is_id(g("childDeviceId")):
            p.append("CHILD: childDeviceId is not an id")
        if not isinstance(inner, dict) or inner.get("deviceId") != g("childDeviceId"):
            p.append("CHILD: childDeviceMessage is not an object of childDeviceId")
        elif not isinstance(inner.get("messageType"), str):
            p.append("CHILD: childDeviceMessage has no messageType")
    elif mtype == "RECORD_STATE":
        for k in ("taskId", "recordId", "deviceId", "firmwareId"):
            if not is_id(g(k)):
                p.append("RECORD_STATE: %s is not an id" % k)
        if g("to") not in STATES or ("from" in msg and g("from") not in STATES):
            p.append("RECORD_STATE: from/to is not a state")
        if not is_int(g("progress"), 0, 100) or not is_int(g("time")):
            p.append("RECORD_STATE: progress/time out of range")
    elif mtype == "PROGRESS_BATCH":
        items, counts = g("items"), g("counts")
        if not isinstance(items, list) or len(items) > 1000 or not all(
                isinstance(i, dict) and set(i) == {"deviceId", "progress", "time"}
                and is_id(i["deviceId"]) and is_int(i["progress"], 0, 100)
                and is_int(i["time"]) for i in items):
            p.append("PROGRESS_BATCH: bad items")
        if not isinstance(counts, dict) or set(counts) != set(STATES) or not all(
                is_int(v) for v in counts.values()):
            p.append("PROGRESS_BATCH: bad counts")
    elif mtype == "GATEWAY_STATUS":
        cache = g("cache")
        if not isinstance(g("online"), dict) or not all(is_int(v) for v in g("online").values()):
            p.append("GATEWAY_STATUS: bad online")
        if not isinstance(cache, dict) or set(cache) != {"usedBytes", "quotaBytes", "images"}:
            p.append("GATEWAY_STATUS: bad cache")
    elif mtype == "TASK_EVENT":
        if not is_id(g("taskId")) or g("event") not in (
                "published", "hold", "open", "wave", "paused", "resumed", "aborted"):
            p.append("TASK_EVENT: bad taskId/event")
        if not is_int(g("wave"), 1, 1000) or not is_int(g("time")):
            p.append("TASK_EVENT: wave/time out of range")
    elif mtype == "REPLY":
        if not is_id(g("messageId")) or not isinstance(g("success"), bool):
            p.append("REPLY: bad messageId/success")
        elif not g("success") and not isinstance(g("code"), str):
            p.append("REPLY: a failure without code")
        elif g("success") and "code" in msg:
            p.append("REPLY: code on success")
    elif mtype == "GATEWAY_HELLO":
        if not is_id(g("gatewayId")) or g("protocol") != 1 or not is_int(g("lastSeq")):
            p.append("GATEWAY_HELLO: bad gatewayId/protocol/lastSeq")
    return p


def check_up_frame(msg, gateway_id=None):
    """All problems of one parsed upstream frame (a dict), as strings."""
    mtype = msg.get("messageType")
    if mtype not in UP_KEYS:
        return ["unknown upstream messageType %r" % (mtype,)]
    return _check_keys(msg, mtype) + _check_fields(msg, mtype, gateway_id)


# -- one connection -----------------------------------------------------------------------

class _Conn:
    """One gateway connection, owned by the loop thread."""

    def __init__(self, n, ws):
        self.n = n
        self.ws = ws
        self.gateway_id = None
        self.ready = False                 # HELLO_ACK sent
        self.last_seq = 0                  # highest seq received on this connection
        self.last_ack = 0                  # highest ack sent on this connection
        self.hello_ack = 0                 # the ackSeq of its HELLO_ACK
        self.unacked = collections.deque()  # seqs received above last_ack
        self.since_ack = 0
        self.close_code = None
        self.close_reason = None


class CloudSim:
    """The cloud simulator. Its asyncio loop runs in a background thread;
    public methods may be called from any thread."""

    def __init__(self, port=0, token="T", gateway_id=None, tls=None, host="127.0.0.1",
                 ack="every", ack_every=8, ack_delay=0.2, hello_ack_from="stored",
                 hello_timeout=HELLO_TIMEOUT, ping_interval=20.0, state_path=None,
                 on_event=None, compression="deflate"):
        """tls: (cert_path, key_path) or None. ack: "every" | "lazy" (after
        ack_every frames or ack_delay s) | "none". hello_ack_from: "stored"
        (highest seq stored: correct) or "acked" (highest seq acked: a cloud
        that loses its cursor, so the gateway resends and dedup is
        exercised). gateway_id: the only id the token may speak for (None:
        any). state_path: JSON file keeping the per-gateway seqs across
        processes. on_event(dict): called on the loop thread for each event.
        compression: "deflate" accepts permessage-deflate (RFC 7692) when the
        gateway offers it, as common WebSocket servers do; None refuses it.
        wire_bytes() counts what arrived on the sockets (compressed or not)."""
        self.host = host
        self.port = port
        self.token = token
        self.gateway_id = gateway_id
        self.tls = tls
        self.hello_timeout = hello_timeout
        self.ping_interval = ping_interval
        self.state_path = state_path
        self.on_event = on_event
        self.compression = compression
        self._wire_in = 0                  # bytes received on every socket
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._ack = {"mode": ack, "every": ack_every, "delay": ack_delay}
        self._hello_ack_from = hello_ack_from
        self._hello_mode = "answer"        # "answer" | "silent" | "ack_first"
        self._hello_ack_override = None
        self._auth_fail = None             # None | "http" | "close"
        self._select = True                # select the subprotocol
        self._stored = {}                  # gateway id -> highest seq stored
        self._acked = {}                   # gateway id -> highest seq acked
        self._records = []                 # accepted frames: dicts, see records()
        self._dups = []                    # duplicate frames, same shape
        self._errors = []                  # unsequenced ERROR frames from the gateway
        self._hellos = []
        self._violations = []
        self._events = []
        self._conns = 0
        self._session = None               # the _Conn past HELLO_ACK, or None
        self._all = set()                  # every open _Conn
        self._loop = None
        self._thread = None
        self._server = None
        self._load_state()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self):
        return "%s://%s:%d/otagw" % ("wss" if self.tls else "ws", self.host, self.port)

    def start(self, timeout=DEFAULT_TIMEOUT):
        """Listens (again) on self.port; the first start with port 0 picks one
        and later starts reuse it. Returns self."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever,
                                            name="cloudsim", daemon=True)
            self._thread.start()
        self._call(self._start(), timeout)
        return self

    def stop(self, abort=True, timeout=DEFAULT_TIMEOUT):
        """Goes down: stops listening and ends every connection, abruptly (no
        close frame, like a crash) when abort, else with close 1001. The
        stored state survives; start() comes back on the same port."""
        if self._loop is not None:
            self._call(self._stop(abort), timeout)

    def close(self, timeout=DEFAULT_TIMEOUT):
        """stop(), then ends the loop thread. The object is done."""
        if self._loop is None:
            return
        try:
            self.stop(timeout=timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop.close()
            self._loop = None

    def restart(self, down_for=0.0, timeout=DEFAULT_TIMEOUT):
        self.stop(timeout=timeout)
        time.sleep(down_for)
        self.start(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _call(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError as exc:      # concurrent.futures.TimeoutError in 3.11
            fut.cancel()
            raise Timeout("cloudsim: loop call timed out") from exc

    async def _start(self):
        if self._server is not None:
            return
        ctx = None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
        self._server = await websockets.serve(
            self._handler, self.host, self.port, ssl=ctx, subprotocols=[SUBPROTOCOL],
            select_subprotocol=self._select_subprotocol, process_request=self._process_request,
            max_size=FRAME_MAX, compression=self.compression,
            ping_interval=self.ping_interval, ping_timeout=self.ping_interval, close_timeout=2,
            create_protocol=self._protocol_class())
        self.port = self._server.sockets[0].getsockname()[1]
        self._event({"event": "listening", "port": self.port, "tls": bool(self.tls)})

    async def _stop(self, abort):
        server, self._server = self._server, None
        if server is None:
            return
        server.close()                   # stop accepting; closes connections with 1001
        if abort:
            for c in list(self._all):
                c.ws.transport.abort()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:
            pass
        self._event({"event": "down", "port": self.port})

    # -- state ---------------------------------------------------------------------------

    def _load_state(self):
        if not self.state_path or not os.path.exists(self.state_path):
            return
        with open(self.state_path, encoding="utf-8") as f:
            st = json.load(f)
        self._stored = {k: int(v) for k, v in st.get("stored", {}).items()}
        self._acked = {k: int(v) for k, v in st.get("acked", {}).items()}

    def _save_state(self):
        if not self.state_path:
            return
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"stored": self._stored, "acked": self._acked}, f)
        os.replace(tmp, self.state_path)

    def _event(self, ev):
        ev.setdefault("time", now_ms())
        with self._cond:
            self._events.append(ev)
            self._cond.notify_all()
        if self.on_event:
            self.on_event(ev)

    def _violation(self, conn, text):
        with self._cond:
            self._violations.append(text)
        self._event({"event": "violation", "conn": conn.n if conn else None, "text": text})

    # -- the upgrade --------------------------------------------------------------------

    def _select_subprotocol(self, client, server):
        return SUBPROTOCOL if self._select and SUBPROTOCOL in client else None

    async def _process_request(self, path, headers):
        offered = ",".join(headers.get_all("Sec-WebSocket-Protocol"))
        auth = headers.get("Authorization", "")
        if SUBPROTOCOL not in [p.strip() for p in offered.split(",")]:
            self._event({"event": "refused", "reason": "subprotocol", "path": path})
            return http.HTTPStatus.BAD_REQUEST, [], b"subprotocol otagw-cloud.v1 required\n"
        if auth != "Bearer " + self.token or self._auth_fail == "http":
            self._event({"event": "refused", "reason": "token", "path": path})
            return http.HTTPStatus.UNAUTHORIZED, [], b"unauthorized\n"
        return None

    # -- one connection -------------------------------------------------------------------

    def _protocol_class(self):
        """The server protocol, counting the bytes each socket received."""
        sim = self

        class Counting(websockets.legacy.server.WebSocketServerProtocol):
            def data_received(self, data):
                with sim._lock:
                    sim._wire_in += len(data)
                super().data_received(data)
        return Counting

    def wire_bytes(self):
        """Bytes received from gateways on the sockets so far (handshakes,
        frame headers and payloads as sent: compressed when negotiated)."""
        with self._lock:
            return self._wire_in

    async def _handler(self, ws):
        with self._cond:
            self._conns += 1
            conn = _Conn(self._conns, ws)
            self._all.add(conn)
        self._event({"event": "connect", "conn": conn.n, "path": ws.path,
                     "subprotocol": ws.subprotocol,
                     "extensions": [e.name for e in ws.extensions]})
        try:
            if await self._hello(conn):
                async for data in ws:
                    await self._on_frame(conn, data)
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            await self._closed(conn)

    async def _closed(self, conn):
        ws = conn.ws
        conn.close_code, conn.close_reason = ws.close_code, ws.close_reason
        with self._cond:
            self._all.discard(conn)
            if self._session is conn:
                self._session = None
            self._cond.notify_all()
        self._event({"event": "close", "conn": conn.n, "code": ws.close_code,
                     "reason": ws.close_reason})

    async def _refuse(self, conn, code, err_code, text):
        if err_code == "protocol":
            self._violation(conn, text)
        try:
            await conn.ws.send(_compact({"messageType": "ERROR", "code": err_code,
                                         "message": text}))
            await conn.ws.close(code, text[:100])
        except websockets.exceptions.ConnectionClosed:
            pass

    async def _hello(self, conn):
        """Waits for GATEWAY_HELLO and answers it; False when the connection
        is to end."""
        try:
            data = await asyncio.wait_for(conn.ws.recv(), self.hello_timeout)
        except asyncio.TimeoutError:
            await conn.ws.close(CLOSE_HELLO_TIMEOUT, "no GATEWAY_HELLO")
            return False
        msg = self._parse(conn, data)
        if msg is None or msg.get("messageType") != "GATEWAY_HELLO":
            await self._refuse(conn, CLOSE_PROTOCOL, "protocol", "first frame is not GATEWAY_HELLO")
            return False
        for p in check_up_frame(msg):
            self._violation(conn, p)
        gw = msg.get("gatewayId")
        with self._cond:
            self._hellos.append(msg)
        if self._auth_fail == "close" or (self.gateway_id and gw != self.gateway_id):
            await self._refuse(conn, CLOSE_UNAUTHORIZED, "unauthorized",
                               "gateway id not allowed for this token")
            return False
        return await self._answer_hello(conn, gw, msg)

    async def _answer_hello(self, conn, gw, msg):
        if self._hello_mode == "silent":
            self._event({"event": "hello", "conn": conn.n, "frame": msg, "ackSeq": None})
            await conn.ws.wait_closed()
            return False
        if self._hello_mode == "ack_first":
            await conn.ws.send(_compact({"messageType": "ACK", "ack": 0}))
        with self._cond:
            old = self._session
            ack = self._hello_ack_override
            self._hello_ack_override = None
            if ack is None:
                src = self._stored if self._hello_ack_from == "stored" else self._acked
                ack = src.get(gw, 0)
            conn.gateway_id, conn.last_ack, conn.hello_ack, conn.ready = gw, ack, ack, True
            self._session = conn
            self._cond.notify_all()
        if old is not None and old is not conn:
            await old.ws.close(CLOSE_SUPERSEDED, "superseded")
        await conn.ws.send(_compact({"messageType": "HELLO_ACK", "ackSeq": ack,
                                     "timestamp": now_ms()}))
        self._event({"event": "hello", "conn": conn.n, "frame": msg, "ackSeq": ack})
        if self._ack["mode"] == "lazy":
            asyncio.ensure_future(self._lazy_acker(conn))
        return True

    def _parse(self, conn, data):
        if isinstance(data, bytes):
            self._violation(conn, "binary frame")
            return None
        try:
            msg = json.loads(data)
        except ValueError:
            self._violation(conn, "frame is not JSON")
            return None
        if not isinstance(msg, dict):
            self._violation(conn, "frame is not a JSON object")
            return None
        return msg

    async def _on_frame(self, conn, data):
        msg = self._parse(conn, data)
        if msg is None:
            await self._refuse(conn, CLOSE_PROTOCOL, "protocol", "unusable frame")
            return
        mtype = msg.get("messageType")
        if mtype == "ERROR":
            for p in check_up_frame(msg, conn.gateway_id):
                self._violation(conn, p)
            with self._cond:
                self._errors.append(msg)
                self._cond.notify_all()
            self._event({"event": "error", "conn": conn.n, "frame": msg})
            return
        seq = msg.get("seq")
        if mtype == "GATEWAY_HELLO" or not is_int(seq, 1):
            await self._refuse(conn, CLOSE_PROTOCOL, "protocol",
                               "%s without a usable seq" % (mtype,))
            return
        if seq <= conn.last_seq:
            await self._refuse(conn, CLOSE_PROTOCOL, "protocol",
                               "seq %d after %d on one connection" % (seq, conn.last_seq))
            return
        await self._store(conn, msg, data, seq)

    async def _store(self, conn, msg, data, seq):
        problems = check_up_frame(msg, conn.gateway_id)
        for p in problems:
            self._violation(conn, "seq %d: %s" % (seq, p))
        conn.last_seq = seq
        conn.unacked.append(seq)
        if len(conn.unacked) > WINDOW:
            self._violation(conn, "window exceeded: %d frames unacknowledged" % len(conn.unacked))
        rec = {"seq": seq, "type": msg.get("messageType"), "frame": msg, "raw": data,
               "conn": conn.n, "time": time.time()}
        with self._cond:
            dup = seq <= self._stored.get(conn.gateway_id, 0)
        # The event first, so a CLI prints the frame before the reply it answers.
        self._event({"event": "duplicate" if dup else "frame", "conn": conn.n, "seq": seq,
                     "frame": msg})
        with self._cond:
            (self._dups if dup else self._records).append(rec)
            if not dup:
                self._stored[conn.gateway_id] = seq
                self._save_state()
            self._cond.notify_all()
        if not dup and msg.get("messageType") not in UP_KEYS:
            await self._send(conn, {"messageType": "ERROR", "code": "invalid", "seq": seq,
                                    "message": "unknown messageType"})
        conn.since_ack += 1
        mode = self._ack["mode"]
        if mode == "every" or (mode == "lazy" and conn.since_ack >= self._ack["every"]):
            await self._send_ack(conn)

    async def _send(self, conn, obj):
        try:
            await conn.ws.send(obj if isinstance(obj, str) else _compact(obj))
        except websockets.exceptions.ConnectionClosed:
            pass

    async def _send_ack(self, conn, force=False):
        """ACK of everything stored, but never above what the gateway sent on
        this connection (or its HELLO_ACK): that would be a protocol error."""
        with self._cond:
            ack = self._stored.get(conn.gateway_id, 0)
        ack = min(ack, max(conn.last_seq, conn.hello_ack))
        if not force and ack <= conn.last_ack and not conn.since_ack:
            return
        conn.since_ack = 0
        conn.last_ack = max(conn.last_ack, ack)
        while conn.unacked and conn.unacked[0] <= ack:
            conn.unacked.popleft()
        with self._cond:
            if ack > self._acked.get(conn.gateway_id, 0):
                self._acked[conn.gateway_id] = ack
                self._save_state()
        await self._send(conn, {"messageType": "ACK", "ack": ack})
        self._event({"event": "ack", "conn": conn.n, "ack": ack})

    async def _lazy_acker(self, conn):
        while conn in self._all and self._ack["mode"] == "lazy":
            await asyncio.sleep(self._ack["delay"])
            if conn.since_ack:
                await self._send_ack(conn)

    # -- control (any thread) -----------------------------------------------------------

    def set_ack_mode(self, mode, every=None, delay=None, timeout=DEFAULT_TIMEOUT):
        """"every", "lazy" or "none". Switching to every/lazy acks what is
        pending at once."""
        assert mode in ("every", "lazy", "none")
        with self._cond:
            self._ack["mode"] = mode
            if every is not None:
                self._ack["every"] = every
            if delay is not None:
                self._ack["delay"] = delay
        conn = self._session
        if mode != "none" and conn is not None:
            self._call(self._send_ack(conn), timeout)       # only if something is pending
            if mode == "lazy":
                self._loop.call_soon_threadsafe(
                    lambda: asyncio.ensure_future(self._lazy_acker(conn)))

    def ack_now(self, timeout=DEFAULT_TIMEOUT):
        """Sends an ACK for everything stored, on the current connection."""
        conn = self._session
        if conn is not None and self._loop is not None:
            self._call(self._send_ack(conn, force=True), timeout)

    def set_hello_ack(self, ack_seq):
        """The next HELLO_ACK says ack_seq, whatever is stored (one shot)."""
        with self._cond:
            self._hello_ack_override = ack_seq

    def set_hello_mode(self, mode):
        """"answer" (normal), "silent" (never answer GATEWAY_HELLO: the gateway
        should close 4005), "ack_first" (an ACK before HELLO_ACK: 4002)."""
        assert mode in ("answer", "silent", "ack_first")
        self._hello_mode = mode

    def reject_auth(self, mode):
        """None (accept), "http" (401 on the upgrade) or "close" (accept, then
        ERROR unauthorized and close 4001 after GATEWAY_HELLO)."""
        assert mode in (None, "http", "close")
        self._auth_fail = mode

    def select_subprotocol(self, on):
        """False: accept the upgrade without selecting otagw-cloud.v1."""
        self._select = bool(on)

    def set_stored_seq(self, seq, gateway_id=None):
        """Sets the highest stored (and acked) seq: a cloud that lost its
        store (lower) or has seen more (higher, PROTOCOL.md 4.6)."""
        gw = gateway_id or self.gateway_id or self._last_gateway()
        with self._cond:
            self._stored[gw] = seq
            self._acked[gw] = min(self._acked.get(gw, 0), seq)
            self._save_state()

    def _last_gateway(self):
        with self._cond:
            return self._hellos[-1].get("gatewayId") if self._hellos else None

    def stored_seq(self, gateway_id=None):
        with self._cond:
            return self._stored.get(gateway_id or self.gateway_id or self._last_gateway(), 0)

    def acked_seq(self, gateway_id=None):
        with self._cond:
            return self._acked.get(gateway_id or self.gateway_id or self._last_gateway(), 0)

    # -- sending (any thread) ---------------------------------------------------------

    def _need_session(self, deadline):
        with self._cond:
            while self._session is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("cloudsim: no gateway connected")
                self._cond.wait(left)
            return self._session

    def send(self, frame, timeout=DEFAULT_TIMEOUT):
        """Sends one frame (a dict as compact JSON, a str as it is, bytes as a
        binary frame) on the current connection, waiting for one."""
        conn = self._need_session(time.monotonic() + timeout)
        data = frame if isinstance(frame, (str, bytes)) else _compact(frame)
        self._call(self._send_raw(conn, data), timeout)
        return conn.n

    async def _send_raw(self, conn, data):
        try:
            await conn.ws.send(data)
        except websockets.exceptions.ConnectionClosed:
            return
        if isinstance(data, str) and len(data) <= 4096:
            self._event({"event": "sent", "conn": conn.n, "frame": data})

    def _find_reply(self, mid):
        with self._cond:
            for r in self._records + self._dups:
                f = r["frame"]
                if f.get("messageType") == "REPLY" and f.get("messageId") == mid:
                    return f
        return None

    def send_command(self, cmd, timeout=DEFAULT_TIMEOUT):
        """Sends a command (a messageId is added when absent) and returns the
        REPLY with its messageId. Resends it after a reconnect as
        PROTOCOL.md 7.1 allows. Timeout when no REPLY came in time."""
        cmd = dict(cmd)
        cmd.setdefault("messageId", "c-" + uuid.uuid4().hex[:16])
        deadline = time.monotonic() + timeout
        sent_on = None
        while True:
            rep = self._find_reply(cmd["messageId"])
            if rep is not None:
                return rep
            conn = self._need_session(deadline)
            if conn is not sent_on:
                self._call(self._send_raw(conn, _compact(cmd)),
                           max(0.1, deadline - time.monotonic()))
                sent_on = conn
            with self._cond:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("cloudsim: no REPLY to %s" % cmd["messageId"])
                if self._find_reply(cmd["messageId"]) is None and self._session is conn:
                    self._cond.wait(min(left, 0.5))

    # -- fault injection (any thread) ----------------------------------------------

    def drop(self, code=None, reason="", timeout=DEFAULT_TIMEOUT):
        """Ends the current connection: with a close frame of code, or (None)
        by cutting TCP without one."""
        conn = self._session
        if conn is None:
            return
        if code is None:
            self._loop.call_soon_threadsafe(conn.ws.transport.abort)
        else:
            self._call(conn.ws.close(code, reason), timeout)

    def close_mid_frame(self, timeout=DEFAULT_TIMEOUT):
        """Writes the header of a 1000-byte text frame and 15 bytes of it,
        then closes TCP: the gateway must drop the partial frame."""
        conn = self._need_session(time.monotonic() + timeout)

        def cut():
            conn.ws.transport.write(b"\x81\x7e\x03\xe8" + b'{"messageType":')
            conn.ws.transport.close()
        self._loop.call_soon_threadsafe(cut)

    def send_huge(self, size=16 * 1024 * 1024, timeout=DEFAULT_TIMEOUT):
        """Starts sending one text frame of size bytes (valid JSON) and returns
        the connection number at once: the gateway must close with 1009 (see
        wait_closed()), and a peer that stops reading must not block us."""
        head = '{"messageType":"ACK","ack":0,"pad":"'
        text = head + "x" * (size - len(head) - 2) + '"}'
        conn = self._need_session(time.monotonic() + timeout)
        self._loop.call_soon_threadsafe(
            lambda: asyncio.ensure_future(self._send_raw(conn, text)))
        return conn.n

    def send_malformed(self, text='{"messageType":"ACK",', timeout=DEFAULT_TIMEOUT):
        return self.send(text, timeout)

    # -- observing (any thread) ------------------------------------------------------

    def frames(self, type=None):
        """Accepted (deduplicated) sequenced frames as dicts, in arrival order."""
        with self._cond:
            return [r["frame"] for r in self._records if type is None or r["type"] == type]

    def records(self, type=None):
        """As frames(), with seq, type, frame, raw (the text), conn, time."""
        with self._cond:
            return [dict(r) for r in self._records if type is None or r["type"] == type]

    @property
    def duplicates(self):
        with self._cond:
            return len(self._dups)

    def duplicate_records(self):
        with self._cond:
            return [dict(r) for r in self._dups]

    def errors(self):
        """Unsequenced ERROR frames the gateway sent."""
        with self._cond:
            return list(self._errors)

    def hellos(self):
        with self._cond:
            return list(self._hellos)

    def violations(self):
        """What the gateway did against PROTOCOL.md, as strings."""
        with self._cond:
            return list(self._violations)

    def events(self, kind=None):
        with self._cond:
            return [dict(e) for e in self._events if kind is None or e["event"] == kind]

    @property
    def connections(self):
        with self._cond:
            return self._conns

    @property
    def connected(self):
        with self._cond:
            return self._session is not None

    def last_close(self):
        """(code, reason) of the last connection that ended, or None."""
        ev = self.events("close")
        return (ev[-1]["code"], ev[-1]["reason"]) if ev else None

    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT):
        """Waits until predicate(self) is truthy and returns its value;
        Timeout otherwise. predicate runs with the state lock held."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = predicate(self)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("cloudsim: condition not met in %.1f s" % timeout)
                self._cond.wait(min(left, 0.2))

    def wait_connected(self, timeout=DEFAULT_TIMEOUT, after=0):
        """Waits for a gateway past HELLO_ACK whose connection number is above
        after; returns the number."""
        return self.wait_for(lambda s: s._session is not None and s._session.n > after
                             and s._session.n, timeout)

    def wait_closed(self, timeout=DEFAULT_TIMEOUT, after=0):
        """Waits for a close event of a connection numbered above after;
        returns (code, reason)."""
        ev = self.wait_for(lambda s: [e for e in s._events
                                      if e["event"] == "close" and e["conn"] > after], timeout)
        return ev[-1]["code"], ev[-1]["reason"]

    def wait_frame(self, type, predicate=None, timeout=DEFAULT_TIMEOUT):
        """The first accepted frame of type matching predicate(frame)."""
        def find(s):
            for f in s.frames(type):
                if predicate is None or predicate(f):
                    return f
            return None
        return self.wait_for(find, timeout)


# -- CLI ----------------------------------------------------------------------------------

def _print_event(ev):
    sys.stdout.write(_compact(ev) + "\n")
    sys.stdout.flush()


def _stdin_commands(sim):
    """Each stdin line holding a JSON object is sent as a command."""
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            rep = sim.send_command(cmd, timeout=30)
            _print_event({"event": "reply", "frame": rep})
        except (ValueError, CloudsimError) as exc:
            _print_event({"event": "cli-error", "text": str(exc)})


async def _recv_type(ws, want, stash):
    """The next frame of messageType want; others are kept in stash."""
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if m.get("messageType") == want:
            return m
        stash.append(m)


def _hello_frame(last_seq):
    return _compact({"messageType": "GATEWAY_HELLO", "gatewayId": "gw1", "version": "0.1.0",
                     "protocol": 1, "lastSeq": last_seq, "timestamp": now_ms()})


def _status_frame(seq):
    return _compact({"seq": seq, "messageType": "GATEWAY_STATUS", "timestamp": now_ms(),
                     "version": "0.1.0", "uptime": 1, "online": {}, "devices": 0,
                     "cache": {"usedBytes": 0, "quotaBytes": 0, "images": 0}, "outbox": 1})


async def _selftest_client(url, token):
    """A minimal gateway: HELLO, three frames, a command answered, then a
    reconnect whose resend of seq 4 must be counted as a duplicate."""
    hdr = {"Authorization": "Bearer " + token}
    stash = []
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL], extra_headers=hdr,
                                  compression=None) as ws:
        await ws.send(_hello_frame(0))
        assert (await _recv_type(ws, "HELLO_ACK", stash))["ackSeq"] == 0
        for seq in (1, 2, 3):
            await ws.send(_status_frame(seq))
            assert (await _recv_type(ws, "ACK", stash))["ack"] == seq
        cmd = stash.pop(0) if stash else json.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(_compact({"seq": 4, "messageType": "REPLY", "timestamp": now_ms(),
                                "messageId": cmd["messageId"], "replyTo": cmd["messageType"],
                                "success": True, "result": {"canceled": 0}}))
        assert (await _recv_type(ws, "ACK", stash))["ack"] == 4
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL], extra_headers=hdr) as ws:
        await ws.send(_hello_frame(4))
        assert (await _recv_type(ws, "HELLO_ACK", stash))["ackSeq"] == 4
        await ws.send(_status_frame(4))
        assert (await _recv_type(ws, "ACK", stash))["ack"] == 4


def self_test():
    with CloudSim(token="T", gateway_id="gw1") as sim:
        loop = asyncio.new_event_loop()
        client = threading.Thread(target=lambda: loop.run_until_complete(
            _selftest_client(sim.url, "T")))
        client.start()
        rep = sim.send_command({"messageType": "TASK_CANCEL", "taskId": "t1"}, timeout=10)
        client.join(10)
        assert not client.is_alive(), "self-test client hung"
        assert rep["success"] and rep["result"] == {"canceled": 0}, rep
        assert [f["seq"] for f in sim.frames()] == [1, 2, 3, 4]
        sim.wait_for(lambda s: s.duplicates == 1, timeout=10)
        assert sim.stored_seq() == 4 and sim.violations() == [], sim.violations()
        loop.close()
    _print_event({"event": "self-test", "ok": True})
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="T")
    ap.add_argument("--gateway-id", default=None)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--ack", choices=("every", "lazy", "none"), default="every")
    ap.add_argument("--hello-ack-from", choices=("stored", "acked"), default="stored")
    ap.add_argument("--state", help="JSON file keeping stored/acked seqs across runs")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test()
    sim = CloudSim(port=a.port, token=a.token, gateway_id=a.gateway_id,
                   tls=tuple(a.tls) if a.tls else None, host=a.host, ack=a.ack,
                   hello_ack_from=a.hello_ack_from, state_path=a.state,
                   on_event=_print_event)
    sim.start()
    threading.Thread(target=_stdin_commands, args=(sim,), daemon=True).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
