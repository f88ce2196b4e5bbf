// Package shm is Rill's media plane: a single-writer, multi-reader packet
// ring in shared memory, one per stream.
//
// The core creates a ring in a file under /dev/shm (Create) and ends and
// removes it; the publishing plugin maps it (Open) and is its only Writer;
// each subscribing plugin maps it read-only and reads it with one Reader,
// fanning the records out to its own clients in-process.
//
// The algorithm runs over a plain []byte (Format, Attach), so it is tested
// on heap memory under the race detector and used unchanged on a mapping.
// Each record has an index entry whose sequence number is written last
// (seqlock style) and a byte range in a circular data region guarded by a
// reserve counter, so a reader detects a torn or overwritten record and never
// returns it. The writer never waits: a reader that falls a whole ring
// behind is lapped, skips to the newest FlagSync record and counts the loss
// in Dropped. The header also keeps the latest codec configurations
// (SetConfig, Configs) and the newest sync point, so a new reader can start
// at the current GOP.
//
// Readers block in Wait on a cross-process futex. A process opens one Bell
// (OpenBell) for all the rings it reads; a reader about to sleep marks its
// slot in the ring's reader table, and the writer rings the bells of marked
// slots after publishing, so it makes no system call while nobody sleeps.
// A bell is a futex word plus a named FIFO beside it (BellFIFO): the bell's
// goroutine reads the FIFO through Go's network poller rather than sitting
// in a blocking futex wait, because a goroutine blocked in a system call
// keeps the runtime's sysmon thread waking every 20 µs.
// Every wait is bounded by 100 ms, after which the writer's liveness (pid,
// heartbeat) is checked: a dead writer gives ErrWriterGone, never a hang.
//
// Typical reader loop:
//
//	seg, err := shm.Open(path, false)
//	...
//	rd := shm.NewReader(seg.Ring, shm.StartGOP)
//	defer rd.Close()
//	rd.UseBell(bell) // the process's bell, from shm.OpenBell
//	var buf []byte
//	for {
//		rec, err := rd.Next(buf)
//		switch {
//		case err == nil:
//			buf = rec.Payload
//			handle(rec)
//		case errors.Is(err, shm.ErrEmpty):
//			if err := rd.Wait(ctx); err != nil {
//				return err
//			}
//		default:
//			return err // ErrEnded, ErrCorrupt
//		}
//	}
package shm
