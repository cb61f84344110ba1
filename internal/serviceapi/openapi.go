package serviceapi

import (
	_ "embed"
	"net/http"
)

// openapiJSON is the OpenAPI 3.0.3 description of every route in Routes. It is written by hand so that it says
// what clients may rely on; openapi_test.go checks it against real handler traffic so the two cannot drift.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPIDocument returns the service API's OpenAPI 3.0.3 document as JSON. The caller must not modify it.
func OpenAPIDocument() []byte { return openapiJSON }

// openapi is GET /openapi.json. It is public: the document describes the API's shape, not anything in the store,
// and tools such as Swagger UI fetch it before they have a token.
func (a *API) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	// The document changes only with the binary, but a cached copy outliving an upgrade would mislead; revalidate.
	w.Header().Set("Cache-Control", "no-cache")
	// A failed write means the client has gone; there is no one left to tell.
	w.Write(openapiJSON)
	return nil
}
