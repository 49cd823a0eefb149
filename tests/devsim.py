#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""devsim - a TCP device simulator for otagw's southbound transport.

Speaks both codecs of southbound/PROTOCOL.md:
  jsonline  one JSON object per line ("\\n"; the gateway tolerates "\\r\\n")
  frame     16-byte big-endian header: "OG", version 1, type, flags 0, 3 zero
            bytes, payload length u32, zlib.crc32(payload) u32. Type 1: a JSON
            message. Type 2 (gateway -> device chunk replies): u32 json_len,
            the JSON (without "data"), then the raw bytes.

Library use (the integration tests and the benchmark import it):

    d = Device("127.0.0.1", 9000, "frame", "d1", product_id="p1")
    d.report("1.0.0")
    rep = d.pull()                       # REQUEST_FIRMWARE_REPLY as a dict
    img = d.fetch_image(rep["firmwareId"], rep["size"])
    d.progress(rep["version"], rep["firmwareId"], 100, complete=True, success=True)
    d.close()

Received chunk replies carry "data" as bytes in both codecs (base64 is
decoded, the CRC is checked by fetch_image). Every wait is bounded by a
timeout. A CLI runs the whole report -> pull -> fetch -> progress flow:

    /usr/bin/python3 tests/devsim.py --port 9000 --device d1 --product p1 --codec jsonline

