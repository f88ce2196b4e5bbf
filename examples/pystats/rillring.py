"""Read a Rill shared-memory ring (sdk/shm, layout version 1) from Python.

docs/ring.md is the specification this module follows; sdk/shm (reader.go,
writer.go, layout.go) is the reference implementation. A Python reader maps
the ring file read-only and takes no slot of the ring's reader table (that
needs an atomic compare-and-swap, which Python does not have), so it never
writes shared memory: it cannot wait on the futex or a doorbell and polls
instead (Reader.next returns None when it has caught up; sleep, then call it
again).

Memory that another process wrote is not trusted: every offset is computed
from the validated geometry, every length is bounds-checked, and impossible
values raise RingCorrupt, never IndexError or a struct error.

Word loads go through memoryview.cast("Q"/"I") over the mapping, i.e. native
byte order and one aligned 8- or 4-byte load each. Consistency of a record
relies on the seqlock re-check described in docs/ring.md, which needs loads
to stay in program order: true on x86-64 (TSO). On weaker CPUs (arm64) a
reader needs a load barrier between the payload copy and the re-check, which
CPython cannot express.
"""

import mmap
import os
import time
from collections import namedtuple

MAGIC = 0x314D48534C4C4952  # "RILLSHM1" as a little-endian u64
VERSION = 1
PAGE = 4096

# Writer header (offsets from the start of the file).
H_MAGIC = 0  # u64
H_VERSION = 8  # u32
H_READER_SLOTS = 12  # u32
H_DATA_SIZE = 16  # u64
H_SLOTS = 24  # u32
H_CONFIG_SIZE = 28  # u32
H_TOTAL = 32  # u64
H_WRITER_PID = 40  # u32
H_ENDED = 44  # u32
H_WRITE_SEQ = 64  # u64
H_RESERVE = 72  # u64
H_SYNC_SEQ = 80  # u64
H_BYTES = 88  # u64
H_HEARTBEAT = 96  # u64, CLOCK_MONOTONIC ns
H_KIND_COUNT = 104  # 3 x u64
H_KIND_CODEC = 128  # 3 x u32

# Reader area.
AREA_OFF = PAGE
READER_SLOTS = 64
SLOT_SIZE = 192
A_TABLE = 64
AREA_SIZE = (A_TABLE + READER_SLOTS * SLOT_SIZE + PAGE - 1) // PAGE * PAGE

CONFIG_SLOTS = 4
C_HDR_SIZE = 64
C_SEQ, C_LEN, C_FLAGS, C_KIND_CODE, C_DTS, C_PTS = 0, 8, 12, 16, 24, 32

ENTRY_SIZE = 64
E_SEQ, E_OFF, E_LEN, E_FLAGS, E_KIND_CODE, E_DTS, E_PTS = 0, 8, 16, 20, 24, 32, 40

MAX_DATA_SIZE = 1 << 36
MIN_DATA_SIZE = 4096
MIN_SLOTS, MAX_SLOTS = 8, 1 << 22
MAX_CONFIG_SIZE = 16 << 20
MAX_SEQ = 1 << 62

NEXT_TRIES = 64  # retries of one next() call, each after a lap
CONFIG_TRIES = 100
WRITER_TIMEOUT_NS = 3 * 10**9

# Record flags: the ring's own bit, then sdk/media's flags shifted by 8
# (internal/ringpkt).
FLAG_SYNC = 1
MEDIA_FLAG_SHIFT = 8
MEDIA_FLAG_KEY = 1 << 0
MEDIA_FLAG_CONFIG = 1 << 1

KINDS = {1: "video", 2: "audio", 3: "data"}
CODECS = {1: "H264", 2: "H265", 3: "AV1", 4: "AAC", 5: "Opus", 6: "MP3", 7: "PCMA", 8: "PCMU", 9: "AMF0"}

# Config slots as the SDK fills them (sdk/host.go).
CONFIG_SLOT_NAMES = {0: "metadata", 1: "video", 2: "audio"}


class RingError(Exception):
    """A ring cannot be read."""


class RingCorrupt(RingError):
    """The ring's shared memory holds impossible values."""


class RingEnded(RingError):
    """The ring is ended and every record was read."""


Record = namedtuple("Record", "seq kind codec flags dts pts payload")
Record.__doc__ = "A record: kind/codec numbers as in sdk/media, DTS/PTS in ns, payload bytes."


def media_flags(flags):
    """The sdk/media flags of a record's flags."""
    return flags >> MEDIA_FLAG_SHIFT


def _round_up(n, m):
    return (n + m - 1) // m * m


def _align8(n):
    return (n + 7) & ~7


