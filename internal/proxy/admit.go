package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
)

// admit decides whether a request may be forwarded: it checks the request target and path, finds the
// credentials, asks the Authorizer, checks that an audited target can be recorded and opens (or joins) the API
// session. It returns the session's context, or the refusal. Nothing has been forwarded or read from the body
// when it returns; a hook that holds a request (an approval, say) belongs here, after the decision.
func (s *Server) admit(r *http.Request, tun *tunnel, rs *requestState, track *trackedConn) (context.Context, error) {
	level := levelTunnel
	if tun == nil {
		level = levelProxy
	}
	scheme, err := requestTarget(r, tun, rs.host)
	if err != nil {
		return nil, err
	}
	rs.scheme = scheme
	raw, err := requestTargetPath(r.RequestURI)
	if err != nil {
		return nil, badRequest("invalid request target", err)
	}
	if rs.path, err = s.normalizePath()(raw); err != nil {
		return nil, badRequest("path refused", err)
	}
	unescaped, err := url.PathUnescape(rs.path)
	if err != nil {
		return nil, badRequest("path refused", err)
	}
	rs.target = url.URL{Scheme: scheme, Host: rs.host, Path: unescaped, RawPath: rs.path, RawQuery: r.URL.RawQuery}
	rs.outURL = &rs.target
	if rs.outURL.EscapedPath() != rs.path {
		// The wire path must be exactly the path the policy matched.
		return nil, badRequest("path refused", fmt.Errorf("path %q does not round-trip", rs.path))
	}
	if rs.websocket, err = checkUpgrade(r); err != nil {
		return nil, err
	}
	if queryOverridesMethod(r.URL.RawQuery) {
		return nil, badRequest("method override in the query refused", nil)
	}
	secret, credID, err := requestCredentials(r, tun)
	if err != nil {
		return nil, authFailure(fmt.Errorf("credentials: %w: %w", ErrUnauthenticated, err), level)
	}
	rs.auth = AuthRequest{Client: rs.client, Secret: secret, CredentialID: credID,
		Scheme: scheme, Host: rs.host, Method: r.Method, Path: rs.path, Tunnel: tun != nil, ProxyTLS: proxyTLSFrom(r.Context()),
		WebSocket: rs.websocket}
	g, err := s.authorize(r.Context(), &rs.auth)
	if err != nil {
		if denied := (*DeniedError)(nil); errors.As(err, &denied) && denied.Grant != nil {
			s.beginDenied(r, rs, denied.Grant)
		}
		return nil, authFailure(err, level)
	}
	if g == nil || g.Target == nil {
		return nil, authFailure(errors.New("authorizer returned no target"), level)
	}
	rs.grant = g
	if g.Conn != nil && g.Conn.UpstreamPlain && rs.outURL.Scheme == "https" {
		// transport_security client-only: TLS ends at the proxy; the target is spoken to in plain HTTP on the
		// port the client asked for.
		u := *rs.outURL
		u.Scheme = "http"
		if tun != nil {
			u.Host = tun.authority // keep the port the client tunnelled to, not http's default
		}
		rs.outURL = &u
	}
	if secret != "" && !g.Unauthenticated {
		track.authenticated() // a grant for a presented secret: the secret was valid
	}
	if !g.Unauthenticated {
		rs.scrub = s.scrubbers.scrubberFor(g.Target.Credential)
	}
	if g.Target.AuditEnabled {
		if err := s.recorderReady(); err != nil {
			return nil, recordingUnavailable(err)
		}
	}
	ctx := r.Context()
	rs.clientCtx = ctx
	// An HTTP/2 stream the client reset while it was being authorized (rapid reset) opens no session and
	// reaches no target; the same holds for an HTTP/1 client that hung up.
	if err := ctx.Err(); err != nil {
		return nil, clientClosed(err)
	}
	if s.Sessions != nil {
		sctx, active, err := s.Sessions.Begin(ctx, g, rs.client)
		if err != nil {
			return nil, authFailure(err, level)
		}
		ctx, rs.active, rs.sessionCtx = sctx, active, sctx
	}
	if err := s.approve(ctx, r, rs, level); err != nil {
		return nil, err
	}
	return ctx, nil
}

