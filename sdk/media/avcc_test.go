package media

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSplitAVCC(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr string // substring; "" means no error
	}{
		{name: "empty", in: nil},
		{name: "one", in: []byte{0, 0, 0, 2, 0x65, 0x88}, want: [][]byte{{0x65, 0x88}}},
		{
			name: "three",
			in:   []byte{0, 0, 0, 1, 0x09, 0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 1, 0x65},
			want: [][]byte{{0x09}, {0x67, 0x42}, {0x65}},
		},
		{name: "short prefix", in: []byte{0, 0, 1}, wantErr: "nalu 0 at offset 0: 3-byte length prefix is cut short"},
		{
			name: "short prefix after nalu", in: []byte{0, 0, 0, 1, 0x09, 0, 0},
			want: [][]byte{{0x09}}, wantErr: "nalu 1 at offset 5: 2-byte length prefix",
		},
		{name: "length past end", in: []byte{0, 0, 0, 5, 0x65, 0x88}, wantErr: "nalu 0 at offset 0: length 5 exceeds the 2 bytes left"},
		{name: "huge length", in: []byte{0xff, 0xff, 0xff, 0xff, 0x65}, wantErr: "length 4294967295 exceeds the 1 bytes left"},
		{name: "zero length", in: []byte{0, 0, 0, 0, 0, 0, 0, 1, 0x65}, wantErr: "nalu 0 at offset 0: zero length"},
		{name: "annexb start code", in: []byte{0, 0, 0, 1, 0x67, 0x42, 0, 0x1e}, want: [][]byte{{0x67}}, wantErr: "nalu 1 at offset 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]byte
			err := SplitAVCC(tt.in, func(n []byte) bool {
				got = append(got, n)
				return true
			})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d nalus, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("nalu %d = %x, want %x", i, got[i], tt.want[i])
				}
			}
			if err2 := SplitAVCC(tt.in, nil); (err2 == nil) != (err == nil) {
				t.Errorf("nil fn: err = %v, with fn: %v", err2, err)
			}
		})
	}
}

func TestSplitAVCCStop(t *testing.T) {
	in := []byte{0, 0, 0, 1, 0x09, 0, 0, 0, 1, 0x65, 0xff} // garbage after the second
	calls := 0
	err := SplitAVCC(in, func([]byte) bool { calls++; return false })
	if err != nil || calls != 1 {
		t.Fatalf("calls = %d, err = %v; want 1, nil", calls, err)
	}
}

func TestSplitAVCCAllocs(t *testing.T) {
	in := []byte{0, 0, 0, 1, 0x09, 0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 1, 0x65}
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		_ = SplitAVCC(in, func([]byte) bool { n++; return true })
	})
	if allocs != 0 {
		t.Fatalf("SplitAVCC allocates %v times per run", allocs)
	}
}
