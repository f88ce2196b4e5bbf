package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestAPIBasicAuthAndHTTPS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	cfg := patternConfig()
	cfg.Extra = fmt.Sprintf("api {\n  username = \"admin\"\n  password = \"s3cret\"\n  https_listen = \"127.0.0.1:0\"\n  https_cert = %q\n  https_key = %q\n}\n", cert, key)
	d := StartDaemon(t, cfg)
	get := func(c *http.Client, url string, auth bool) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth {
			req.SetBasicAuth("admin", "s3cret")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if code, _ := get(plain, d.API+"/api/v1/versions", false); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: HTTP %d, want 401", code)
	}
	if code, m := get(plain, d.API+"/api/v1/versions", true); code != 200 || m["code"] != 0.0 {
		t.Fatalf("with credentials: HTTP %d %v", code, m)
	}
	m := regexp.MustCompile(`api https: addr=(\S+)`).FindStringSubmatch(d.Log())
	if m == nil {
		t.Fatalf("https address not logged:\n%s", d.Log())
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	tlsc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body := get(tlsc, "https://"+m[1]+"/api/v1/summaries", true); code != 200 || body["code"] != 0.0 {
		t.Fatalf("https: HTTP %d %v", code, body)
	}
	if code, _ := get(tlsc, "https://"+m[1]+"/api/v1/summaries", false); code != http.StatusUnauthorized {
		t.Fatalf("https without credentials: HTTP %d", code)
	}
}
