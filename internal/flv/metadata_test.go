package flv

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSetDataFrame(t *testing.T) {
	if !IsSetDataFrame(setDataFrameMetaData) || IsSetDataFrame(onMetaData) || IsSetDataFrame(nil) {
		t.Fatal("IsSetDataFrame")
	}
	if got := StripSetDataFrame(setDataFrameMetaData); !bytes.Equal(got, onMetaData) {
		t.Fatalf("StripSetDataFrame = %x", got)
	}
	if got := StripSetDataFrame(onMetaData); !bytes.Equal(got, onMetaData) {
		t.Fatal("StripSetDataFrame changed unwrapped data")
	}
	if got := AppendSetDataFrame(nil, onMetaData); !bytes.Equal(got, setDataFrameMetaData) {
		t.Fatalf("AppendSetDataFrame = %x", got)
	}
	if got := AppendSetDataFrame([]byte{1}, setDataFrameMetaData); !bytes.Equal(got, cat([]byte{1}, setDataFrameMetaData)) {
		t.Fatal("AppendSetDataFrame wrapped twice")
	}
}

func TestMetadataFromAMF0(t *testing.T) {
	want := map[string]any{
		"width": 1280.0, "height": 720.0, "stereo": true,
		"encoder": "obs-output module (libobs version 30.0.0)",
	}
	for name, in := range map[string][]byte{"onMetaData": onMetaData, "@setDataFrame": setDataFrameMetaData} {
		t.Run(name, func(t *testing.T) {
			got, err := MetadataFromAMF0(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestMetadataValueTypes(t *testing.T) {
	date := time.Date(2024, 5, 6, 7, 8, 9, 10e6, time.UTC)
	in := cat(
		amf0Str("onMetaData"),
		[]byte{0x03}, // object
		amf0Key("null"), []byte{0x05},
		amf0Key("undefined"), []byte{0x06},
		amf0Key("false"), []byte{0x01, 0x00},
		amf0Key("long"), []byte{0x0c, 0, 0, 0, 3}, []byte("abc"),
		amf0Key("xml"), []byte{0x0f, 0, 0, 0, 2}, []byte("<a"),
		amf0Key("date"), []byte{0x0b}, AppendAMF0Number(nil, float64(date.UnixMilli()))[1:], []byte{0x01, 0xe0},
		amf0Key("list"), []byte{0x0a, 0, 0, 0, 2}, amf0Num720, amf0Str("x"),
		amf0Key("typed"), []byte{0x10}, amf0Key("Class"), amf0Key("k"), amf0True, amf0End,
		amf0Key("ecma"), []byte{0x08, 0, 0, 0, 0}, amf0Key("k"), amf0Num1280, amf0End,
		amf0Key(""), amf0Num720, // an empty name that is not the end marker
		amf0End,
		[]byte("trailing bytes are ignored"),
	)
	got, err := MetadataFromAMF0(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"null": nil, "undefined": nil, "false": false, "long": "abc", "xml": "<a",
		"date": date, "list": []any{720.0, "x"},
		"typed": map[string]any{"k": true}, "ecma": map[string]any{"k": 1280.0},
		"": 720.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

func TestMetadataECMAWithoutEndMarker(t *testing.T) {
	in := cat(amf0Str("onMetaData"), []byte{0x08, 0, 0, 0, 1}, amf0Key("width"), amf0Num1280)
	got, err := MetadataFromAMF0(in)
	if err != nil || got["width"] != 1280.0 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func nested(depth int) []byte {
	b := amf0Str("onMetaData")
	b = append(b, 0x03)
	for i := 1; i < depth; i++ {
		b = append(b, amf0Key("a")...)
		b = append(b, 0x03)
	}
	for i := 0; i < depth; i++ {
		b = append(b, amf0End...)
	}
	return b
}

func TestMetadataErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "1 bytes needed, 0 left"},
		{"other name", cat(amf0Str("onTextData"), []byte{0x03}, amf0End), ErrNotMetadata, "onTextData"},
		{"name not a string", cat(amf0Num720, []byte{0x03}, amf0End), ErrNotMetadata, ""},
		{"value not a map", cat(amf0Str("onMetaData"), amf0Num720), ErrMalformed, "holds a float64"},
		{"no value", amf0Str("onMetaData"), ErrMalformed, "1 bytes needed"},
		{"truncated string", []byte{0x02, 0x00, 0x0a, 'o', 'n'}, ErrMalformed, "10 bytes needed, 2 left"},
		{"truncated long string", cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("s"), []byte{0x0c, 0xff, 0xff, 0xff, 0xff, 'a'}), ErrMalformed, "long string of 4294967295 bytes"},
		{"object without end", cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("width"), amf0Num1280), ErrMalformed, "needed"},
		{"truncated number", cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("w"), amf0Num1280[:5]), ErrMalformed, "8 bytes needed, 4 left"},
		{"huge strict array", cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("l"), []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x05}), ErrMalformed, "strict array of 4294967295 values"},
		{"amf3", cat(amf0Str("onMetaData"), []byte{0x11, 0x0a}), ErrMalformed, "AMF3"},
		{"reference", cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("r"), []byte{0x07, 0, 1}, amf0End), ErrMalformed, "marker 0x07"},
		{"movieclip", cat(amf0Str("onMetaData"), []byte{0x04}), ErrMalformed, "marker 0x04"},
		{"stray object end", cat(amf0Str("onMetaData"), []byte{0x09}), ErrMalformed, "marker 0x09"},
		{"unknown marker", cat(amf0Str("onMetaData"), []byte{0x42}), ErrMalformed, "marker 0x42"},
		{"nan date", cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("d"), []byte{0x0b, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0, 0}, amf0End), ErrMalformed, "out of range"},
		{"huge date", cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("d"), []byte{0x0b}, AppendAMF0Number(nil, 1e300)[1:], []byte{0, 0}, amf0End), ErrMalformed, "out of range"},
		{"depth 17", nested(17), ErrMalformed, "nested deeper than 16"},
		{"depth 100000", nested(100000), ErrMalformed, "nested deeper than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := MetadataFromAMF0(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.msg)
			}
			if m != nil {
				t.Fatalf("map %v returned with error", m)
			}
		})
	}
	if _, err := MetadataFromAMF0(nested(16)); err != nil {
		t.Fatalf("depth 16: %v", err)
	}
}