Standard library only.
"""

import argparse
import asyncio
import base64
import collections
import hashlib
import json
import socket
import struct
import sys
import time
import zlib

FRAME_MAGIC = b"OG"
FRAME_VERSION = 1
FRAME_JSON = 1          # payload: one JSON message
FRAME_DATA = 2          # payload: u32 json_len + JSON + raw data (chunk replies)
FRAME_HEADER = struct.Struct(">2sBBB3xII")   # magic, version, type, flags, len, crc
CODECS = ("jsonline", "frame")
DEFAULT_TIMEOUT = 10.0
RECV_SIZE = 256 * 1024


class DevsimError(Exception):
    """Base class of what devsim raises."""


class Closed(DevsimError):
    """The gateway closed the connection (EOF or reset)."""


class ProtocolError(DevsimError):
    """The gateway sent something that breaks the protocol."""


class GatewayError(DevsimError):
    """The gateway answered with messageType ERROR (or a failed reply)
    where something else was expected; .msg holds it."""

    def __init__(self, msg, text=None):
        super().__init__(text or "gateway answered %s" % json.dumps(msg, default=_bytes_repr))
        self.msg = msg


def _bytes_repr(o):
    if isinstance(o, (bytes, bytearray)):
        return "<%d bytes>" % len(o)
    raise TypeError(o)


def now_ms():
    return int(time.time() * 1000)


# -- codecs -------------------------------------------------------------------

def frame_header(payload_len, crc, ftype=FRAME_JSON, magic=FRAME_MAGIC, version=FRAME_VERSION,
                 flags=0):
    """A raw 16-byte frame header (any field can be forged for hostile tests)."""
    return FRAME_HEADER.pack(magic, version, ftype, flags, payload_len, crc)


def encode_frame(payload, ftype=FRAME_JSON, crc=None):
    """payload bytes -> one frame; crc overrides the computed CRC."""
    if crc is None:
        crc = zlib.crc32(payload) & 0xFFFFFFFF
    return frame_header(len(payload), crc, ftype) + payload


def encode(codec, msg, line_end=b"\n"):
    """One message (a dict, or bytes used as the JSON text) -> wire bytes."""
    body = msg if isinstance(msg, (bytes, bytearray)) else \
        json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
    if codec == "jsonline":
        return bytes(body) + line_end
    if codec == "frame":
        return encode_frame(bytes(body))
    raise ValueError("unknown codec %r" % codec)


def _json_obj(text, what):
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError("%s is not JSON (%s): %r" % (what, e, text[:200])) from None
    if not isinstance(obj, dict):
        raise ProtocolError("%s is not a JSON object: %r" % (what, text[:200]))
    return obj


class Decoder:
    """Stateful stream decoder for messages from the gateway. feed(bytes)
    returns the whole messages decoded so far (dicts). A chunk reply's
    "data" becomes bytes in both codecs."""

    def __init__(self, codec, max_message=64 * 1024 * 1024):
        if codec not in CODECS:
            raise ValueError("unknown codec %r" % codec)
        self.codec = codec
        self.buf = bytearray()
        self.max_message = max_message

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            m = self._one()
            if m is None:
                return out
            out.append(m)

    def pending(self):
        return len(self.buf)

    def _one(self):
        if self.codec == "jsonline":
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > self.max_message:
                    raise ProtocolError("line longer than %d bytes" % self.max_message)
                return None
            line = bytes(self.buf[:i])
            del self.buf[:i + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                return self._one()
            msg = _json_obj(line, "line")
            if isinstance(msg.get("data"), str):
                try:
                    msg["data"] = base64.b64decode(msg["data"], validate=True)
                except ValueError as e:
                    raise ProtocolError("bad base64 in data: %s" % e) from None
            return msg
        if len(self.buf) < FRAME_HEADER.size:
            return None
        magic, ver, ftype, flags, plen, crc = FRAME_HEADER.unpack_from(self.buf)
        if magic != FRAME_MAGIC or ver != FRAME_VERSION:
            raise ProtocolError("bad frame header %s" % bytes(self.buf[:16]).hex())
        if plen > self.max_message:
            raise ProtocolError("frame payload of %d bytes" % plen)
        if len(self.buf) < FRAME_HEADER.size + plen:
            return None
        payload = bytes(self.buf[FRAME_HEADER.size:FRAME_HEADER.size + plen])
        del self.buf[:FRAME_HEADER.size + plen]
        if zlib.crc32(payload) & 0xFFFFFFFF != crc:
            raise ProtocolError("frame CRC mismatch (type %d, %d bytes)" % (ftype, plen))
        if ftype == FRAME_JSON:
            msg = _json_obj(payload, "frame")
            if isinstance(msg.get("data"), str):
                # A type-1 frame can only carry chunk data as base64 (the
                # gateway sends an empty chunk reply this way).
                try:
                    msg["data"] = base64.b64decode(msg["data"], validate=True)
                except ValueError as e:
                    raise ProtocolError("bad base64 in data: %s" % e) from None
            return msg
        if ftype == FRAME_DATA:
            if plen < 4:
                raise ProtocolError("type-2 frame of %d bytes" % plen)
            jlen = struct.unpack_from(">I", payload)[0]
            if 4 + jlen > plen:
                raise ProtocolError("type-2 json_len %d > payload %d" % (jlen, plen))
            msg = _json_obj(payload[4:4 + jlen], "type-2 frame JSON")
            if "data" in msg:
                raise ProtocolError("type-2 frame JSON carries data too")
            msg["data"] = payload[4 + jlen:]
            return msg
        raise ProtocolError("unknown frame type %d" % ftype)


# -- message builders (dicts, shared by Device and AsyncDevice) ---------------

def msg_report(device_id, version, properties=None):
    return {"messageType": "REPORT_FIRMWARE", "deviceId": device_id, "timestamp": now_ms(),
            "version": version, "properties": properties or {}}


def msg_pull(device_id, message_id, request_version="", current_version=None,
             force=False, latest=False):
    m = {"messageType": "REQUEST_FIRMWARE", "deviceId": device_id, "messageId": message_id,
         "timestamp": now_ms(), "requestVersion": request_version,
         "headers": {"force": force, "latest": latest}}
    if current_version is not None:
        m["currentVersion"] = current_version
    return m


def msg_progress(device_id, version, firmware_id, pct, complete=False, success=True,
                 error_reason=None):
    m = {"messageType": "UPGRADE_FIRMWARE_PROGRESS", "deviceId": device_id,
         "timestamp": now_ms(), "version": version, "progress": int(pct),
         "complete": bool(complete), "success": bool(success)}
    if firmware_id is not None:
        m["firmwareId"] = firmware_id
    if error_reason is not None:
        m["errorReason"] = error_reason
    return m


def msg_chunk(device_id, message_id, firmware_id, offset, length):
    return {"messageType": "REQUEST_FIRMWARE_CHUNK", "deviceId": device_id,
            "messageId": message_id, "timestamp": now_ms(), "firmwareId": firmware_id,
            "offset": offset, "length": length}


def msg_upgrade_reply(device_id, message_id, success=True, error_reason=None):
    m = {"messageType": "UPGRADE_FIRMWARE_REPLY", "deviceId": device_id,
         "messageId": message_id, "timestamp": now_ms(), "success": bool(success)}
    if error_reason is not None:
        m["errorReason"] = error_reason
    return m


def check_chunk_reply(rep, firmware_id, offset, want_len=None, size=None):
    """Validates a REQUEST_FIRMWARE_CHUNK_REPLY for (offset, length); returns
    its data (bytes). Raises GatewayError for success=false, ProtocolError for
    inconsistencies."""
    if rep.get("messageType") != "REQUEST_FIRMWARE_CHUNK_REPLY":
        raise ProtocolError("expected a chunk reply, got %s" % json.dumps(rep, default=_bytes_repr))
    if rep.get("success") is not True:
        raise GatewayError(rep)
    data = rep.get("data", b"")
    if not isinstance(data, (bytes, bytearray)):
        raise ProtocolError("chunk reply without data: %s" % json.dumps(rep, default=_bytes_repr))
    if rep.get("offset") != offset:
        raise ProtocolError("chunk reply offset %r, asked %d" % (rep.get("offset"), offset))
    if rep.get("length") != len(data):
        raise ProtocolError("chunk reply length %r but %d data bytes" % (rep.get("length"), len(data)))
    if rep.get("firmwareId") not in (None, firmware_id):
        raise ProtocolError("chunk reply firmwareId %r, asked %r" % (rep.get("firmwareId"), firmware_id))
    if want_len is not None and len(data) > want_len:
        raise ProtocolError("chunk reply of %d bytes, asked %d" % (len(data), want_len))
    if size is not None and rep.get("size") not in (None, size):
        raise ProtocolError("chunk reply size %r, firmware size %d" % (rep.get("size"), size))
    crc = zlib.crc32(data) & 0xFFFFFFFF
    if rep.get("crc32") != crc:
        raise ProtocolError("chunk at %d: crc32 %r, data has %d" % (offset, rep.get("crc32"), crc))
    return bytes(data)


# -- the synchronous device ---------------------------------------------------

class Device:
    """One simulated device on one TCP connection (blocking sockets, every
    wait bounded). Messages the caller did not wait for are kept in
    self.inbox, in arrival order; self.received lists everything received."""

    def __init__(self, host, port, codec="jsonline", device_id="d1", product_id=None,
                 secure_key=None, timeout=DEFAULT_TIMEOUT, connect=True, nodelay=True,
                 rcvbuf=None, line_end=b"\n", byte_delay=None):
        if codec not in CODECS:
            raise ValueError("unknown codec %r" % codec)
        self.host, self.port, self.codec = host, port, codec
        self.device_id = device_id
        self.product_id = product_id
        self.secure_key = secure_key
        self.timeout = timeout
        self.nodelay = nodelay
        self.rcvbuf = rcvbuf
        self.line_end = line_end
        self.byte_delay = byte_delay       # s: send() writes one byte at a time
        self.sock = None
        self.dec = None
        self.inbox = collections.deque()
        self.received = []
        self.closed = False
        self.sent_first = False
        self._mid = 0
        if connect:
            self.connect()

    # connection ------------------------------------------------------------

    def connect(self):
        """(Re)connects; the next message sent carries the identifying headers."""
        self.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.settimeout(self.timeout)
        try:
            s.connect((self.host, self.port))
        except OSError:
            s.close()
            raise
        if self.nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.dec = Decoder(self.codec)
        self.inbox.clear()
        self.closed = False
        self.sent_first = False
        return self

    def close(self, reset=False):
        """Closes the socket; reset=True sends an RST (SO_LINGER 0)."""
        if self.sock is not None:
            if reset:
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                except OSError:
                    pass
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def next_id(self, prefix="m"):
        self._mid += 1
        return "%s%s-%d" % (prefix, self.device_id, self._mid)

    # sending ---------------------------------------------------------------

    def _with_headers(self, msg):
        if self.sent_first or not isinstance(msg, dict):
            return msg
        extra = {}
        if self.product_id is not None:
            extra["productId"] = self.product_id
        if self.secure_key is not None:
            extra["secureKey"] = self.secure_key
        if extra:
            msg = dict(msg)
            msg["headers"] = dict(msg.get("headers") or {}, **extra)
        return msg

    def encode(self, msg):
        return encode(self.codec, msg, self.line_end)

    def send(self, msg, headers=True):
        """Sends one message (dict, or bytes taken as the JSON text). The
        first message of a connection carries headers.productId/secureKey
        unless headers=False."""
        if headers:
            msg = self._with_headers(msg)
        self.send_raw(self.encode(msg), self.byte_delay)
        self.sent_first = True
        return msg

    def send_raw(self, data, byte_delay=None):
        """Raw bytes; byte_delay (s) sends them one byte at a time."""
        if self.sock is None:
            raise Closed("not connected")
        try:
            if byte_delay is None:
                self.sock.sendall(data)
            else:
                for i in range(len(data)):
                    self.sock.sendall(data[i:i + 1])
                    if byte_delay:
                        time.sleep(byte_delay)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.closed = True
            raise Closed("send failed: %s" % e) from None

    # receiving -------------------------------------------------------------

    def _read(self, deadline):
        """One recv() into the decoder, bounded by deadline. Returns False on
        timeout; raises Closed on EOF/reset."""
        if self.sock is None or self.closed:
            raise Closed("connection closed")
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(RECV_SIZE)
        except socket.timeout:
            return False
        except (ConnectionResetError, ConnectionAbortedError) as e:
            self.closed = True
            raise Closed("reset: %s" % e) from None
        if not b:
            self.closed = True
            raise Closed("EOF")
        for m in self.dec.feed(b):
            self.received.append(m)
            self.inbox.append(m)
        return True

    def recv(self, timeout=None):
        """The next message (dict), or None at timeout; Closed on EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.inbox:
            if not self._read(deadline):
                return None
        return self.inbox.popleft()

    def wait_for(self, message_type, timeout=None, message_id=None, raise_error=True):
        """The first message of message_type (and message_id) in the inbox or
        arriving within timeout; others stay in the inbox. An ERROR raises
        GatewayError unless waited for (or raise_error=False). TimeoutError
        at timeout; Closed when the gateway closes first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = 0
        while True:
            for i in range(seen, len(self.inbox)):
                m = self.inbox[i]
                if m.get("messageType") == message_type and \
                        (message_id is None or m.get("messageId") == message_id):
                    del self.inbox[i]
                    return m
                if raise_error and message_type != "ERROR" and m.get("messageType") == "ERROR":
                    del self.inbox[i]
                    raise GatewayError(m)
            seen = len(self.inbox)
            if not self._read(deadline):
                raise TimeoutError("no %s%s from the gateway within %.1f s (inbox: %s)" % (
                    message_type, "" if message_id is None else " for %s" % message_id,
                    self.timeout if timeout is None else timeout,
                    json.dumps(list(self.inbox), default=_bytes_repr)[:500]))

    def wait_closed(self, timeout=3.0):
        """True when the gateway closes the connection within timeout. The
        messages received meanwhile stay in the inbox."""
        deadline = time.monotonic() + timeout
        try:
            while self._read(deadline):
                pass
            return False
        except Closed:
            return True
        except ProtocolError:
            # junk after an error is not our concern here; keep waiting
            return self._drain_closed(deadline)

    def _drain_closed(self, deadline):
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(RECV_SIZE):
                    self.closed = True
                    return True
            except socket.timeout:
                return False
            except OSError:
                self.closed = True
                return True
        return False

    def errors(self):
        """ERROR messages received so far on this device (any connection)."""
        return [m for m in self.received if m.get("messageType") == "ERROR"]

    # protocol helpers ------------------------------------------------------

    def report(self, version, properties=None):
        return self.send(msg_report(self.device_id, version, properties))

    def pull(self, request_version="", current_version=None, force=False, latest=False,
             timeout=None):
        """REQUEST_FIRMWARE; returns the REQUEST_FIRMWARE_REPLY (any success)."""
        mid = self.next_id("pull-")
        self.send(msg_pull(self.device_id, mid, request_version, current_version, force, latest))
        return self.wait_for("REQUEST_FIRMWARE_REPLY", timeout, message_id=mid)

    def progress(self, version, firmware_id, pct, complete=False, success=True,
                 error_reason=None):
        return self.send(msg_progress(self.device_id, version, firmware_id, pct, complete,
                                      success, error_reason))

    def upgrade_reply(self, message_id, success=True, error_reason=None):
        return self.send(msg_upgrade_reply(self.device_id, message_id, success, error_reason))

    def request_chunk(self, firmware_id, offset, length, timeout=None):
        """One REQUEST_FIRMWARE_CHUNK; returns the reply unchecked."""
        mid = self.next_id("chunk-")
        self.send(msg_chunk(self.device_id, mid, firmware_id, offset, length))
        return self.wait_for("REQUEST_FIRMWARE_CHUNK_REPLY", timeout, message_id=mid)

    def fetch_image(self, firmware_id, size, chunk=4096, stop_after=None, offset=0, window=1,
                    check_end=False, timeout=None):
        """Fetches the image by REQUEST_FIRMWARE_CHUNK from offset (resume)
        to size, or stops once at least stop_after bytes were fetched.
        window > 1 pipelines requests. Each reply is checked (offset, length,
        crc32). check_end also asks for offset == size and expects length 0.
        Returns the bytes fetched (image[offset:offset + len(result)])."""
        parts = {}
        pos = offset                       # next offset to request
        done = offset                      # contiguous end of what arrived
        limit = size if stop_after is None else min(size, offset + stop_after)
        outstanding = {}                   # messageId -> (offset, length)
        while done < limit:
            while len(outstanding) < max(1, window) and pos < limit:
                n = min(chunk, size - pos)
                mid = self.next_id("chunk-")
                self.send(msg_chunk(self.device_id, mid, firmware_id, pos, n))
                outstanding[mid] = (pos, n)
                pos += n
            rep = self.wait_for("REQUEST_FIRMWARE_CHUNK_REPLY", timeout)
            if rep.get("messageId") not in outstanding:
                raise ProtocolError("chunk reply for unknown messageId %r" % rep.get("messageId"))
            at, n = outstanding.pop(rep["messageId"])
            data = check_chunk_reply(rep, firmware_id, at, n, size)
            if not data:
                raise ProtocolError("empty chunk at %d of %d" % (at, size))
            if len(data) < n:
                if window > 1:
                    raise ProtocolError("short chunk (%d of %d) while pipelining" % (len(data), n))
                pos = at + len(data)       # the gateway clamped the length: follow it
            parts[at] = data
            while done in parts:
                done += len(parts[done])
        while outstanding:                 # replies to requests beyond a short chunk
            rep = self.wait_for("REQUEST_FIRMWARE_CHUNK_REPLY", timeout)
            outstanding.pop(rep.get("messageId"), None)
        out = bytearray()
        at = offset
        while at in parts and at < done:
            out += parts[at]
            at += len(parts[at])
        if check_end and done >= size:
            rep = self.request_chunk(firmware_id, size, chunk, timeout)
            data = check_chunk_reply(rep, firmware_id, size, chunk, size)
            if data or rep.get("length") != 0:
                raise ProtocolError("chunk at offset == size is not empty: %s"
                                    % json.dumps(rep, default=_bytes_repr))
        return bytes(out)


# -- asyncio device (scale tests, benchmarks) --------------------------------

class AsyncDevice:
    """The same protocol on asyncio streams, for thousands of devices in one
    process. Only what the scale test and benchmark need."""

    def __init__(self, host, port, codec, device_id, product_id=None, secure_key=None,
                 timeout=DEFAULT_TIMEOUT):
        self.host, self.port, self.codec = host, port, codec
        self.device_id, self.product_id, self.secure_key = device_id, product_id, secure_key
        self.timeout = timeout
        self.reader = self.writer = None
        self.dec = Decoder(codec)
        self.inbox = collections.deque()
        self.sent_first = False
        self._mid = 0

    async def connect(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.timeout)
        return self

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def next_id(self):
        self._mid += 1
        return "m%d" % self._mid

    def encode(self, msg):
        if not self.sent_first and isinstance(msg, dict):
            extra = {}
            if self.product_id is not None:
                extra["productId"] = self.product_id
            if self.secure_key is not None:
                extra["secureKey"] = self.secure_key
            if extra:
                msg = dict(msg, headers=dict(msg.get("headers") or {}, **extra))
        self.sent_first = True
        return encode(self.codec, msg)

    def send_nowait(self, *msgs):
        self.writer.write(b"".join(self.encode(m) for m in msgs))

    async def send(self, *msgs):
        self.send_nowait(*msgs)
        await asyncio.wait_for(self.writer.drain(), self.timeout)

    async def wait_for(self, message_type, message_id=None, timeout=None):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while True:
            for i, m in enumerate(self.inbox):
                if m.get("messageType") == message_type and \
                        (message_id is None or m.get("messageId") == message_id):
                    del self.inbox[i]
                    return m
                if message_type != "ERROR" and m.get("messageType") == "ERROR":
                    del self.inbox[i]
                    raise GatewayError(m)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("%s: no %s within the timeout" % (self.device_id, message_type))
            try:
                b = await asyncio.wait_for(self.reader.read(RECV_SIZE), left)
            except asyncio.TimeoutError:
                raise TimeoutError("%s: no %s within the timeout"
                                   % (self.device_id, message_type)) from None
            except (ConnectionResetError, ConnectionAbortedError) as e:
                raise Closed("%s: reset: %s" % (self.device_id, e)) from None
            if not b:
                raise Closed("%s: EOF" % self.device_id)
            self.inbox.extend(self.dec.feed(b))

    async def wait_closed(self, timeout=3.0):
        try:
            while True:
                b = await asyncio.wait_for(self.reader.read(RECV_SIZE), timeout)
                if not b:
                    return True
        except asyncio.TimeoutError:
            return False
        except OSError:
            return True

    async def report(self, version, properties=None):
        await self.send(msg_report(self.device_id, version, properties))

    async def pull(self, request_version=""):
        mid = self.next_id()
        await self.send(msg_pull(self.device_id, mid, request_version))
        return await self.wait_for("REQUEST_FIRMWARE_REPLY", mid)

    async def request_chunk(self, firmware_id, offset, length):
        """One REQUEST_FIRMWARE_CHUNK; returns the checked data (bytes)."""
        mid = self.next_id()
        await self.send(msg_chunk(self.device_id, mid, firmware_id, offset, length))
        rep = await self.wait_for("REQUEST_FIRMWARE_CHUNK_REPLY", mid)
        return check_chunk_reply(rep, firmware_id, offset, length)

    async def fetch_image(self, firmware_id, size, chunk=4096):
        out = bytearray()
        while len(out) < size:
            data = await self.request_chunk(firmware_id, len(out), min(chunk, size - len(out)))
            if not data:
                raise ProtocolError("empty chunk at %d of %d" % (len(out), size))
            out += data
        return bytes(out)

    async def progress(self, version, firmware_id, pct, complete=False, success=True):
        await self.send(msg_progress(self.device_id, version, firmware_id, pct, complete, success))


# -- CLI ----------------------------------------------------------------------

def _digest(method, data):
    method = (method or "").lower()
    if method in ("sha256", "md5"):
        return hashlib.new(method, data).hexdigest()
    return None


def _fetch_http(url, timeout):
    import urllib.request
    with urllib.request.urlopen(url, timeout=timeout) as r:   # noqa: S310 (device sim)
        return r.read()


def run_flow(args, out=print):
    """report -> pull (or wait for a push) -> fetch -> progress -> success ->
    report the new version. Returns the process exit code."""
    d = Device(args.host, args.port, args.codec, args.device, product_id=args.product,
               secure_key=args.key, timeout=args.timeout)
    out("connected to %s:%d (%s codec) as device %s" % (args.host, args.port, args.codec,
                                                         args.device))
    try:
        d.report(args.current, {"sim": "devsim"})
        out("-> REPORT_FIRMWARE version %s" % args.current)
        rep = d.pull(current_version=args.current)
        mid = None
        if rep.get("success") is not True:
            out("<- REQUEST_FIRMWARE_REPLY success=false code=%s: %s"
                % (rep.get("code"), rep.get("message") or rep.get("errorReason") or ""))
            if args.wait_push <= 0:
                out("nothing to upgrade")
                return 3
            out("waiting up to %.0f s for UPGRADE_FIRMWARE ..." % args.wait_push)
            try:
                rep = d.wait_for("UPGRADE_FIRMWARE", args.wait_push)
            except TimeoutError:
                out("no push arrived")
                return 3
            mid = rep.get("messageId")
            out("<- UPGRADE_FIRMWARE %s" % json.dumps(rep, default=_bytes_repr))
            d.upgrade_reply(mid, True)
            out("-> UPGRADE_FIRMWARE_REPLY success=true")
        else:
            out("<- REQUEST_FIRMWARE_REPLY %s" % json.dumps(rep, default=_bytes_repr))
        fw_id, version, url = rep.get("firmwareId"), rep.get("version"), rep.get("url", "")
        size = int(rep.get("size") or 0)
        t0 = time.monotonic()
        if url.startswith("chunk:"):
            fid = url[len("chunk:"):] or fw_id
            image = bytearray()
            last = -1
            while len(image) < size:
                step = min(size - len(image), max(args.chunk, size // 10 or 1))
                image += d.fetch_image(fid, size, chunk=args.chunk, stop_after=step,
                                       offset=len(image))
                pct = len(image) * 100 // size
                if pct != last and pct < 100:
                    d.progress(version, fw_id, pct)
                    out("   fetched %d/%d bytes, -> UPGRADE_FIRMWARE_PROGRESS %d%%"
                        % (len(image), size, pct))
                    last = pct
            image = bytes(image)
        elif url.startswith("http://") or url.startswith("https://"):
            image = _fetch_http(url, args.timeout)
            out("   fetched %d bytes over HTTP from %s" % (len(image), url))
        else:
            out("cannot fetch url %r" % url)
            d.progress(version, fw_id, 0, complete=True, success=False,
                       error_reason="devsim cannot fetch %s" % url)
            return 4
        secs = time.monotonic() - t0
        digest = _digest(rep.get("signMethod"), image)
        ok = (size == 0 or len(image) == size) and \
            (digest is None or digest == (rep.get("sign") or "").lower())
        out("   %d bytes in %.2f s, %s %s: %s" % (len(image), secs, rep.get("signMethod"),
                                                   digest, "matches" if ok else "MISMATCH"))
        if args.out:
            with open(args.out, "wb") as f:
                f.write(image)
        if not ok:
            d.progress(version, fw_id, 100, complete=True, success=False,
                       error_reason="signature mismatch")
            out("-> UPGRADE_FIRMWARE_PROGRESS failed: signature mismatch")
            return 5
        d.progress(version, fw_id, 100, complete=True, success=True)
        out("-> UPGRADE_FIRMWARE_PROGRESS 100% complete=true success=true")
        d.report(version, {"sim": "devsim"})
        out("-> REPORT_FIRMWARE version %s" % version)
        # A pull round trip makes sure the gateway handled everything above
        # (and shows whether anything else is pending).
        rep = d.pull(current_version=version)
        out("<- REQUEST_FIRMWARE_REPLY success=%s%s" % (
            str(rep.get("success")).lower(),
            " code=%s" % rep.get("code") if rep.get("code") else ""))
        for e in d.errors():
            out("<- ERROR %s" % json.dumps(e))
        out("upgraded %s to %s" % (args.device, version))
        return 0 if not d.errors() else 6
    except DevsimError as e:
        out("error: %s" % e)
        return 2
    except (OSError, TimeoutError) as e:
        out("error: %s" % e)
        return 2
    finally:
        d.close()


def main(argv=None):
    p = argparse.ArgumentParser(description="otagw TCP device simulator: report, pull, "
                                "fetch by chunks, progress, success")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--codec", choices=CODECS, default="jsonline")
    p.add_argument("--device", default="d1", help="deviceId")
    p.add_argument("--product", default=None, help="headers.productId on the first message")
    p.add_argument("--key", default=None, help="headers.secureKey ([tcp] auth = token)")
    p.add_argument("--current", default="1.0.0", help="the version reported first")
    p.add_argument("--chunk", type=int, default=4096, help="bytes per chunk request")
    p.add_argument("--wait-push", type=float, default=0.0,
                   help="seconds to wait for UPGRADE_FIRMWARE when nothing can be pulled")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--out", default=None, help="write the fetched image here")
    args = p.parse_args(argv)
    return run_flow(args)


if __name__ == "__main__":
    sys.exit(main())
