package configapi

import (
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// mayChange applies the delegation rule (auth.CheckHolds) to configuration objects: the certificate-login CA in
// aaa/settings can mint a login for any user, so only a caller holding every permission may change it.
func mayChange(c *caller, kindName string) error {
	if kindName != kindAAASettings.name {
		return nil
	}
	if err := auth.CheckHoldsAll(c.Principal.Permissions); err != nil {
		return &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Message: err.Error(), Field: "x509.authentication_ca", Err: err}
	}
	return nil
}
