package proxy

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInjectCredentialCached checks that the header value made once per credential (kept by its scrubber)
// injects exactly what making it per request did, for each kind of credential, over a client's own attempt at
// the same header, and that a request's later change to its header cannot reach the shared value.
func TestInjectCredentialCached(t *testing.T) {
	var sc scrubberCache
	for _, c := range []TargetCredential{
		{Type: CredentialToken, Token: "tok-0123456789abcdef"},
		{Type: CredentialBasicAuth, Username: "svc", Password: "s3cret-pass"},
		{Type: CredentialHeader, HeaderName: "x-api-KEY", HeaderValue: "key/with+chars=="},
	} {
		client := func() http.Header {
			return http.Header{"Authorization": {"Bearer mine"}, "X-Api-Key": {"mine"}, "x-api-key": {"mine too"}, "Accept": {"*/*"}}
		}
		want := client()
		injectCredential(want, c, nil)
		s := sc.scrubberFor(c)
		if s == nil || s.injectValue == nil {
			t.Fatalf("%v: no injected value kept", c.Type)
		}
		got := client()
		injectCredential(got, c, s)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%v: cached injection differs (-per request +cached):\n%s", c.Type, diff)
		}
		got[s.injectName] = append(got[s.injectName], "appended")
		again := client()
		injectCredential(again, c, sc.scrubberFor(c))
		if diff := cmp.Diff(want, again); diff != "" {
			t.Errorf("%v: an append to one request's header reached the next (-want +got):\n%s", c.Type, diff)
		}
	}
}
