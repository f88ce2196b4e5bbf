package flv

import "fmt"

// ascInfo holds the fields of an AudioSpecificConfig this package uses.
type ascInfo struct {
	objectType int // audio object type; 5 (SBR) or 29 (PS) for HE-AAC
	sampleRate int // output rate: the SBR extension rate for HE-AAC
	channels   int // 0 when a program config element defines them
}

var ascSampleRates = [13]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// ascChannels maps channelConfiguration to a channel count
// (ISO/IEC 14496-3 Table 1.19); 0 means defined elsewhere or reserved.
var ascChannels = [16]int{0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0}

// parseASC parses an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) far
// enough to validate it and read the object type, rate and channels,
// including the escape codes for object type (31) and explicit rates (15)
// and explicit SBR/PS signalling. Implicitly signalled HE-AAC reads as AAC-LC
// at the core rate, as it does for every parser that only sees the config.
// lal's aac.AscContext is not used: it reads neither escape codes nor the
// SBR extension, and logs through a global logger on a bad rate index.
func parseASC(b []byte) (ascInfo, error) {
	if len(b) < 2 {
		return ascInfo{}, malformed("aac config: %d bytes, want at least 2", len(b))
	}
	r := bitReader{b: b}
	var a ascInfo
	a.objectType = ascObjectType(&r)
	rate, err := ascRate(&r)
	if err != nil {
		return ascInfo{}, err
	}
	a.sampleRate = rate
	a.channels = ascChannels[r.u(4)]
	if a.objectType == 5 || a.objectType == 29 {
		if a.sampleRate, err = ascRate(&r); err != nil {
			return ascInfo{}, err
		}
		if core := ascObjectType(&r); core == 22 { // ER BSAC carries an extra channel config
			r.skip(4)
		}
		if a.objectType == 29 {
			a.channels = 2 // parametric stereo: mono core, stereo output
		}
	}
	if r.err != nil {
		return ascInfo{}, malformed("aac config: %v", r.err)
	}
	if a.objectType == 0 {
		return ascInfo{}, malformed("aac config: audio object type 0")
	}
	return a, nil
}

func ascObjectType(r *bitReader) int {
	t := int(r.u(5))
	if t == 31 {
		t = 32 + int(r.u(6))
	}
	return t
}

func ascRate(r *bitReader) (int, error) {
	i := r.u(4)
	switch {
	case i == 15:
		rate := int(r.u(24))
		if rate == 0 && r.err == nil {
			return 0, malformed("aac config: explicit sampling frequency 0")
		}
		return rate, nil
	case int(i) < len(ascSampleRates):
		return ascSampleRates[i], nil
	}
	return 0, fmt.Errorf("%w: aac config: reserved sampling frequency index %d", ErrMalformed, i)
}

// aacProfile names an AAC audio object type.
func aacProfile(objectType int) string {
	switch objectType {
	case 1:
		return "Main"
	case 2:
		return "LC"
	case 3:
		return "SSR"
	case 4:
		return "LTP"
	case 5:
		return "HE-AAC"
	case 23:
		return "LD"
	case 29:
		return "HE-AACv2"
	case 39:
		return "ELD"
	}
	return fmt.Sprintf("AOT %d", objectType)
}