// TestMetadataTruncations feeds every prefix of a valid message: each must
// fail cleanly or decode, never panic.
func TestMetadataTruncations(t *testing.T) {
	full, err := AppendMetadata(nil, map[string]any{
		"a": map[string]any{"b": []any{1.0, "two", nil, true}},
		"d": time.UnixMilli(1700000000000).UTC(), "s": "str",
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range full {
		_, _ = MetadataFromAMF0(full[:i])
	}
	if _, err := MetadataFromAMF0(full); err != nil {
		t.Fatal(err)
	}
}

func TestAppendMetadata(t *testing.T) {
	md := map[string]any{
		"width": 1280, "height": int64(720), "framerate": float32(29.97), "videocodecid": uint8(7),
		"stereo": true, "encoder": "rill", "nothing": nil,
		"created":   time.UnixMilli(1700000000123).UTC(),
		"keyframes": map[string]any{"times": []any{0.0, 2.0}, "filepositions": []any{13.0, 9000.0}},
		"long":      strings.Repeat("x", 70000),
	}
	b, err := AppendMetadata([]byte("prefix"), md)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.TrimPrefix(b, []byte("prefix"))
	if !bytes.HasPrefix(b, cat(amf0Str("onMetaData"), []byte{0x08, 0, 0, 0, byte(len(md))})) {
		t.Fatalf("header %x", b[:20])
	}
	got, err := MetadataFromAMF0(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"width": 1280.0, "height": 720.0, "framerate": float64(float32(29.97)), "videocodecid": 7.0,
		"stereo": true, "encoder": "rill", "nothing": nil,
		"created":   time.UnixMilli(1700000000123).UTC(),
		"keyframes": map[string]any{"times": []any{0.0, 2.0}, "filepositions": []any{13.0, 9000.0}},
		"long":      strings.Repeat("x", 70000),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip = %v", got)
	}
	again, err := AppendMetadata(nil, got)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs (%v)", err)
	}
	ecmaBody := bytes.TrimPrefix(b, amf0Str("onMetaData"))
	if got, err := MetadataFromAMF0(cat(amf0Str("onMetaData"), ecmaBody)); err != nil || len(got) != len(md) {
		t.Fatal("decode of re-wrapped body failed")
	}
}

func TestAppendMetadataErrors(t *testing.T) {
	deep := map[string]any{}
	cur := deep
	for i := 0; i < 20; i++ {
		next := map[string]any{}
		cur["a"] = next
		cur = next
	}
	tests := []struct {
		name string
		md   map[string]any
		msg  string
	}{
		{"unsupported type", map[string]any{"c": make(chan int)}, "type chan int"},
		{"nested unsupported", map[string]any{"l": []any{struct{}{}}}, "type struct {}"},
		{"too deep", deep, "nested deeper than 16"},
		{"long key", map[string]any{strings.Repeat("k", 70000): 1}, "property name of 70000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{9}
			out, err := AppendMetadata(dst, tt.md)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
			if !bytes.Equal(out, dst) {
				t.Fatal("dst changed on error")
			}
		})
	}
	if b, err := AppendMetadata(nil, map[string]any{"nan": math.NaN()}); err != nil {
		t.Fatal(err)
	} else if m, err := MetadataFromAMF0(b); err != nil || !math.IsNaN(m["nan"].(float64)) {
		t.Fatalf("NaN round trip: %v %v", m, err)
	}
}
