package proxy

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/netip"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
)

// Authorizer is the policy decision point of the data plane. Implementations
// must be safe for concurrent use and fast: Authorize runs once per request
// and once per CONNECT, so it should answer from memory.
//
// For a CONNECT, Authorize is called with Method "CONNECT" and an empty Path
// before the tunnel is opened. Secret is empty when the client sent no
// Proxy-Authorization (its requests will carry their own credential), so the
// implementation should only apply connection policy then: return (nil, nil)
// to open the tunnel, ErrUnauthenticated when a presented secret is invalid,
// or a *DeniedError to refuse the tunnel.
type Authorizer interface {
	Authorize(ctx context.Context, r *AuthRequest) (*Grant, error)
}

// TargetNamer is optionally implemented by an Authorizer: it names the target serving an authority, so that a
// tunnel opened before any credential is seen is counted under its target rather than "none".
type TargetNamer interface {
	TargetFor(authority string) string
}

// AuthRequest is what the proxy knows about a request when it asks for a
// decision. All of it comes from the client and has passed the framing checks.
type AuthRequest struct {
	// Client is the client's address, taken from a trusted PROXY protocol
	// header when there is one.
	Client netip.AddrPort
	// Secret is the presented proxy secret, "" if none.
	Secret string
	// CredentialID is the user part of a Proxy-Authorization Basic header
	// (a credential id or its owner's username), "" if the client sent none.
	CredentialID string
	// Scheme is "http" or "https": what the client talks to the target.
	Scheme string
	// Host is the authority the request is for, host[:port] as the client
	// sent it (the CONNECT authority for a CONNECT).
	Host string
	// Method is the request method, "CONNECT" for a tunnel.
	Method string
	// Path is the normalized escaped path, exactly what will be forwarded;
	// empty for a CONNECT.
	Path string
	// Tunnel reports a request inside a CONNECT tunnel, whose connection was
	// admitted when the tunnel opened; false for absolute-form requests, each
	// of which is a connection of its own to the policy.
	Tunnel bool
	// WebSocket reports a request that asks to upgrade to WebSocket.
	WebSocket bool
	// ProxyTLS reports that the client reached the proxy itself over TLS
	// (an HTTPS proxy), for this request and the CONNECT of its tunnel.
	ProxyTLS bool
}

// Grant is a positive decision: where to forward and on whose behalf.
type Grant struct {
	// Target is what to forward to. It may be nil only for a CONNECT.
	Target *Target
	// NATTargetHost, when set, is the host[:port] to dial instead of the
	// requested authority; the Host header and the TLS server name stay as the
	// client asked. A missing port keeps the requested port.
	NATTargetHost string
	// Unauthenticated reports that the request matched an endpoint that allows
	// unauthenticated requests and carried no credential.
	Unauthenticated bool
	// Session names who is acting, for logs, sessions and recordings.
	Session SessionInfo
	// Secret is the presented proxy secret, so the recorder can redact it.
	// It is never logged or forwarded.
	Secret string
	// Policy, if set, is what the connection policy that admitted the
	// request says about its API session; nil means the global settings.
	Policy *SessionPolicy
	// Conn, if set, is what that connection policy says about transport
	// security and routing; nil means the defaults described on Connection.
	// A CONNECT without a credential may get a Grant with only Conn set.
	Conn *Connection
}

// SessionPolicy is what a connection policy sets for the API sessions it
// admits. Zero durations and limits mean "not set here".
type SessionPolicy struct {
	// Name names the connection policy, for logs; Key identifies it, and the session remembers it.
	Name, Key string
	// NoIndex keeps the session's exchanges out of the searchable trail index (indexing.enabled false).
	NoIndex bool
	// IdleTimeout and MaxLifetime bound the API session.
	IdleTimeout, MaxLifetime time.Duration
	// BodyLimit is the most bytes of each body a recording keeps; negative
	// records no body.
	BodyLimit int
	// RedactHeaders names more headers to redact in recordings.
	RedactHeaders []string
}

// SessionInfo carries identifiers and display names of the parties of a
// request. None of it is secret.
type SessionInfo struct {
	UserID         string
	UserName       string
	CredentialID   string
	CredentialName string
	TargetName     string
}

// Target carries what the upstream transport needs to reach an API target.
type Target struct {
	// ID identifies the target; with Version it keys the transport cache.
	ID string
	// Name is the display name used in logs and metrics.
	Name string
	// Version changes whenever the target is updated, so cached transports
	// (trust anchors, client certificates) are rebuilt.
	Version int64
	// TrustAnchorsPEM holds extra CA certificates trusted for the target, on
	// top of the system roots.
	TrustAnchorsPEM string
	// InsecureSkipVerify turns off verification of the target's certificate.
	// Only an administrator's explicit choice sets it.
	InsecureSkipVerify bool
	// Credential is injected into every forwarded request.
	Credential TargetCredential
	// AuditEnabled makes every exchange be recorded; when the recorder is
	// broken, requests to the target are refused (fail closed).
	AuditEnabled bool
}

