package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// SyncError is a failed sync or lookup with the status code the source reports for it.
type SyncError struct {
	Code string
	Err  error
}

func (e *SyncError) Error() string { return strings.ToLower(e.Code) + ": " + e.Err.Error() }
func (e *SyncError) Unwrap() error { return e.Err }

// dialTimeout bounds connecting, TLS and each LDAP operation, so an unreachable server fails a sync in seconds.
const dialTimeout = 10 * time.Second

// pageSize is the simple-paged-results size of user and group searches; servers cap a single answer (AD at 1000).
const pageSize = 500

// ldapConn is an open, bound-or-not connection to one LDAP source.
type ldapConn struct {
	c   *ldap.Conn
	cfg *Connection
}

// dialLDAP connects to the source with its protocol: plain, LDAPS, or plain upgraded with StartTLS. TLS verifies
// the server against tls_trust_anchors (or the system roots) and the configured address.
func dialLDAP(ctx context.Context, cfg *Connection) (*ldapConn, error) {
	addr := net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
	var tlsCfg *tls.Config
	if cfg.LDAPProtocol == ProtocolLDAPS || cfg.LDAPProtocol == ProtocolStartTLS {
		tlsCfg = &tls.Config{ServerName: cfg.Address, MinVersion: tls.VersionTLS12}
		if cfg.TLSTrustAnchors != "" {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM([]byte(cfg.TLSTrustAnchors))
			tlsCfg.RootCAs = pool
		}
	}
	dialer := &net.Dialer{Timeout: dialTimeout}
	if dl, ok := ctx.Deadline(); ok {
		dialer.Deadline = dl
	}
	var opts []ldap.DialOpt
	opts = append(opts, ldap.DialWithDialer(dialer))
	url := "ldap://" + addr
	if cfg.LDAPProtocol == ProtocolLDAPS {
		url = "ldaps://" + addr
		opts = append(opts, ldap.DialWithTLSConfig(tlsCfg))
	}
	c, err := ldap.DialURL(url, opts...)
	if err != nil {
		return nil, &SyncError{StatusConnectionFailed, fmt.Errorf("connect to %s: %w", addr, err)}
	}
	c.SetTimeout(dialTimeout)
	if cfg.LDAPProtocol == ProtocolStartTLS {
		if err := c.StartTLS(tlsCfg); err != nil {
			c.Close()
			return nil, &SyncError{StatusConnectionFailed, fmt.Errorf("starttls with %s: %w", addr, err)}
		}
	}
	return &ldapConn{c: c, cfg: cfg}, nil
}

func (l *ldapConn) Close() { l.c.Close() }

// bindService binds with the source's service account, or stays anonymous when none is set.
func (l *ldapConn) bindService(password string) error {
	if l.cfg.LDAPBindDN == "" {
		return nil
	}
	if err := l.c.Bind(l.cfg.LDAPBindDN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
			return &SyncError{StatusConnectionFailed, fmt.Errorf("bind as %s: %w", l.cfg.LDAPBindDN, err)}
		}
		return &SyncError{StatusBindFailed, fmt.Errorf("bind as %s: %w", l.cfg.LDAPBindDN, err)}
	}
	return nil
}

