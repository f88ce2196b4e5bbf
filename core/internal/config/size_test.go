package config

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "65536", want: 65536},
		{in: "100B", want: 100},
		{in: "512KiB", want: 512 << 10},
		{in: "8MiB", want: 8 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: " 16 MiB ", want: 16 << 20},
		{in: "8388607TiB", want: 8388607 << 40},
		{in: "", wantErr: `invalid size "": want an integer number of bytes with an optional unit (KiB, MiB, GiB)`},
		{in: "MiB", wantErr: `invalid size "MiB": want an integer number of bytes with an optional unit (KiB, MiB, GiB)`},
		{in: "-1", wantErr: `invalid size "-1": want an integer number of bytes with an optional unit (KiB, MiB, GiB)`},
		{in: "1.5MiB", wantErr: `invalid size "1.5MiB": unknown unit ".5MiB" (want B, KiB, MiB, GiB or TiB)`},
		{in: "8MB", wantErr: `invalid size "8MB": unknown unit "MB" (want B, KiB, MiB, GiB or TiB)`},
		{in: "8mib", wantErr: `invalid size "8mib": unknown unit "mib" (want B, KiB, MiB, GiB or TiB)`},
		{in: "8388608TiB", wantErr: `invalid size "8388608TiB": too large`},
		{in: "99999999999999999999", wantErr: `invalid size "99999999999999999999": too large`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}