// CredentialType says how a target credential is presented to the target.
type CredentialType string

// The credential types a target can hold.
const (
	// CredentialNone injects nothing.
	CredentialNone CredentialType = ""
	// CredentialToken sends "Authorization: Bearer <Token>".
	CredentialToken CredentialType = "token"
	// CredentialBasicAuth sends HTTP Basic with Username and Password.
	CredentialBasicAuth CredentialType = "basicauth"
	// CredentialHeader sends HeaderName: HeaderValue.
	CredentialHeader CredentialType = "header"
	// CredentialCertificate presents CertificatePEM/PrivateKeyPEM as a TLS
	// client certificate.
	CredentialCertificate CredentialType = "certificate"
)

// TargetCredential is a target's secret in plaintext. It lives in memory only;
// its String and LogValue methods never print the secret parts.
type TargetCredential struct {
	Type           CredentialType
	Token          string
	Username       string
	Password       string
	HeaderName     string
	HeaderValue    string
	CertificatePEM string
	PrivateKeyPEM  string
}

// String describes the credential without its secret.
func (c TargetCredential) String() string {
	return "TargetCredential{Type:" + string(c.Type) + ", <redacted>}"
}

// GoString describes the credential without its secret, for %#v.
func (c TargetCredential) GoString() string { return c.String() }

// Sessions groups authorized requests into API sessions.
type Sessions interface {
	// Begin is called for each authorized request before it is forwarded. It
	// returns a context derived from ctx that is cancelled when the session is
	// terminated (so in-flight requests abort), or an error, a *DeniedError
	// ("session in cool-down") to refuse the request.
	Begin(ctx context.Context, g *Grant, client netip.AddrPort) (context.Context, ActiveRequest, error)
}

// ActiveRequest is one request accounted to a session.
type ActiveRequest interface {
	// End accounts the finished request: bytes read from the client, bytes
	// written to it, and the status sent (499 when the client went away).
	End(bytesIn, bytesOut int64, status int)
}

// Recorder writes exchanges of audited targets to the trail.
type Recorder interface {
	// Record stores one finished exchange. Ex holds the request headers as
	// received, client secret included: the recorder redacts g.Secret and the
	// credential headers before anything is written. An error makes the
	// proxy refuse audited requests until Healthy reports nil.
	Record(ctx context.Context, g *Grant, ex *Exchange) error
	// Healthy reports whether records can currently be written. It must keep
	// returning an error after a failed Record until the recorder recovered.
	Healthy() error
}

// CertSource mints certificates for intercepted TLS tunnels. The proxy
// fills ClientHelloInfo.ServerName with the CONNECT host when the client sent
// no SNI; for an IP literal the leaf must carry an IP SAN.
type CertSource interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// DeniedRequest is a request (or CONNECT) the policy refused, as told to Server.Denied.
type DeniedRequest struct {
	RequestID string
	Time      time.Time
	Client    netip.AddrPort
	Method    string
	// Host is the authority asked for and Path the normalized path ("" for a CONNECT).
	Host, Path string
	// Reason is the precise cause, which the client is not told.
	Reason string
	// Session names who was refused, as far as the credential was recognized.
	Session SessionInfo
	// TargetID is the credential's target, "" when unknown.
	TargetID string
}

// Exchange is one recorded request and response.
type Exchange struct {
	// ID is the request id, as in the access log and the answer's X-Gatehouse-Request-Id.
	ID string
	// Decision is "allowed", or "denied: " and the precise reason for a request the policy refused (which
	// never reached the target).
	Decision string
	Start    time.Time
	Duration time.Duration
	// Wait is the part of Duration until the target's response header arrived (admission, connecting, sending
	// and the target's own time); zero when no response came.
	Wait   time.Duration
	Client netip.AddrPort
	Method string
	// URL is scheme://host/normalized-path?query as forwarded.
	URL string
	// Proto is the protocol the client spoke: "HTTP/1.1", "HTTP/1.0" or "HTTP/2".
	Proto string
	// RequestHeader is the client's request header as received.
	RequestHeader         http.Header
	RequestBody           []byte
	RequestBodyTruncated  bool
	RequestBytes          int64
	Status                int
	ResponseHeader        http.Header
	ResponseBody          []byte
	ResponseBodyTruncated bool
	ResponseBytes         int64
	// Error describes why the exchange failed, "" if it did not.
	Error string
	// WebSocket marks an upgraded WebSocket connection; UpgradeBytesIn and UpgradeBytesOut count the bytes after
	// the upgrade (client to target and back), and WSMessages are its messages, text cut to the capture limit
	// (not yet redacted), at most maxWSMessages of them, the rest counted in WSMessagesDropped.
	WebSocket                       bool
	UpgradeBytesIn, UpgradeBytesOut int64
	WSMessages                      []wsframe.Message
	WSMessagesDropped               int64
}
