# SPDX-License-Identifier: MIT
"""crashcheck - invariants of an otagw data directory, checked from outside
(tests/it/test_crash_consistency.py after every kill -9, tests/soak/soak.py
at the end of a soak). Standard library only; every function returns a list
of problems (strings), empty when the invariant holds, so one run reports
everything it found.

  integrity(db)                  PRAGMA integrity_check is "ok"
  legal_moves()                  (initial states, {from: {to}}) parsed from
                                 gateway/records.c (rec_moves[], REC_INITIAL)
  history_problems(db, legal)    every record's history chains from "" through
                                 legal moves to its current state
  cache_problems(cache_dir)      every cache/<sha256> file hashes to its name
  orphan_partials(cache_dir, db) partial files no download owns (after the
                                 daemon's start-up reconcile)
  spool_leftovers(data_dir)      bundle uploads a restart should have removed
  cloud_problems(...)            what a cloud simulator received against what
                                 it acknowledged and what the gateway stored
  overdue_processing(db, now)    records left in processing past their timeout

The database is always opened read-only (sqlite3 URI mode=ro), so checking
a killed daemon's files before its restart changes nothing in them."""

import hashlib
import json
import os
import re
import sqlite3
import time

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
RECORDS_C = os.path.join(REPO_ROOT, "gateway", "records.c")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
PARTIAL_NAME = re.compile(r"^([0-9a-f]{1,64})\.(part|state)$")
# The only upstream frames the gateway may drop unsent (PROTOCOL.md 4.2).
DROPPABLE = ("GATEWAY_STATUS",)


def db_path(data_dir):
    return os.path.join(data_dir, "otagw.db")


def open_ro(path, timeout=5.0):
    """A read-only connection (fails if the file does not exist)."""
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=timeout)


