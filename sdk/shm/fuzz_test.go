package shm

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzReader damages a ring holding records, configs and registered readers
// the way a buggy or malicious process could, then runs everything a reader
// or the core does on it. Nothing may panic, loop forever or index out of
// range; errors must be ErrCorrupt (or the ordinary ErrEmpty/ErrEnded).
//
// The input is a list of 9-byte patches: a little-endian uint32 offset
// (modulo the ring size, or into the header when the top bit is set), a
// byte selecting the width, and a 32-bit value. trunc shortens the memory.
func FuzzReader(f *testing.F) {
	opts := Options{DataSize: 4096, Slots: 16, ConfigSize: 64}
	patch := func(off uint32, width byte, v uint32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, off)
		b = append(b, width)
		return binary.LittleEndian.AppendUint32(b, v)
	}
	cat := func(ps ...[]byte) []byte {
		var b []byte
		for _, p := range ps {
			b = append(b, p...)
		}
		return b
	}
	l, _ := opts.layout()
	e := uint32(l.indexOff + entrySize) // entry of seq 1
	f.Add([]byte{}, uint16(0))
	f.Add(patch(hMagic, 1, 0), uint16(0))
	f.Add(patch(hWriteSeq, 3, 0xffffffff), uint16(0))
	f.Add(patch(hWriteSeq, 1, 0), uint16(0))
	f.Add(patch(hWriteSeq, 1, 500), uint16(0))
	f.Add(patch(hSyncSeq, 1, 7), uint16(0))
	f.Add(patch(hReserve, 1, 3), uint16(0))
	f.Add(patch(hDataSize, 1, 1<<20), uint16(0))
	f.Add(patch(hSlots, 1, 32), uint16(0))
	f.Add(patch(e+eLen, 1, 1<<31), uint16(0))
	f.Add(patch(e+eOff, 1, 4093), uint16(0))
	f.Add(cat(patch(e+eSeq, 1, 2), patch(e+eOff, 1, 8)), uint16(0))
	f.Add(patch(uint32(l.configOff+cLen), 1, 1000), uint16(0))
	f.Add(patch(uint32(l.configOff+cSeq), 1, 3), uint16(0))
	f.Add(patch(areaOff+aTable+sNameLen, 1, 200), uint16(0))
	f.Add(cat(patch(areaOff+aTable+sNameLen, 1, 5), patch(areaOff+aTable+sName, 1, 0x2f2e2e2f)), uint16(0))
	f.Add(patch(areaOff+aTable+sPID, 1, 0xffffffff), uint16(0))
	f.Add(patch(areaOff+aSleepers, 1, 0xffffffff), uint16(0))
	f.Add([]byte{}, uint16(100))
	f.Add([]byte{}, uint16(60000))

	f.Fuzz(func(t *testing.T, patches []byte, trunc uint16) {
		mem := make([]byte, Size(opts))
		r, err := Format(mem, opts, 0)
		if err != nil {
			t.Fatal(err)
		}
		w := NewWriter(r)
		tw := newTestWriter(w, 1000, 3)
		tw.writeN(t, 20) // wraps the 4 KiB data region and the 16 slots
		w.SetConfig(0, Meta{Kind: 1}, []byte("video config"))
		w.SetConfig(2, Meta{Kind: 3}, make([]byte, 64))
		old := NewReader(r, StartGOP)
		tw.writeN(t, 5)

		for ; len(patches) >= 9; patches = patches[9:] {
			raw := binary.LittleEndian.Uint32(patches)
			off := int(raw % uint32(len(mem)))
			if raw&(1<<31) != 0 {
				off = int(raw % pageSize)
			}
			v := binary.LittleEndian.Uint32(patches[5:])
			switch patches[4] % 4 {
			case 0:
				mem[off] = byte(v)
			case 1:
				off &^= 3
				binary.NativeEndian.PutUint32(mem[off:], v)
			case 2:
				off &^= 7
				binary.NativeEndian.PutUint64(mem[off:], uint64(v))
			case 3:
				off &^= 7
				binary.NativeEndian.PutUint64(mem[off:], uint64(v)<<32|uint64(v))
			}
		}
		mem = mem[:len(mem)-int(trunc)%len(mem)]

		ok := func(err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrEnded) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		read := func(rd *Reader) {
			var buf []byte
			for range 100 {
				rec, err := rd.Next(buf)
				ok(err)
				if err != nil {
					return
				}
				buf = rec.Payload
			}
		}
		// The reader created before the damage keeps its view.
		read(old)
		old.Configs()
		r.Stats()
		r.Reclaim()
		// The writer keeps writing (and waking) through damaged reader state.
		for range 3 {
			if err := tw.write(); err != nil && !errors.Is(err, ErrEnded) {
				t.Fatalf("write: %v", err) // the ended flag may have been hit
			}
		}
		read(old)
		old.Close()

		a, err := Attach(mem)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Attach: %v", err)
			}
			return
		}
		a.Stats()
		for _, mode := range []StartMode{StartGOP, StartLive} {
			rd := NewReader(a, mode)
			rd.Configs()
			read(rd)
			rd.ready()
			rd.Close()
		}
		a.Reclaim()
		a.End()
	})
}
