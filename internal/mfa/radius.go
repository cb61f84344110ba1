package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// RADIUS outcomes callers tell apart with errors.Is.
var (
	// ErrRejected means the RADIUS server answered Access-Reject (or a challenge Gatehouse cannot continue).
	ErrRejected = errors.New("mfa: the second factor was refused")
	// ErrUnavailable means the server could not be asked or did not answer in time.
	ErrUnavailable = errors.New("mfa: the second-factor server cannot be reached")
)

// RADIUS checks second-factor codes with a RADIUS server: an Access-Request whose User-Name is the user's login name
// and whose User-Password (hidden with the shared secret as RFC 2865 section 5.2 prescribes) is the code.
type RADIUS struct {
	// Address and Port locate the server; Port zero means 1812.
	Address string
	Port    int
	// Secret is the shared secret of this client at the server. Required.
	Secret string
	// Timeout bounds one check, retries included; zero means 5 seconds.
	Timeout time.Duration
	// NASIdentifier names Gatehouse to the server; empty means "gatehouse".
	NASIdentifier string
	// RequireMessageAuthenticator refuses an answer without a Message-Authenticator; one that carries it must
	// verify either way.
	RequireMessageAuthenticator bool
}

// Check asks the server whether code is right for username. It returns nil on Access-Accept, ErrRejected on
// Access-Reject or Access-Challenge, and ErrUnavailable (wrapping the cause) when no valid answer came.
func (r *RADIUS) Check(ctx context.Context, username, code string) error {
	if r.Secret == "" {
		return fmt.Errorf("%w: no shared secret is configured", ErrUnavailable)
	}
	port := r.Port
	if port == 0 {
		port = 1812
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	nas := r.NASIdentifier
	if nas == "" {
		nas = "gatehouse"
	}
	p := radius.New(radius.CodeAccessRequest, []byte(r.Secret))
	if err := rfc2865.UserName_SetString(p, username); err != nil {
		return fmt.Errorf("radius user-name: %w", err)
	}
	if err := rfc2865.UserPassword_SetString(p, code); err != nil {
		return fmt.Errorf("radius user-password: %w", err)
	}
	if err := rfc2865.NASIdentifier_SetString(p, nas); err != nil {
		return fmt.Errorf("radius nas-identifier: %w", err)
	}
	if err := signRequest(p); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &radius.Client{Retry: time.Second, MaxPacketErrors: 10}
	resp, err := client.Exchange(ctx, p, net.JoinHostPort(r.Address, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ma := rfc2869.MessageAuthenticator_Get(resp)
	switch {
	case ma != nil && !validResponseAuthenticator(resp, p.Authenticator, ma):
		return fmt.Errorf("%w: the answer's Message-Authenticator does not verify", ErrUnavailable)
	case ma == nil && r.RequireMessageAuthenticator:
		return fmt.Errorf("%w: the answer carries no Message-Authenticator, which this source requires", ErrUnavailable)
	}
	switch resp.Code {
	case radius.CodeAccessAccept:
		return nil
	case radius.CodeAccessReject, radius.CodeAccessChallenge:
		return ErrRejected
	}
	return fmt.Errorf("%w: unexpected answer %v", ErrUnavailable, resp.Code)
}

// signRequest adds a Message-Authenticator (RFC 3579 section 3.2: HMAC-MD5 over the packet with the attribute
// zeroed), which servers hardened against forged answers (CVE-2024-3596) require of every Access-Request.
func signRequest(p *radius.Packet) error {
	if err := rfc2869.MessageAuthenticator_Set(p, make([]byte, 16)); err != nil {
		return fmt.Errorf("radius message-authenticator: %w", err)
	}
	wire, err := p.Encode()
	if err != nil {
		return fmt.Errorf("radius encode: %w", err)
	}
	m := hmac.New(md5.New, p.Secret)
	m.Write(wire)
	return rfc2869.MessageAuthenticator_Set(p, m.Sum(nil))
}

// validResponseAuthenticator checks an answer's Message-Authenticator, computed over the answer with the request's
// authenticator in place of its own and the attribute zeroed.
func validResponseAuthenticator(resp *radius.Packet, reqAuth [16]byte, got []byte) bool {
	c := *resp
	c.Authenticator = reqAuth
	c.Attributes = make(radius.Attributes, 0, len(resp.Attributes))
	for _, avp := range resp.Attributes {
		if avp.Type == rfc2869.MessageAuthenticator_Type {
			avp = &radius.AVP{Type: avp.Type, Attribute: make(radius.Attribute, 16)}
		}
		c.Attributes = append(c.Attributes, avp)
	}
	wire, err := c.MarshalBinary()
	if err != nil {
		return false
	}
	m := hmac.New(md5.New, resp.Secret)
	m.Write(wire)
	return hmac.Equal(m.Sum(nil), got)
}