// userAttributes are the attributes read of each user entry.
func (l *ldapConn) userAttributes() []string {
	var out []string
	for _, k := range []string{"username", "email", "full_name", "member_of", "tags"} {
		if a := l.cfg.attribute(k); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// searchUsers returns the entries under ldap_base matching ldap_user_filter and extra (ANDed, if set).
func (l *ldapConn) searchUsers(extra string) ([]*ldap.Entry, error) {
	filter := l.cfg.LDAPUserFilter
	if extra != "" {
		filter = "(&" + filter + extra + ")"
	}
	req := ldap.NewSearchRequest(l.cfg.LDAPBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0,
		int(dialTimeout.Seconds()), false, filter, l.userAttributes(), nil)
	res, err := l.c.SearchWithPaging(req, pageSize)
	if err != nil {
		return nil, &SyncError{StatusSearchFailed, fmt.Errorf("search users under %s: %w", l.cfg.LDAPBase, err)}
	}
	return res.Entries, nil
}

// groupsByMember maps each member DN (normalized) to the DNs of the groups that list it: every group, or with
// memberDN set only the groups listing that one member.
func (l *ldapConn) groupsByMember(memberDN string) (map[string][]string, error) {
	filter, attr := l.cfg.attribute("group_filter"), l.cfg.attribute("group_member")
	out := map[string][]string{}
	if filter == "" || attr == "" {
		return out, nil
	}
	attrs := []string{attr}
	if strings.EqualFold(attr, "member") {
		attrs = append(attrs, "uniqueMember") // groupOfUniqueNames lists members there
	}
	if memberDN != "" {
		var anyOf strings.Builder
		for _, a := range attrs {
			anyOf.WriteString("(" + ldap.EscapeFilter(a) + "=" + ldap.EscapeFilter(memberDN) + ")")
		}
		filter = "(&" + filter + "(|" + anyOf.String() + "))"
	}
	req := ldap.NewSearchRequest(l.cfg.LDAPBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0,
		int(dialTimeout.Seconds()), false, filter, attrs, nil)
	res, err := l.c.SearchWithPaging(req, pageSize)
	if err != nil {
		return nil, &SyncError{StatusSearchFailed, fmt.Errorf("search groups under %s: %w", l.cfg.LDAPBase, err)}
	}
	for _, g := range res.Entries {
		for _, a := range attrs {
			for _, m := range g.GetAttributeValues(a) {
				// uniqueMember may carry an optional "#uid" suffix.
				if i := strings.LastIndex(m, "#'"); i > 0 {
					m = m[:i]
				}
				key := store.NormalizeDN(m)
				out[key] = append(out[key], g.DN)
			}
		}
	}
	return out, nil
}

// toUser turns an entry into a directory user; ok is false for entries without a username.
func (l *ldapConn) toUser(e *ldap.Entry, groups map[string][]string) (store.DirectoryUser, bool) {
	u := store.DirectoryUser{
		ExternalID: e.DN,
		Username:   e.GetAttributeValue(l.cfg.attribute("username")),
		Email:      e.GetAttributeValue(l.cfg.attribute("email")),
		FullName:   e.GetAttributeValue(l.cfg.attribute("full_name")),
	}
	if a := l.cfg.attribute("member_of"); a != "" {
		u.Groups = append(u.Groups, e.GetAttributeValues(a)...)
	}
	u.Groups = append(u.Groups, groups[store.NormalizeDN(e.DN)]...)
	if a := l.cfg.attribute("tags"); a != "" {
		u.Tags = append(u.Tags, e.GetAttributeValues(a)...)
	}
	return u, u.Username != "" && validUsername(u.Username)
}

// validUsername applies the local store's username rules to names coming from a directory.
func validUsername(name string) bool {
	return len(name) <= 128 && !strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// listUsers reads every user of the source with its groups, bound as the service account.
func listUsers(ctx context.Context, cfg *Connection, bindPassword string) ([]store.DirectoryUser, error) {
	l, err := dialLDAP(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if err := l.bindService(bindPassword); err != nil {
		return nil, err
	}
	entries, err := l.searchUsers("")
	if err != nil {
		return nil, err
	}
	groups, err := l.groupsByMember("")
	if err != nil {
		return nil, err
	}
	users := make([]store.DirectoryUser, 0, len(entries))
	for _, e := range entries {
		if u, ok := l.toUser(e, groups); ok {
			users = append(users, u)
		}
	}
	return users, nil
}

// errBadCredentials is a failed user bind: wrong password, unknown or filtered-out user.
var errBadCredentials = errors.New("invalid directory credentials")

// authenticate binds as the user with password and, on success, reads the user back as the service account
// (the user must still match ldap_user_filter, so a disabled AD account cannot log in between syncs).
func authenticate(ctx context.Context, cfg *Connection, bindPassword, username, password string) (store.DirectoryUser, error) {
	var none store.DirectoryUser
	if password == "" {
		// An empty password makes a simple bind "unauthenticated" and succeed on many servers.
		return none, errBadCredentials
	}
	l, err := dialLDAP(ctx, cfg)
	if err != nil {
		return none, err
	}
	defer l.Close()
	byName := "(" + ldap.EscapeFilter(cfg.attribute("username")) + "=" + ldap.EscapeFilter(username) + ")"
	var dn string
	if cfg.LDAPUserDNPattern != "" {
		dn = strings.ReplaceAll(cfg.LDAPUserDNPattern, "{0}", ldap.EscapeDN(username))
		if !strings.HasSuffix(store.NormalizeDN(dn), store.NormalizeDN(cfg.LDAPBase)) {
			dn += "," + cfg.LDAPBase
		}
	} else {
		if err := l.bindService(bindPassword); err != nil {
			return none, err
		}
		entries, err := l.searchUsers(byName)
		if err != nil {
			return none, err
		}
		if len(entries) != 1 {
			return none, errBadCredentials
		}
		dn = entries[0].DN
	}
	if err := l.c.Bind(dn, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) || ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return none, errBadCredentials
		}
		return none, &SyncError{StatusBindFailed, fmt.Errorf("bind as user: %w", err)}
	}
	if err := l.bindService(bindPassword); err != nil {
		return none, err
	}
	entries, err := l.searchUsers(byName)
	if err != nil {
		return none, err
	}
	if len(entries) != 1 || store.NormalizeDN(entries[0].DN) != store.NormalizeDN(dn) {
		return none, errBadCredentials
	}
	groups, err := l.groupsByMember(entries[0].DN)
	if err != nil {
		return none, err
	}
	u, ok := l.toUser(entries[0], groups)
	if !ok {
		return none, errBadCredentials
	}
	return u, nil
}