def _query(db, sql, args=()):
    """Rows of one query on a fresh read-only connection (one snapshot)."""
    con = open_ro(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


# -- database ---------------------------------------------------------------------------

def integrity(db):
    """PRAGMA integrity_check of the file at db."""
    try:
        rows = _query(db, "PRAGMA integrity_check")
    except (sqlite3.DatabaseError, OSError) as e:
        return ["integrity_check of %s: %s" % (db, e)]
    msgs = [r[0] for r in rows]
    if msgs == ["ok"]:
        return []
    return ["integrity_check of %s: %s" % (db, m) for m in msgs[:20]]


def legal_moves(path=RECORDS_C):
    """(initial, moves) from records.c: the states a record may be created
    in and rec_moves[from] as {from: {to}}, by state name. Raises ValueError
    when the source no longer has the shape this parser knows."""
    with open(path, encoding="utf-8") as f:
        src = f.read()
    names = dict(re.findall(r'\[(REC_[A-Z]+)\]\s*=\s*"([a-z]+)"', src))
    m = re.search(r"rec_moves\[[A-Z_]+\]\s*=\s*\{(.*?)\};", src, re.S)
    init = re.search(r"#define\s+REC_INITIAL\s+\((.*?)\)\s*$", src, re.M)
    if len(names) < 5 or not m or not init:
        raise ValueError("%s: rec_names[], rec_moves[] or REC_INITIAL not found" % path)
    moves = {n: set() for n in names.values()}
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    for frm, masks in re.findall(r"\[(REC_[A-Z]+)\]\s*=\s*([^,\[]+)", body):
        for to in re.findall(r"REC_MASK\((REC_[A-Z]+)\)", masks):
            moves[names[frm]].add(names[to])
    initial = {names[s] for s in re.findall(r"REC_MASK\((REC_[A-Z]+)\)", init.group(1))}
    if not initial or not any(moves.values()):
        raise ValueError("%s: no moves parsed" % path)
    return initial, moves


def history_problems(db, legal, limit=50):
    """Every record_history chain (rows of one record_id in id order) starts
    at "" with an initial state and goes on by legal moves, each row's from
    being the previous row's to; a record that exists has a chain, with the
    record's task and device, ending in its state. History of deleted
    records (firmware deletion keeps it) must chain too. Done in SQL (one
    snapshot, the history_record index), at most limit problems."""
    initial, moves = legal
    pairs = [("", to) for to in sorted(initial)] + \
        [(f, t) for f in sorted(moves) for t in sorted(moves[f])]
    legal_sql = " UNION ALL ".join("SELECT ?, ?" for _ in pairs)
    args = [x for p in pairs for x in p]
    out = []
    con = open_ro(db)
    try:
        con.execute("BEGIN")                       # one snapshot for every query
        for hid, rid, frm, to, prev in con.execute(
                "WITH legal(f, t) AS (" + legal_sql + "),"
                " h AS (SELECT id, record_id, from_state, to_state, LAG(to_state, 1, '')"
                "  OVER (PARTITION BY record_id ORDER BY id) AS prev FROM record_history)"
                " SELECT id, record_id, from_state, to_state, prev FROM h"
                " WHERE from_state <> prev OR NOT EXISTS"
                "  (SELECT 1 FROM legal WHERE f = h.from_state AND t = h.to_state)"
                " ORDER BY record_id, id LIMIT ?", args + [limit]):
            if frm != prev:
                out.append("record %s: history row %d goes %r -> %r but the state was %r"
                           % (rid, hid, frm, to, prev))
            else:
                out.append("record %s: history row %d: %r -> %r is not a legal move"
                           % (rid, hid, frm or "(new)", to))
        for rid, state, last, n in con.execute(
                "SELECT r.id, r.state, (SELECT to_state FROM record_history h"
                "  WHERE h.record_id = r.id ORDER BY h.id DESC LIMIT 1),"
                " (SELECT count(*) FROM record_history h WHERE h.record_id = r.id AND"
                "  (h.task_id <> r.task_id OR h.device_id <> r.device_id))"
                " FROM record r"):
            if last is None:
                out.append("record %s (%s) has no history" % (rid, state))
            elif last != state:
                out.append("record %s is %r but its history ends in %r" % (rid, state, last))
            if n:
                out.append("record %s: history rows name another task or device" % rid)
            if len(out) >= limit:
                break
        con.rollback()
    except sqlite3.DatabaseError as e:
        return out + ["reading history from %s: %s" % (db, e)]
    finally:
        con.close()
    return out[:limit]


def history_rows(db):
    """[(record_id, from, to, time)] of every history row, in id order."""
    return _query(db, "SELECT record_id, from_state, to_state, time FROM record_history"
                      " ORDER BY id")


def outbox_rows(db):
    """{seq: (type, frame text)} of the outbox."""
    return {s: (t, f) for s, t, f in _query(db, "SELECT seq, type, frame FROM outbox")}


def overdue_processing(db, now_ms, slack_ms):
    """Records in processing longer than their timeout (by update_time, the
    time of the last progress) plus slack_ms."""
    rows = _query(db, "SELECT id, task_id, device_id, timeout_seconds, update_time FROM record"
                      " WHERE state = 'processing' AND timeout_seconds > 0"
                      " AND update_time + timeout_seconds * 1000 + ?1 < ?2",
                  (slack_ms, now_ms))
    return ["record %s (task %s, device %s) in processing for %.1f s, timeout %d s"
            % (r[0], r[1], r[2], (now_ms - r[4]) / 1000.0, r[3]) for r in rows]


# -- cache directory --------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def cache_problems(cache_dir, memo=None):
    """Every regular file of cache_dir named like a SHA-256 holds bytes with
    that digest. memo (a dict) skips files already found good whose inode,
    size and mtime did not change since."""
    out = []
    try:
        names = os.listdir(cache_dir)
    except FileNotFoundError:
        return out
    for n in sorted(names):
        if not HEX64.match(n):
            continue
        p = os.path.join(cache_dir, n)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue                               # evicted meanwhile
        key = (n, st.st_ino, st.st_size, st.st_mtime_ns)
        if memo is not None and memo.get(n) == key:
            continue
        try:
            got = sha256_file(p)
        except FileNotFoundError:
            continue
        if got != n:
            out.append("cache/%s holds bytes with sha256 %s (%d bytes)" % (n, got, st.st_size))
        elif memo is not None:
            memo[n] = key
    return out


def partial_names(cache_dir):
    """{name: [files]} of cache/partial/ (name without .part/.state);
    files of other shapes under "?"."""
    out = {}
    try:
        files = os.listdir(os.path.join(cache_dir, "partial"))
    except FileNotFoundError:
        return out
    for f in files:
        m = PARTIAL_NAME.match(f)
        out.setdefault(m.group(1) if m else "?", []).append(f)
    return out


def owned_partials(db):
    """Partial names an in-progress download owns: a firmware whose image is
    downloading with that partial."""
    return {r[0] for r in _query(db, "SELECT image_partial FROM firmware"
                                     " WHERE image_state = 'downloading' AND image_partial <> ''")}


def orphan_partials(cache_dir, db, rounds=3, interval=0.3):
    """Partial files no download owns. A download may start or finish
    between listing the directory and reading the database, so a name counts
    only when it is unowned in each of `rounds` looks, interval s apart (an
    orphan stays forever). Call it after the daemon's start-up reconcile."""
    suspects = None
    for i in range(rounds):
        if i:
            time.sleep(interval)
        before = partial_names(cache_dir)
        owned = owned_partials(db)
        after = partial_names(cache_dir)
        now = {n: fs for n, fs in after.items() if n in before and n not in owned}
        suspects = now if suspects is None else {n: fs for n, fs in now.items() if n in suspects}
        if not suspects:
            return []
    return ["orphan partial cache/partial/%s: no download owns %s" % (",".join(sorted(fs)), n)
            for n, fs in sorted(suspects.items())]


def spool_leftovers(data_dir):
    """Bundle uploads (<data>/bundles/*.upload) left behind: the daemon
    removes them at start."""
    d = os.path.join(data_dir, "bundles")
    try:
        return ["bundles/%s left by an interrupted upload" % f for f in sorted(os.listdir(d))
                if f.endswith(".upload")]
    except FileNotFoundError:
        return []


# -- the cloud --------------------------------------------------------------------------

def cloud_problems(stored, dups, hello_acks, outbox_seen, history, frame_type="RECORD_STATE"):
    """What the cloud got against what it acknowledged and what the gateway
    recorded (northbound/PROTOCOL.md sections 4 and 5.3):
      stored       [(seq, type, raw, conn)] frames the cloud accepted, in order
      dups         [(seq, type, raw, conn)] frames it dropped as already stored
      hello_acks   {conn: ackSeq of that connection's HELLO_ACK}
      outbox_seen  {seq: (type, frame)} every outbox row seen in the database
      history      [(record_id, from, to, time)] every record state change
    Problems: accepted seqs not strictly increasing; a frame resent on a
    connection whose HELLO_ACK had acknowledged it (acknowledged frames
    must never be sent again); a resend that differs from the first copy;
    an outbox frame never delivered (all must arrive once the cloud is back,
    except droppable GATEWAY_STATUS) or delivered with other bytes; a state
    change with no RECORD_STATE, or a RECORD_STATE with no state change, or
    one delivered twice under different seqs."""
    out = []
    seqs = [s[0] for s in stored]
    if seqs != sorted(set(seqs)):
        out.append("accepted seqs are not strictly increasing")
    raw_of = {s[0]: s[2] for s in stored}
    for seq, typ, raw, conn in dups:
        ack = hello_acks.get(conn)
        if ack is None:
            out.append("seq %d (%s) resent on connection %s that had no HELLO_ACK"
                       % (seq, typ, conn))
        elif seq <= ack:
            out.append("seq %d (%s) was sent again on connection %s after its HELLO_ACK "
                       "acknowledged up to %d" % (seq, typ, conn, ack))
        if raw_of.get(seq) != raw:
            out.append("seq %d (%s) resent with other bytes than its first copy" % (seq, typ))
    for seq in sorted(outbox_seen):
        typ, frame = outbox_seen[seq]
        if seq not in raw_of:
            if typ not in DROPPABLE:
                out.append("outbox frame seq %d (%s) never reached the cloud" % (seq, typ))
        elif raw_of[seq] != frame:
            out.append("seq %d (%s): the cloud got other bytes than the outbox held"
                       % (seq, typ))
    got = {}
    for seq, typ, raw, conn in stored:
        if typ != frame_type:
            continue
        f = _json(raw)
        key = (f.get("recordId"), f.get("from", ""), f.get("to"), f.get("time"))
        got.setdefault(key, []).append(seq)
    want = {}
    for rid, frm, to, t in history:
        want[(rid, frm, to, t)] = want.get((rid, frm, to, t), 0) + 1
    for key, n in sorted(want.items(), key=str):
        have = len(got.get(key, ()))
        if have < n:
            out.append("state change %s %r -> %r at %d never reached the cloud"
                       % (key[0], key[1] or "(new)", key[2], key[3]))
        elif have > n:
            out.append("state change %s %r -> %r at %d reached the cloud %d times (seqs %r)"
                       % (key[0], key[1] or "(new)", key[2], key[3], have, got[key]))
    for key, ss in sorted(got.items(), key=str):
        if key not in want:
            out.append("RECORD_STATE seq %r (%s %r -> %r) has no state change in the history"
                       % (ss, key[0], key[1], key[2]))
    return out


def _json(raw):
    try:
        v = json.loads(raw)
        return v if isinstance(v, dict) else {}
    except ValueError:
        return {}
