package media

import "strconv"

// Kind is the kind of elementary stream a packet belongs to.
type Kind uint8

// The kinds of elementary stream. The zero Kind is invalid.
const (
	KindVideo Kind = 1
	KindAudio Kind = 2
	KindData  Kind = 3
)

// String returns "video", "audio" or "data", or "Kind(N)" for other values.
func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	case KindData:
		return "data"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}
