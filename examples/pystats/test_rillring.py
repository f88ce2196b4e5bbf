"""Tests of rillring against rings written by Go (sdk/shm's Writer).

The rings and what was written into them come from ringreader_test.go
(go test ./examples/pystats), which runs:

    RILL_RING_FIXTURES=DIR python3 -m unittest -v test_rillring
"""

import hashlib
import json
import os
import random
import shutil
import struct
import tempfile
import time
import unittest

import rillring

FIXTURES = os.environ.get("RILL_RING_FIXTURES", "")
WAIT = 60.0  # bound of every wait for the Go writer, seconds


def load(name):
    with open(os.path.join(FIXTURES, name + ".json")) as f:
        return json.load(f)


def wait_file(name):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(FIXTURES, name)):
            return True
        time.sleep(0.01)
    return False


def touch(name):
    with open(os.path.join(FIXTURES, name), "w"):
        pass


def read_all(test, rd, limit=100000):
    """Every record until the end (bounded by limit calls and WAIT seconds)."""
    out = []
    deadline = time.monotonic() + WAIT
    for _ in range(limit):
        try:
            rec = rd.next()
        except rillring.RingEnded:
            return out
        if rec is None:
            test.assertLess(time.monotonic(), deadline, "ring never ended")
            time.sleep(0.001)
            continue
        out.append(rec)
    test.fail("more than %d reads" % limit)


def check_pattern(test, rec):
    """The record is the one its payload says (seq, then bytes derived from it)."""
    test.assertGreaterEqual(len(rec.payload), 8)
    (seq,) = struct.unpack_from("<Q", rec.payload)
    test.assertEqual(seq, rec.seq, "payload of record %d says %d" % (rec.seq, seq))
    want = bytes((rec.seq * 31 + i) & 0xFF for i in range(8, len(rec.payload)))
    test.assertEqual(rec.payload[8:], want, "payload of record %d is torn" % rec.seq)


