package main

import (
	"net"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

const catalogXML = `<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>1</SN>
<DeviceID>34020000001320000001</DeviceID>
<SumNum>1</SumNum>
<DeviceList Num="1">
<Item><DeviceID>34020000001310000001</DeviceID><Name>NAME</Name><Status>ON</Status></Item>
</DeviceList>
</Response>`

func TestParseMANSCDPGB2312(t *testing.T) {
	name, err := simplifiedchinese.GBK.NewEncoder().String("大门")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMANSCDP([]byte(strings.Replace(catalogXML, "NAME", name, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if m.CmdType != "Catalog" || len(m.Items) != 1 || m.Items[0].DeviceID != "34020000001310000001" || m.Items[0].Name != "大门" {
		t.Fatalf("parsed %+v", m)
	}
}

func TestParseMANSCDPBad(t *testing.T) {
	cases := map[string]string{
		"not xml":         "hello",
		"no cmdtype":      `<Notify><DeviceID>34020000001320000001</DeviceID></Notify>`,
		"bad device id":   `<Notify><CmdType>Keepalive</CmdType><DeviceID>../x</DeviceID></Notify>`,
		"bad channel id":  strings.Replace(catalogXML, "34020000001310000001", "a b", 1),
		"unknown charset": strings.Replace(catalogXML, "GB2312", "EBCDIC", 1),
		"huge":            "<Notify>" + strings.Repeat(" ", maxBody) + "</Notify>",
		"truncated":       catalogXML[:len(catalogXML)/2],
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseMANSCDP([]byte(body)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzMANSCDP(f *testing.F) {
	f.Add([]byte(catalogXML))
	f.Add([]byte(`<Notify><CmdType>Keepalive</CmdType><SN>3</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status></Notify>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMANSCDP(b)
		if err != nil {
			return
		}
		if !idRE.MatchString(m.DeviceID) {
			t.Fatalf("accepted a bad device id %q", m.DeviceID)
		}
		for _, it := range m.Items {
			if !idRE.MatchString(it.DeviceID) {
				t.Fatalf("accepted a bad channel id %q", it.DeviceID)
			}
		}
	})
}

func TestAnswerAddr(t *testing.T) {
	for _, tc := range []struct {
		name, sdp, want string
	}{
		{"session c", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=video 15060 TCP/RTP/AVP 96\r\na=setup:passive\r\ny=0100000001\r\nf=\r\n", "10.0.0.5:15060"},
		{"media c wins", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 1 RTP/AVP 8\r\nm=video 2000 TCP/RTP/AVP 96\r\nc=IN IP4 10.0.0.6\r\n", "10.0.0.6:2000"},
		{"no video", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 1 RTP/AVP 8\r\n", ""},
		{"bad port", "v=0\r\nc=IN IP4 10.0.0.5\r\nm=video 99999 TCP/RTP/AVP 96\r\n", ""},
		{"host name", "v=0\r\nc=IN IP4 camera.local\r\nm=video 2000 TCP/RTP/AVP 96\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := answerAddr([]byte(tc.sdp))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzAnswerAddr(f *testing.F) {
	f.Add([]byte("v=0\r\nc=IN IP4 10.0.0.5\r\nm=video 15060 TCP/RTP/AVP 96\r\ny=0100000001\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := answerAddr(b); err == nil {
			if _, _, err := net.SplitHostPort(a); err != nil {
				t.Fatalf("answerAddr returned %q", a)
			}
		}
	})
}