def _i64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def geometry(data_size, slots, config_size):
    """Offsets of a ring's regions: (config_off, index_off, data_off, total)."""
    config_off = AREA_OFF + AREA_SIZE
    index_off = config_off + CONFIG_SLOTS * (C_HDR_SIZE + config_size)
    data_off = _round_up(index_off + slots * ENTRY_SIZE, PAGE)
    total = _round_up(data_off + data_size, PAGE)
    return config_off, index_off, data_off, total


MAX_PID = 1 << 22  # Linux's largest pid_max


def pid_alive(pid):
    """Whether pid (read from shared memory: any u32) is a live process."""
    if pid <= 0 or pid > MAX_PID:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ring:
    """A ring file mapped read-only. Close it when done (or use with)."""

    def __init__(self, path):
        self.path = path
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size < AREA_OFF + AREA_SIZE:
                raise RingCorrupt("ring %s: file of %d bytes is smaller than its header" % (path, size))
            self._mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        self._mv = memoryview(self._mm)
        n = size // 8 * 8
        self._q = self._mv[:n].cast("Q")
        self._l = self._mv[:n].cast("I")
        try:
            self._attach(size)
        except BaseException:
            self.close()
            raise

    def _attach(self, size):
        path = self.path
        m = self.u64(H_MAGIC)
        if m != MAGIC:
            raise RingCorrupt("ring %s: bad magic %#x" % (path, m))
        v = self.u32(H_VERSION)
        if v != VERSION:
            raise RingCorrupt("ring %s: layout version %d, this reader knows %d" % (path, v, VERSION))
        rs = self.u32(H_READER_SLOTS)
        if rs != READER_SLOTS:
            raise RingCorrupt("ring %s: %d reader slots, want %d" % (path, rs, READER_SLOTS))
        ds, slots, cs = self.u64(H_DATA_SIZE), self.u32(H_SLOTS), self.u32(H_CONFIG_SIZE)
        if not (MIN_DATA_SIZE <= ds <= MAX_DATA_SIZE and ds % 64 == 0) or \
                not (MIN_SLOTS <= slots <= MAX_SLOTS and slots & (slots - 1) == 0) or \
                not (0 < cs <= MAX_CONFIG_SIZE and cs % 64 == 0):
            raise RingCorrupt("ring %s: bad geometry (data %d, slots %d, config %d)" % (path, ds, slots, cs))
        self.data_size, self.slots, self.config_size = ds, slots, cs
        self.config_off, self.index_off, self.data_off, total = geometry(ds, slots, cs)
        t = self.u64(H_TOTAL)
        if t != total or total > size:
            raise RingCorrupt("ring %s: total size %d, layout needs %d, file has %d" % (path, t, total, size))
        self.max_payload = ds // 4

    def close(self):
        for name in ("_q", "_l", "_mv"):
            v = getattr(self, name, None)
            if v is not None:
                v.release()
                setattr(self, name, None)
        mm = getattr(self, "_mm", None)
        if mm is not None:
            mm.close()
            self._mm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def u64(self, off):
        return self._q[off >> 3]

    def u32(self, off):
        return self._l[off >> 2]

    def copy(self, off, n):
        return bytes(self._mv[off:off + n])

    # Header fields.
    def write_seq(self):
        return self.u64(H_WRITE_SEQ)

    def sync_seq(self):
        return self.u64(H_SYNC_SEQ)

    def reserve(self):
        return self.u64(H_RESERVE)

    def ended(self):
        return self.u32(H_ENDED) != 0

    def writer_pid(self):
        return self.u32(H_WRITER_PID)

    def writer_gone(self):
        """The writer process is dead, or silent for more than 3 s, and the ring is not ended."""
        if self.ended():
            return False
        pid = self.writer_pid()
        if pid != 0 and not pid_alive(pid):
            return True
        hb = self.u64(H_HEARTBEAT)
        return hb > 0 and time.monotonic_ns() - hb > WRITER_TIMEOUT_NS

    def header_stats(self):
        """What the writer counted in the header (records per kind, codecs, bytes)."""
        kinds = {}
        for k in (1, 2, 3):
            kinds[KINDS[k]] = {
                "records": self.u64(H_KIND_COUNT + 8 * (k - 1)),
                "codec": CODECS.get(self.u32(H_KIND_CODEC + 4 * (k - 1)) & 0xFF, ""),
            }
        return {"write_seq": self.write_seq(), "sync_seq": self.sync_seq(), "bytes": self.u64(H_BYTES),
                "ended": self.ended(), "writer_pid": self.writer_pid(), "kinds": kinds}

    def entry_off(self, seq):
        return self.index_off + (seq & (self.slots - 1)) * ENTRY_SIZE

    def config(self, i):
        """The record in config slot i (a consistent copy), or None if empty or unreadable."""
        c = self.config_off + i * (C_HDR_SIZE + self.config_size)
        for _ in range(CONFIG_TRIES):
            s1 = self.u64(c + C_SEQ)
            if s1 == 0 or s1 >= MAX_SEQ:
                return None
            if s1 & 1:
                time.sleep(0)
                continue
            n = self.u32(c + C_LEN)
            if n == 0 or n > self.config_size:
                if self.u64(c + C_SEQ) == s1:
                    return None
                continue
            flags = self.u32(c + C_FLAGS)
            kc = self.u32(c + C_KIND_CODE)
            dts, pts = _i64(self.u64(c + C_DTS)), _i64(self.u64(c + C_PTS))
            payload = self.copy(c + C_HDR_SIZE, n)
            if self.u64(c + C_SEQ) == s1:
                return Record(s1 // 2, kc & 0xFF, (kc >> 8) & 0xFF, flags, dts, pts, payload)
        return None

    def configs(self):
        """{slot: Record} of the non-empty config slots."""
        out = {}
        for i in range(CONFIG_SLOTS):
            r = self.config(i)
            if r is not None:
                out[i] = r
        return out


class Reader:
    """Reads a ring's records in order at its own pace (sdk/shm's Reader, without a slot).

    gop=True starts at the newest sync record still in the ring (the start
    of the current GOP), gop=False at the next record written.
    """

    def __init__(self, ring, gop=True):
        self.ring = ring
        self.dropped = 0
        self.laps = 0
        self._started = False
        self._wait_sync = False
        ws, sy = ring.write_seq(), ring.sync_seq()
        if ws >= MAX_SEQ:
            self.next_seq = MAX_SEQ  # next() raises RingCorrupt
        elif gop and sy != 0 and sy <= ws and ws - sy < ring.slots:
            self.next_seq = sy
        else:
            self.next_seq = ws + 1
            self._wait_sync = gop and sy != 0

    def next(self):
        """The next record, None when caught up; raises RingEnded, RingCorrupt."""
        r = self.ring
        for _ in range(NEXT_TRIES):
            ended = r.ended()
            ws = r.write_seq()
            if ws >= MAX_SEQ:
                raise RingCorrupt("ring %s: write seq %d" % (r.path, ws))
            if self._wait_sync:
                self._seek_sync(ws)
            if self.next_seq > ws:
                if self.next_seq > ws + 1:
                    raise RingCorrupt("ring %s: write seq went back to %d, reader at %d" % (r.path, ws, self.next_seq))
                if ended:
                    raise RingEnded("ring %s ended" % r.path)
                return None
            if ws - self.next_seq >= r.slots:
                self._lapped(ws)
                continue
            rec = self._read(self.next_seq)
            if rec is None:
                self._lapped(ws)
                continue
            self.next_seq += 1
            self._started = True
            return rec
        return None

    def _read(self, s):
        r = self.ring
        e = r.entry_off(s)
        if r.u64(e + E_SEQ) != s:
            return None
        off = r.u64(e + E_OFF)
        n = r.u32(e + E_LEN)
        flags = r.u32(e + E_FLAGS)
        kc = r.u32(e + E_KIND_CODE)
        dts, pts = _i64(r.u64(e + E_DTS)), _i64(r.u64(e + E_PTS))
        res = r.reserve()
        # The writer reserves a record's bytes before it publishes the
        # entry, so a consistent entry has off + align8(n) <= reserve.
        if n > r.max_payload or off % 8 or off > res or res - off < _align8(n):
            if r.u64(e + E_SEQ) != s:
                return None
            raise RingCorrupt("ring %s: record %d at %d+%d, reserved %d" % (r.path, s, off, n, res))
        if res - off > r.data_size:
            return None  # already being overwritten
        phys = off % r.data_size
        first = min(n, r.data_size - phys)
        payload = r.copy(r.data_off + phys, first)
        if first < n:
            payload += r.copy(r.data_off, n - first)
        # Seqlock re-check: the entry still holds s and the bytes were not
        # reserved for a newer record while they were copied.
        if r.u64(e + E_SEQ) != s or r.reserve() - off > r.data_size:
            return None
        return Record(s, kc & 0xFF, (kc >> 8) & 0xFF, flags, dts, pts, payload)

    def _lapped(self, ws):
        old = self.next_seq
        sy = self.ring.sync_seq()
        if old < sy <= ws and ws - sy < self.ring.slots:
            self.next_seq = sy
        else:
            self.next_seq = ws + 1
            self._wait_sync = sy != 0
        self.laps += 1
        self._drop(self.next_seq - old)

    def _seek_sync(self, ws):
        sy = self.ring.sync_seq()
        if sy == 0:
            self._wait_sync = False
        elif self.next_seq <= sy <= ws:
            self._drop(sy - self.next_seq)
            self.next_seq = sy
            self._wait_sync = False
        elif self.next_seq <= ws:
            self._drop(ws + 1 - self.next_seq)
            self.next_seq = ws + 1

    def _drop(self, n):
        if self._started:
            self.dropped += n
