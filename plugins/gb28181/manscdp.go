package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// maxBody bounds a MESSAGE body we parse (THREATS.md row 14).
const maxBody = 64 << 10

// manscdp is a MANSCDP message (GB/T 28181 annex A): a Notify (Keepalive)
// or a Response (Catalog) from a device.
type manscdp struct {
	XMLName  xml.Name
	CmdType  string `xml:"CmdType"`
	SN       string `xml:"SN"`
	DeviceID string `xml:"DeviceID"`
	Status   string `xml:"Status"`
	SumNum   int    `xml:"SumNum"`
	Items    []struct {
		DeviceID     string `xml:"DeviceID"`
		Name         string `xml:"Name"`
		Manufacturer string `xml:"Manufacturer"`
		Status       string `xml:"Status"`
	} `xml:"DeviceList>Item"`
}

// parseMANSCDP decodes a MANSCDP body; GB2312/GBK bodies (the usual
// encoding of cameras) are decoded to UTF-8.
func parseMANSCDP(b []byte) (*manscdp, error) {
	if len(b) > maxBody {
		return nil, fmt.Errorf("manscdp body of %d bytes, limit %d", len(b), maxBody)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "gb2312", "gbk", "gb18030":
			return simplifiedchinese.GB18030.NewDecoder().Reader(r), nil
		case "utf-8", "utf8":
			return r, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
	var m manscdp
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("manscdp: %w", err)
	}
	if m.CmdType == "" || !idRE.MatchString(m.DeviceID) {
		return nil, fmt.Errorf("manscdp: missing CmdType or bad DeviceID %q", m.DeviceID)
	}
	if len(m.Items) > 4096 {
		return nil, fmt.Errorf("manscdp: %d catalog items", len(m.Items))
	}
	for _, it := range m.Items {
		if !idRE.MatchString(it.DeviceID) {
			return nil, fmt.Errorf("manscdp: bad channel id %q", it.DeviceID)
		}
	}
	return &m, nil
}

func catalogQuery(sn int, deviceID string) []byte {
	return fmt.Appendf(nil, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n<SN>%d</SN>\r\n<DeviceID>%s</DeviceID>\r\n</Query>\r\n", sn, deviceID)
}