@unittest.skipUnless(FIXTURES, "RILL_RING_FIXTURES not set: run go test ./examples/pystats")
class TestRingReader(unittest.TestCase):
    def compare(self, got, want):
        self.assertEqual([r.seq for r in got], [w["seq"] for w in want])
        for r, w in zip(got, want):
            self.assertEqual((r.kind, r.codec, r.flags, r.dts, r.pts, len(r.payload)),
                             (w["kind"], w["codec"], w["flags"], w["dts"], w["pts"], w["len"]), "record %d" % r.seq)
            self.assertEqual(hashlib.sha256(r.payload).hexdigest(), w["sha256"], "record %d payload" % r.seq)

    def test_basic(self):
        fx = load("basic")
        with rillring.Ring(fx["ring"]) as ring:
            self.assertEqual((ring.slots, ring.data_size), (fx["slots"], fx["data_size"]))
            self.assertTrue(ring.ended())
            recs = read_all(self, rillring.Reader(ring, gop=True))
            self.compare(recs, fx["records"])
            self.assertTrue(any(r.dts < 0 for r in recs), "fixture has negative timestamps")
            cfg = ring.configs()
            self.assertEqual(sorted(cfg), [c["slot"] for c in fx["configs"]])
            for c in fx["configs"]:
                r = cfg[c["slot"]]
                self.assertEqual((r.kind, r.codec, len(r.payload)), (c["kind"], c["codec"], c["len"]))
                self.assertEqual(hashlib.sha256(r.payload).hexdigest(), c["sha256"])
                self.assertEqual(r.seq, 1, "each slot was set once")
            h = ring.header_stats()
            self.assertEqual(h["write_seq"], len(fx["records"]))
            self.assertEqual(h["bytes"], fx["bytes"])
            for k, name in rillring.KINDS.items():
                self.assertEqual(h["kinds"][name]["records"], fx["kind_records"][k], name)
                self.assertEqual(h["kinds"][name]["codec"], rillring.CODECS.get(fx["kind_codec"][k], ""), name)
            # A live-edge reader of an ended ring has nothing to read.
            self.assertRaises(rillring.RingEnded, rillring.Reader(ring, gop=False).next)

    def test_wrap(self):
        fx = load("wrap")
        self.assertTrue(fx["records"][0]["wraps"])
        with rillring.Ring(fx["ring"]) as ring:
            recs = read_all(self, rillring.Reader(ring, gop=True))
            self.compare(recs, fx["records"])  # starts at the newest sync record

    def test_writer_gone(self):
        fx = load("gone")
        with rillring.Ring(fx["ring"]) as ring:
            rd = rillring.Reader(ring)
            self.assertIsNone(rd.next())
            self.assertFalse(ring.ended())
            self.assertTrue(ring.writer_gone())

    def test_alive_writer(self):  # sorts first: the lap ring is not ended yet
        fx = load("lap")  # its writer (the Go test) is alive and waits for test_lapped
        with rillring.Ring(fx["ring"]) as ring:
            self.assertFalse(ring.ended())
            self.assertFalse(ring.writer_gone())

    def test_lapped(self):
        fx0 = load("lap")  # before the lap: 5 records, sync at 1
        with rillring.Ring(fx0["ring"]) as ring:
            rd = rillring.Reader(ring, gop=True)
            first = [rd.next() for _ in range(3)]
            self.assertEqual([r.seq for r in first], [1, 2, 3])
            touch("lap.go")
            self.assertTrue(wait_file("lap.done"), "the Go writer did not lap the reader")
            fx = load("lap-after")
            rest = read_all(self, rd)
            self.compare(rest, fx["records"])  # from the newest sync record on
            self.assertEqual(rd.laps, 1)
            self.assertEqual(rd.dropped, 42 - 4)

    def test_race(self):
        fx = load("race")
        with rillring.Ring(fx["ring"]) as ring:
            rd = rillring.Reader(ring, gop=True)
            touch("race.go")
            recs = read_all(self, rd, limit=10**7)
            self.assertGreater(len(recs), 0)
            last = 0
            for r in recs:
                self.assertGreater(r.seq, last)
                last = r.seq
                check_pattern(self, r)
                self.assertEqual(r.dts, r.seq * 1000)
                self.assertEqual(len(r.payload), 16 + r.seq * 7919 % 3000)
                self.assertEqual((r.kind, r.codec), (1, 1) if r.seq % 8 == 1 else (2, 4))
            self.assertEqual(last, 200000, "the last record is read")
            # Whatever was skipped is counted: read + dropped covers the ring
            # from the first record read.
            self.assertEqual(len(recs) + rd.dropped, last - recs[0].seq + 1)

    def test_corrupt(self):
        """Corrupted copies of a ring give RingError or records, never another exception."""
        fx = load("basic")
        with open(fx["ring"], "rb") as f:
            good = f.read()
        with rillring.Ring(fx["ring"]) as ring:
            regions = [(0, 160), (ring.config_off, ring.config_off + 4 * (64 + ring.config_size)),
                       (ring.index_off, ring.index_off + ring.slots * 64)]
        rnd = random.Random(18)
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "ring")
            outcomes = {"error": 0, "read": 0}
            for i in range(300):
                b = bytearray(good)
                for _ in range(rnd.randint(1, 8)):
                    lo, hi = rnd.choice(regions)
                    off = rnd.randrange(lo, hi)
                    b[off] = rnd.randrange(256)
                    if rnd.random() < 0.3:  # a whole word of extreme values
                        off &= ~7
                        struct.pack_into("<Q", b, off, rnd.choice([0, 1, 2**62, 2**63, 2**64 - 1, rnd.getrandbits(64)]))
                if i % 50 == 0:
                    b = b[:rnd.randrange(0, len(b))]  # truncated file
                with open(path, "wb") as f:
                    f.write(b)
                try:
                    with rillring.Ring(path) as ring:
                        ring.configs()
                        ring.header_stats()
                        rd = rillring.Reader(ring, gop=rnd.random() < 0.5)
                        for _ in range(200):
                            if rd.next() is None:
                                break
                    outcomes["read"] += 1
                except rillring.RingError:
                    outcomes["error"] += 1
            self.assertGreater(outcomes["error"], 0)
            self.assertGreater(outcomes["read"], 0)
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main()
