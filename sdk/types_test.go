package sdk

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/wire"
)

// TestNoWireAliases: the SDK's public types are its own, not aliases of the
// wire protocol's (a plugin author's godoc and source never see sdk/wire).
func TestNoWireAliases(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pkgs["sdk"].Files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				if ts.Assign.IsValid() {
					t.Errorf("type %s is an alias: the SDK owns its types", ts.Name.Name)
				}
			}
		}
	}
}

// TestTypesMirrorWire: every field of the wire types has its twin in the
// SDK's, and the conversions carry each one (a field added to the protocol
// and not to the SDK fails here).
func TestTypesMirrorWire(t *testing.T) {
	for _, pair := range [][2]any{
		{StreamRef{}, wire.StreamRef{}}, {ClientInfo{}, wire.ClientInfo{}}, {StreamEvent{}, wire.StreamEvent{}},
		{ClientStat{}, wire.ClientStat{}}, {Stats{}, wire.Stats{}}, {Listener{}, wire.Listener{}},
	} {
		a, b := reflect.TypeOf(pair[0]), reflect.TypeOf(pair[1])
		if a.NumField() != b.NumField() {
			t.Errorf("%s has %d fields, %s %d", a, a.NumField(), b, b.NumField())
			continue
		}
		for i := 0; i < b.NumField(); i++ {
			if fa, ok := a.FieldByName(b.Field(i).Name); !ok || fa.Tag != b.Field(i).Tag {
				t.Errorf("%s.%s has no twin (same name and tag) in %s", b, b.Field(i).Name, a)
			}
		}
	}
	ref := StreamRef{Vhost: "v", App: "a", Stream: "s", Param: "?k=1", TcURL: "rtmp://h/a"}
	cl := ClientInfo{ID: "c", IP: "127.0.0.1", Type: "rtmp-play", PageURL: "p", SwfURL: "w", Plugin: "rtmp"}
	if got := refFromWire(ref.wire()); got != ref {
		t.Errorf("StreamRef round trip %+v", got)
	}
	if got := clientFromWire(cl.wire()); got != cl {
		t.Errorf("ClientInfo round trip %+v", got)
	}
	ev := wire.StreamEvent{Type: wire.StreamUnwanted, Stream: ref.wire(), StreamID: "id", Ring: "r", Publisher: cl.wire()}
	if got := eventFromWire(ev); got != (StreamEvent{Type: StreamUnwanted, Stream: ref, StreamID: "id", Ring: "r", Publisher: cl}) {
		t.Errorf("StreamEvent %+v", got)
	}
	st := Stats{Clients: []ClientStat{{Client: cl, Stream: ref, Publish: true, Alive: time.Second, SendBytes: 1, RecvBytes: 2, URL: "u"}}, Counters: map[string]uint64{"x": 1}}
	w := st.wire()
	if len(w.Clients) != 1 || w.Clients[0] != (wire.ClientStat{Client: cl.wire(), Stream: ref.wire(), Publish: true, Alive: time.Second, SendBytes: 1, RecvBytes: 2, URL: "u"}) || w.Counters["x"] != 1 {
		t.Errorf("Stats %+v", w)
	}
	if StreamPublished != StreamEventType(wire.StreamPublished) || StreamWanted != StreamEventType(wire.StreamWanted) ||
		StreamUnpublished != StreamEventType(wire.StreamUnpublished) || StreamUnwanted != StreamEventType(wire.StreamUnwanted) {
		t.Error("event type values differ from the wire's")
	}
}
