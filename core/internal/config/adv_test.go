package config

import (
	"strings"
	"testing"
	"time"
)

func TestAdversarial(t *testing.T) {
	for name, src := range map[string]string{
		"bang":  "a = " + strings.Repeat("!", 9990) + "true\n",
		"bang2":  "a = " + strings.Repeat("!", 1000000) + "true\n",
		"plus":  "a = 1" + strings.Repeat(" + 1", 9990) + "\n",
		"tern":  "a = " + strings.Repeat("true ? 1 : ", 9990) + "1\n",
		"idx":   "a = [1]" + strings.Repeat("[0]", 9990) + "\n",
		"nest":  "a = " + strings.Repeat("[", 63) + strings.Repeat("]", 63) + "\n",
		"nest2":  "a = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n",
		"big": "a = [" + strings.Repeat("\"0.0.0.0:1\", ", 1000000) + "]\n",
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("conf.hcl", []byte(src), nil)
			s := err.Error()
			if len(s) > 200 {
				s = s[:200]
			}
			t.Logf("%v: %s", time.Since(start), s)
		})
	}
}
