// Package ldaptest runs a real OpenLDAP slapd for tests: its own throwaway configuration and database in a temp
// dir, plain LDAP and LDAPS (StartTLS works on the plain port) on loopback ports, a test CA, and a seeded tree of
// people and groups. scripts/test.sh installs Debian's slapd and ldap-utils when they are missing.
package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The seeded tree.
const (
	BaseDN        = "dc=example,dc=org"
	AdminDN       = "cn=admin," + BaseDN
	AdminPassword = "admin-secret"
	// ReaderDN is a service account that may read the tree, for sources' ldap_bind_dn.
	ReaderDN       = "cn=reader,ou=services," + BaseDN
	ReaderPassword = "reader-secret"
	PeopleDN       = "ou=people," + BaseDN
	GroupsDN       = "ou=groups," + BaseDN
	// OpsGroupDN lists alice and bob; DevGroupDN lists carol (as a groupOfUniqueNames).
	OpsGroupDN = "cn=ops," + GroupsDN
	DevGroupDN = "cn=dev," + GroupsDN
)

// Users are the seeded people: uid to password.
var Users = map[string]string{"alice": "alice-pass-1", "bob": "bob-pass-1", "carol": "carol-pass-1"}

// Server is a running slapd.
type Server struct {
	Host    string // 127.0.0.1
	Port    int    // plain LDAP (and StartTLS)
	TLSPort int    // LDAPS
	CAPEM   string // the test CA that issued the server certificate
	dir     string
	cmd     *exec.Cmd
	done    chan error
}

const seed = `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=org
objectClass: organizationalUnit
ou: services

dn: cn=reader,ou=services,dc=example,dc=org
objectClass: person
cn: reader
sn: reader
userPassword: reader-secret

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Adams
sn: Adams
mail: alice@example.org
businessCategory: oncall
userPassword: alice-pass-1

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Brown
sn: Brown
mail: bob@example.org
userPassword: bob-pass-1

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol Clark
sn: Clark
mail: carol@example.org
userPassword: carol-pass-1

dn: cn=ops,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ops
member: uid=alice,ou=people,dc=example,dc=org
member: uid=bob,ou=people,dc=example,dc=org

dn: cn=dev,ou=groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: dev
uniqueMember: uid=carol,ou=people,dc=example,dc=org
`

const config = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {{dir}}/slapd.pid
TLSCACertificateFile {{dir}}/ca.pem
TLSCertificateFile {{dir}}/server.pem
TLSCertificateKeyFile {{dir}}/server.key
database mdb
maxsize 67108864
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-secret
directory {{dir}}/db
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`

// slapdPath finds slapd, which Debian keeps in /usr/sbin (often off a test runner's PATH).
func slapdPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := "/usr/sbin/" + name
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found: install Debian's slapd and ldap-utils (scripts/test.sh does)", name)
	}
	return p, nil
}

// Start runs a seeded slapd until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	slapd, err := slapdPath("slapd")
	if err != nil {
		t.Fatal(err)
	}
	slapadd, err := slapdPath("slapadd")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Server{Host: "127.0.0.1", dir: dir}
	s.CAPEM = writeCerts(t, dir)
	conf := filepath.Join(dir, "slapd.conf")
	write(t, conf, string(bytes.ReplaceAll([]byte(config), []byte("{{dir}}"), []byte(dir))))
	write(t, filepath.Join(dir, "seed.ldif"), seed)
	if out, err := exec.Command(slapadd, "-f", conf, "-l", filepath.Join(dir, "seed.ldif")).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.Port, s.TLSPort = freePort(t), freePort(t)
		urls := fmt.Sprintf("ldap://%s:%d/ ldaps://%s:%d/", s.Host, s.Port, s.Host, s.TLSPort)
		var logs bytes.Buffer
		// -d keeps slapd in the foreground, so the test owns the process; run as root, it needs no -u/-g.
		cmd := exec.Command(slapd, "-f", conf, "-h", urls, "-d", "0")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start slapd: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if lastErr = waitListening(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), done); lastErr == nil {
			s.cmd, s.done = cmd, done
			t.Cleanup(s.Stop)
			return s
		}
		cmd.Process.Kill()
		lastErr = fmt.Errorf("%w\n%s", lastErr, logs.String())
	}
	t.Fatalf("slapd did not start: %v", lastErr)
	return nil
}

func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("slapd exited: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("slapd not listening on %s", addr)
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func write(t testing.TB, path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Stop kills slapd and waits for it to exit, so the directory is unreachable when Stop returns. Calling it twice
// is harmless.
func (s *Server) Stop() {
	if s.done == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.done = nil
}

// Admin returns a connection bound as the root DN, for changing the tree during a test.
func (s *Server) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(fmt.Sprintf("ldap://%s:%d", s.Host, s.Port))
	if err != nil {
		t.Fatalf("dial slapd: %v", err)
	}
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		t.Fatalf("bind as admin: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// DeleteUser removes a person and their group memberships.
func (s *Server) DeleteUser(t testing.TB, uid string) {
	t.Helper()
	c := s.Admin(t)
	dn := "uid=" + uid + "," + PeopleDN
	for _, g := range []struct{ dn, attr string }{{OpsGroupDN, "member"}, {DevGroupDN, "uniqueMember"}} {
		m := ldap.NewModifyRequest(g.dn, nil)
		m.Delete(g.attr, []string{dn})
		if err := c.Modify(m); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
			t.Fatalf("remove %s from %s: %v", uid, g.dn, err)
		}
	}
	if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("delete %s: %v", dn, err)
	}
}

// AddUser adds a person with a password.
func (s *Server) AddUser(t testing.TB, uid, password string) {
	t.Helper()
	a := ldap.NewAddRequest("uid="+uid+","+PeopleDN, nil)
	a.Attribute("objectClass", []string{"inetOrgPerson"})
	a.Attribute("uid", []string{uid})
	a.Attribute("cn", []string{uid})
	a.Attribute("sn", []string{uid})
	a.Attribute("userPassword", []string{password})
	if err := s.Admin(t).Add(a); err != nil {
		t.Fatalf("add %s: %v", uid, err)
	}
}

// AddToGroup adds a person to a groupOfNames.
func (s *Server) AddToGroup(t testing.TB, uid, groupDN string) {
	t.Helper()
	m := ldap.NewModifyRequest(groupDN, nil)
	m.Add("member", []string{"uid=" + uid + "," + PeopleDN})
	if err := s.Admin(t).Modify(m); err != nil {
		t.Fatalf("add %s to %s: %v", uid, groupDN, err)
	}
}

// writeCerts creates a test CA and a server certificate for 127.0.0.1 and localhost, and returns the CA PEM.
func writeCerts(t testing.TB, dir string) string {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ldaptest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	write(t, filepath.Join(dir, "ca.pem"), caPEM)
	write(t, filepath.Join(dir, "server.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, filepath.Join(dir, "server.key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return caPEM
}
