package wire

import (
	"errors"
	"fmt"
	"sort"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rill-media/rill/sdk/internal/pb"
)

// TestNoMediaField checks the protocol has no field that could carry media:
// the only bytes fields are configuration JSON and the bodies of small
// plugin-provided HTTP API routes (media never crosses gRPC: it goes through the rings).
func TestNoMediaField(t *testing.T) {
	allowed := map[string]bool{
		"rill.plugin.v1.ConfigureRequest.settings_json": true,
		"rill.plugin.v1.VhostConfig.settings_json":      true,
		"rill.plugin.v1.VhostConfig.vhost_json":         true,
		"rill.plugin.v1.HTTPRequest.body":               true,
		"rill.plugin.v1.HTTPResponse.body":              true,
	}
	fd := pb.File_rill_plugin_v1_plugin_proto
	var found []string
	var walk func(msgs protoreflect.MessageDescriptors)
	walk = func(msgs protoreflect.MessageDescriptors) {
		for i := 0; i < msgs.Len(); i++ {
			m := msgs.Get(i)
			for j := 0; j < m.Fields().Len(); j++ {
				f := m.Fields().Get(j)
				if f.Kind() == protoreflect.BytesKind {
					found = append(found, string(f.FullName()))
				}
			}
			walk(m.Messages())
		}
	}
	walk(fd.Messages())
	sort.Strings(found)
	for _, f := range found {
		if !allowed[f] {
			t.Errorf("bytes field %s is not on the allow-list: media must travel through shm rings", f)
		}
	}
	if len(found) != len(allowed) {
		t.Errorf("bytes fields %v, allow-list has %d", found, len(allowed))
	}
}

func TestErrorsSurviveStatus(t *testing.T) {
	cases := []error{ErrStreamBusy, ErrForbidden, ErrNotFound, ErrTimeout, ErrUnavailable, ErrInvalid}
	for _, sentinel := range cases {
		t.Run(sentinel.Error(), func(t *testing.T) {
			orig := Errorf(sentinel, "stream %s", "live/x")
			back := FromStatus(ToStatus(orig))
			if !errors.Is(back, sentinel) {
				t.Fatalf("errors.Is lost: %v", back)
			}
			if back.Error() != orig.Error() {
				t.Fatalf("message changed: %q -> %q", orig, back)
			}
		})
	}
	plain := fmt.Errorf("boom")
	if back := FromStatus(ToStatus(plain)); back.Error() != "boom" {
		t.Fatalf("plain error: %v", back)
	}
	if FromStatus(nil) != nil || ToStatus(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}
