package main

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
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// benchCA is a throwaway CA: it signs the origin's certificate (which every proxy must verify) and serves as the
// interception CA of squid and of the bare baseline.
type benchCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

func newCA(name string) (*benchCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &benchCA{cert: cert, key: key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})}, nil
}

// leaf issues a server certificate for host and the other names (DNS names or IP addresses).
func (ca *benchCA) leaf(host string, names ...string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range append([]string{host}, names...) {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func (ca *benchCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *benchCA) writeFiles(certPath, keyPath string) error {
	if err := os.WriteFile(certPath, ca.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyPath, ca.keyPEM, 0o600)
}

// targetToken is the target's own credential: the origin accepts nothing else, so a proxy that fails to inject it
// (or lets the client's secret through) shows up as errors.
const targetToken = "bench-upstream-token-0f1e2d3c4b5a"

// origin is the HTTPS API every workload talks to, on loopback, HTTP/1.1 only so that every proxy speaks the same
// protocol upstream. A second listener of the same handler offers HTTP/2 as well, for the direct run of the
// HTTP/2 workload only. Its certificate also names extenderHost, the name the extender endpoint reaches it by.
//
//	GET  /small           a small JSON document
//	GET  /blob?size=N     N bytes, streamed
//	POST /upload          reads the body and answers its length
type origin struct {
	addr     string
	h2addr   string
	srv      *http.Server
	requests atomic.Int64
	badAuth  atomic.Int64
}

var chunk = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

func startOrigin(cl *cleanups, ca *benchCA) (*origin, error) {
	cert, err := ca.leaf("127.0.0.1", extenderHost)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &origin{addr: ln.Addr().String()}
	small, _ := json.Marshal(map[string]any{"id": 42, "name": "widget", "tags": []string{"a", "b", "c"},
		"owner": map[string]string{"team": "platform", "contact": "ops@example.com"}, "enabled": true})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /small", func(w http.ResponseWriter, r *http.Request) {
		if !o.authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(small)))
		w.Write(small)
	})
	mux.HandleFunc("GET /blob", func(w http.ResponseWriter, r *http.Request) {
		if !o.authorized(w, r) {
			return
		}
		n, _ := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(chunk)))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		if !o.authorized(w, r) {
			io.Copy(io.Discard, r.Body)
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"received":%d}`, n)
	})
	o.srv = &http.Server{
		Handler:   mux,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}},
		// An empty map turns HTTP/2 off.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go o.srv.ServeTLS(ln, "", "")
	cl.add(func() { o.srv.Close() })
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o.h2addr = ln2.Addr().String()
	h2 := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go h2.ServeTLS(ln2, "", "")
	cl.add(func() { h2.Close() })
	return o, nil
}

// authorized lets only the target credential through.
func (o *origin) authorized(w http.ResponseWriter, r *http.Request) bool {
	o.requests.Add(1)
	if r.Header.Get("Authorization") != "Bearer "+targetToken || len(r.Header.Values("Authorization")) != 1 {
		o.badAuth.Add(1)
		http.Error(w, "wrong credential", http.StatusUnauthorized)
		return false
	}
	return true
}
