"""Reads ring files named on stdin, one per line, with rillring and says how it went.

The Go fuzz target FuzzPythonRingReader (fuzz_test.go) writes corrupted
rings and sends their paths here: for each it prints one line, "ok",
"error <why>" (rillring refused the ring: RingError), or "crash <exception>"
(any other exception: a bug in the reader).
"""

import sys

import rillring


def read(path):
    with rillring.Ring(path) as ring:
        ring.configs()
        ring.header_stats()
        ring.writer_gone()
        for gop in (True, False):
            rd = rillring.Reader(ring, gop=gop)
            for _ in range(300):
                try:
                    if rd.next() is None:
                        break
                except rillring.RingEnded:
                    break


def main():
    for line in sys.stdin:
        path = line.rstrip("\n")
        try:
            read(path)
            out = "ok"
        except rillring.RingError as e:
            out = "error " + str(e).replace("\n", " ")
        except Exception as e:  # noqa: BLE001 - reported, the fuzzer fails on it
            out = "crash %s: %s" % (type(e).__name__, str(e).replace("\n", " "))
        sys.stdout.write(out + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
