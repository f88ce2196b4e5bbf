package config

import (
	"strings"
	"testing"
	"time"
)

func TestAdversarial(t *testing.T) {
	for name, src := range map[string]string{
		"exp9":    "a = 1e999999999\n",
		"exp8":    "a = 1e99999999\n",
		"exp7":    "a = 1e9999999\n",
		"mul":     "a = 1e9999 * 1e9999 * 1e9999\n",
		"neg exp": "a = 1e-999999999\n",
		"nest":    "a = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n",
		"nestobj": "a = " + strings.Repeat("{a=", 20000) + "1" + strings.Repeat("}", 20000) + "\n",
		"paren":   "a = " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + "\n",
		"blocks":  strings.Repeat("a {\n", 20000) + strings.Repeat("}\n", 20000),
		"unclosed": "a = " + strings.Repeat("[", 100000) + "\n",
		"bigint":  "a = " + strings.Repeat("9", 100000) + "\n",
		"longtmpl": "a = \"" + strings.Repeat("${1}", 50000) + "\"\n",
		"for":     "a = [for x in [1,2,3,4,5,6,7,8,9,10]: [for y in [1,2,3,4,5,6,7,8,9,10]: [for z in [1,2,3,4,5,6,7,8,9,10]: x*y*z]]]\n",
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