// beginDenied accounts a request the policy refused to the API session of its credential, so that the refusal,
// with its precise reason, is in the trail of an audited target next to the exchanges that were allowed. Nothing
// is forwarded; when no session can be had (cool-down, recording down) the refusal is only logged.
func (s *Server) beginDenied(r *http.Request, rs *requestState, g *Grant) {
	rs.grant = g
	if g.Target == nil || !g.Target.AuditEnabled || s.Sessions == nil || s.recorderReady() != nil {
		return
	}
	sctx, active, err := s.Sessions.Begin(r.Context(), g, rs.client)
	if err != nil {
		return
	}
	rs.sessionCtx, rs.active, rs.recordDenied = sctx, active, true
	rs.reqHeader = r.Header
}

// requestTarget checks that the request is for the authority the client may
// talk to and returns its scheme.
func requestTarget(r *http.Request, tun *tunnel, rawHost string) (string, error) {
	if r.Method == http.MethodConnect {
		return "", badRequest("CONNECT inside a tunnel", nil)
	}
	if hs := r.Header.Values("Host"); len(hs) > 1 || len(hs) == 1 && hs[0] != rawHost {
		return "", badRequest("conflicting Host headers", nil)
	}
	if rawHost == "" {
		return "", badRequest("missing Host header", nil)
	}
	if r.URL.User != nil {
		// Deprecated by RFC 9110 and a classic way to disguise a host.
		return "", badRequest("userinfo in request target", nil)
	}
	if r.URL.Host != "" || r.URL.Scheme != "" {
		u, uerr := canonicalAuthority(r.URL.Host, r.URL.Scheme)
		h, herr := canonicalAuthority(rawHost, r.URL.Scheme)
		if uerr != nil || herr != nil || u != h {
			return "", badRequest("absolute URI authority disagrees with Host", errors.Join(uerr, herr))
		}
	}
	if tun != nil {
		if r.URL.Scheme != "" && r.URL.Scheme != tun.scheme {
			return "", badRequest("absolute URI scheme disagrees with the tunnel", nil)
		}
		h, err := canonicalAuthority(rawHost, tun.scheme)
		if err != nil || h != tun.authority {
			return "", badRequest("Host disagrees with CONNECT authority", err)
		}
		return tun.scheme, nil
	}
	switch r.URL.Scheme {
	case "http":
		return "http", nil
	case "":
		return "", badRequest("this is an HTTP proxy: configure it as your client's proxy (for example curl --proxy) instead of sending requests to it directly", nil)
	default:
		return "", badRequest("use CONNECT for "+r.URL.Scheme+" targets", nil)
	}
}

// requestCredentials finds the proxy secret: the client's own
// "Authorization: Bearer" slot first, then Proxy-Authorization on an
// absolute-form request, then the credential of the tunnel's CONNECT.
func requestCredentials(r *http.Request, tun *tunnel) (secret, credentialID string, err error) {
	v, err := singleHeader(r.Header, "Authorization")
	if err != nil {
		return "", "", err
	}
	if tok, ok := httpauth.Credentials(v, "Bearer"); ok {
		return tok, "", nil
	}
	if tun != nil {
		return tun.secret, tun.credentialID, nil
	}
	v, err = singleHeader(r.Header, "Proxy-Authorization")
	if err != nil || v == "" {
		return "", "", err
	}
	return parseProxyAuthorization(v)
}

func (s *Server) authorize(ctx context.Context, ar *AuthRequest) (*Grant, error) {
	if s.Authorizer == nil {
		return nil, &DeniedError{Reason: "no authorizer configured"}
	}
	g, err := s.Authorizer.Authorize(ctx, ar)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	return g, nil
}
