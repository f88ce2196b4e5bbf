package avcodec

import (
	"testing"

	"github.com/rill-media/rill/sdk/media"
)

// FuzzDecode feeds arbitrary frames to every decoder: errors are fine,
// crashes and hangs are not.
func FuzzDecode(f *testing.F) {
	enc, err := NewEncoder(media.CodecAAC, Format{44100, 2}, 0)
	if err != nil {
		f.Fatal(err)
	}
	frames, _ := enc.Encode(nil, sine(Format{44100, 2}, 440, 0, 4096))
	asc := enc.Config()
	enc.Close()
	for _, fr := range frames {
		f.Add(uint8(0), fr.Data)
	}
	oenc, err := NewEncoder(media.CodecOpus, Format{48000, 2}, 0)
	if err != nil {
		f.Fatal(err)
	}
	oframes, _ := oenc.Encode(nil, sine(Format{48000, 2}, 440, 0, 4096))
	oenc.Close()
	for _, fr := range oframes {
		f.Add(uint8(1), fr.Data)
	}
	f.Add(uint8(2), []byte{0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0})
	f.Add(uint8(3), []byte{0xd5, 0x55, 0x2a})
	codecs := []struct {
		c   media.Codec
		cfg []byte
	}{{media.CodecAAC, asc}, {media.CodecOpus, nil}, {media.CodecMP3, nil}, {media.CodecG711A, nil}, {media.CodecG711U, nil}}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		c := codecs[int(which)%len(codecs)]
		d, err := NewDecoder(c.c, c.cfg, Format{}, Format{48000, 2})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for range 3 { // state carried between frames
			pcm, err := d.Decode(nil, data)
			if err == nil && len(pcm)%2 != 0 {
				t.Fatalf("%s: %d floats for stereo", c.c, len(pcm))
			}
		}
	})
}
