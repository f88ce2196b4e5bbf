package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the binary units ParseSize accepts. Decimal units (KB, MB)
// are refused rather than guessed at: a ring size is a power-of-two habit.
var sizeUnits = map[string]int64{
	"":    1,
	"B":   1,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"TiB": 1 << 40,
}

// ParseSize parses a size in bytes: a non-negative integer optionally
// followed by a binary unit, B, KiB, MiB, GiB or TiB, as in "65536",
// "512KiB", "8MiB" or "1 GiB". Fractions, signs and decimal units such as
// "MB" are errors.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: want an integer number of bytes with an optional unit (KiB, MiB, GiB)", s)
	}
	unit := strings.TrimSpace(t[i:])
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KiB, MiB, GiB or TiB)", s, unit)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: %w", s, errSizeRange)
	}
	return n * mult, nil
}

var errSizeRange = errors.New("too large")
