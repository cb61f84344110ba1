package serviceapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"unicode"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// hostServicePorts lists the services a host may offer, with the port each defaults to (0: the port is required).
var hostServicePorts = map[string]int{
	"SSH": 22, "RDP": 3389, "VNC": 5900, "WEB": 443, "HTTP": 80, "HTTPS": 443, "DB": 0, "TCP": 0,
}

// Bounds on a host document, so one request cannot store an unbounded one.
const (
	maxHostList    = 256  // addresses, services and tags each
	maxHostText    = 255  // single-line text fields
	maxHostComment = 4096 // the comment
)

// hostServiceInput is one service as requests send it; address and port may be left to their defaults.
type hostServiceInput struct {
	Service string `json:"service"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Source  string `json:"source"`
	privxServiceFields
}

// hostInput is the body of POST and PUT on hosts. Fields left out of a PUT keep their stored value.
type hostInput struct {
	CommonName         *string            `json:"common_name"`
	ExternalID         *string            `json:"external_id"`
	InstanceID         *string            `json:"instance_id"`
	SourceID           *string            `json:"source_id"`
	Organization       *string            `json:"organization"`
	OrganizationalUnit *string            `json:"organizational_unit"`
	Zone               *string            `json:"zone"`
	HostType           *string            `json:"host_type"`
	HostClassification *string            `json:"host_classification"`
	Comment            *string            `json:"comment"`
	DistinguishedName  *string            `json:"distinguished_name"`
	Addresses          []string           `json:"addresses"`
	Services           []hostServiceInput `json:"services"`
	Tags               []string           `json:"tags"`
	Source             *string            `json:"source"`
	// Server-populated fields are accepted and ignored, so a GET response can be sent back as a PUT.
	ID        string `json:"id"`
	Created   string `json:"created"`
	Author    string `json:"author"`
	Updated   string `json:"updated"`
	UpdatedBy string `json:"updated_by"`
	privxHostFields
}

// apply merges in into h and validates the result, naming the property at fault.
func (in *hostInput) apply(h *store.Host) error {
	if err := refuseUnsupported(&in.privxHostFields); err != nil {
		return err
	}
	for i := range in.Services {
		if err := refuseUnsupported(&in.Services[i].privxServiceFields); err != nil {
			return withPrefix(err, fieldIndex("services", i)+".")
		}
	}
	if in.CommonName != nil {
		h.CommonName = strings.TrimSpace(*in.CommonName)
	}
	if h.CommonName == "" || len(h.CommonName) > maxHostText || hasControl(h.CommonName) {
		return badRequest("common_name", fmt.Sprintf("common_name is required: 1 to %d bytes without control characters", maxHostText))
	}
	for _, f := range []struct {
		name string
		in   *string
		dst  *string
	}{
		{"external_id", in.ExternalID, &h.ExternalID}, {"instance_id", in.InstanceID, &h.InstanceID},
		{"source_id", in.SourceID, &h.SourceID}, {"organization", in.Organization, &h.Organization},
		{"organizational_unit", in.OrganizationalUnit, &h.OrganizationalUnit}, {"zone", in.Zone, &h.Zone},
		{"host_type", in.HostType, &h.HostType}, {"host_classification", in.HostClassification, &h.HostClassification},
		{"distinguished_name", in.DistinguishedName, &h.DistinguishedName},
	} {
		if f.in == nil {
			continue
		}
		v := strings.TrimSpace(*f.in)
		if len(v) > maxHostText || hasControl(v) {
			return badRequest(f.name, fmt.Sprintf("%s must be at most %d bytes without control characters", f.name, maxHostText))
		}
		*f.dst = v
	}
	if in.Comment != nil {
		if len(*in.Comment) > maxHostComment {
			return badRequest("comment", fmt.Sprintf("comment must be at most %d bytes", maxHostComment))
		}
		h.Comment = *in.Comment
	}
	if in.Source != nil {
		h.Source = strings.TrimSpace(*in.Source)
	}
	if h.Source == "" {
		h.Source = "local"
	}
	if !validSourceName(h.Source) {
		return badRequest("source", "source must be 1 to 64 letters, digits, '.', '_', ':' or '-'")
	}
	if in.Addresses != nil {
		addrs, err := hostAddresses("addresses", in.Addresses)
		if err != nil {
			return err
		}
		h.Addresses = addrs
	}
	if in.Tags != nil {
		if len(in.Tags) > maxHostList {
			return badRequest("tags", fmt.Sprintf("a host has at most %d tags", maxHostList))
		}
		for i, tag := range in.Tags {
			if strings.TrimSpace(tag) == "" || len(tag) > 64 || hasControl(tag) {
				return badRequest(fieldIndex("tags", i), "tags must be 1 to 64 bytes without control characters")
			}
		}
		h.Tags = dedupeStrings(in.Tags)
	}
	if in.Services != nil {
		svcs, err := hostServices(in.Services, h)
		if err != nil {
			return err
		}
		h.Services = svcs
	}
	if h.Addresses == nil {
		h.Addresses = []string{}
	}
	if h.Services == nil {
		h.Services = []store.HostService{}
	}
	if h.Tags == nil {
		h.Tags = []string{}
	}
	return nil
}

// hostServices validates services and fills in their defaults: the host's first address, the service's usual
// port and the host's source.
func hostServices(in []hostServiceInput, h *store.Host) ([]store.HostService, error) {
	if len(in) > maxHostList {
		return nil, badRequest("services", fmt.Sprintf("a host has at most %d services", maxHostList))
	}
	out := make([]store.HostService, 0, len(in))
	seen := map[store.HostService]bool{}
	for i, s := range in {
		f := fieldIndex("services", i)
		svc := strings.ToUpper(strings.TrimSpace(s.Service))
		defPort, ok := hostServicePorts[svc]
		if !ok {
			return nil, badRequest(f+".service", "service must be one of SSH, RDP, VNC, WEB, HTTP, HTTPS, DB, TCP")
		}
		addr := strings.TrimSpace(s.Address)
		if addr == "" {
			if len(h.Addresses) == 0 {
				return nil, badRequest(f+".address", "address is required when the host has no addresses")
			}
			addr = h.Addresses[0]
		}
		addrs, err := hostAddresses(f+".address", []string{addr})
		if err != nil {
			return nil, err
		}
		port := s.Port
		if port == 0 {
			port = defPort
		}
		if port < 1 || port > 65535 {
			return nil, badRequest(f+".port", "port must be from 1 to 65535 (required for "+svc+")")
		}
		src := strings.TrimSpace(s.Source)
		if src == "" {
			src = h.Source
		}
		if !validSourceName(src) {
			return nil, badRequest(f+".source", "source must be 1 to 64 letters, digits, '.', '_', ':' or '-'")
		}
		hs := store.HostService{Service: svc, Address: addrs[0], Port: port}
		if seen[hs] {
			return nil, badRequest(f, fmt.Sprintf("service %s on %s port %d is listed twice", svc, hs.Address, port))
		}
		seen[hs] = true
		hs.Source = src
		out = append(out, hs)
	}
	return out, nil
}

// hostAddresses canonicalizes a list of IP addresses and DNS names (lower case, no trailing dot, IPv4-mapped
// IPv6 as IPv4) and drops duplicates, so that one host is not stored under two spellings of an address.
func hostAddresses(field string, in []string) ([]string, error) {
	if len(in) > maxHostList {
		return nil, badRequest(field, fmt.Sprintf("a host has at most %d addresses", maxHostList))
	}
	out := make([]string, 0, len(in))
	for i, raw := range in {
		f := field
		if field == "addresses" {
			f = fieldIndex(field, i)
		}
		a, err := canonHostAddress(strings.TrimSpace(raw))
		if err != nil {
			return nil, badRequest(f, fmt.Sprintf("%s: %q is not an IP address or DNS name: %v", f, raw, err))
		}
		out = append(out, a)
	}
	return dedupeStrings(out), nil
}

func canonHostAddress(s string) (string, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return "", errors.New("IPv6 zone is not allowed")
		}
		return ip.Unmap().String(), nil
	}
	hp, err := policy.ParseAuthority(s)
	if err != nil {
		return "", err
	}
	switch {
	case hp.Port != 0:
		return "", errors.New("an address holds no port; give ports in services")
	case strings.HasPrefix(s, "["):
		return "", errors.New("write IPv6 addresses without brackets")
	}
	return hp.Host, nil
}

func validSourceName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-", c) >= 0) {
			return false
		}
	}
	return true
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// hostConflict names the property at fault when a common name is taken: hosts have no "name" field.
func hostConflict(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return &Error{Status: http.StatusConflict, Code: "CONFLICT", Message: "a host with this common_name already exists",
			Property: "common_name", Err: err}
	}
	return err
}

func (a *API) listHosts(w http.ResponseWriter, r *http.Request) error {
	return a.writeHosts(w, r, store.HostQuery{})
}

// searchHosts is POST /hosts/search with {"keywords","tags","source"}; the list parameters come in the query.
func (a *API) searchHosts(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Keywords string   `json:"keywords"`
		Tags     []string `json:"tags"`
		Source   string   `json:"source"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	return a.writeHosts(w, r, store.HostQuery{Keywords: strings.Fields(in.Keywords), Tags: in.Tags, Source: in.Source})
}

func (a *API) writeHosts(w http.ResponseWriter, r *http.Request, q store.HostQuery) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	hosts, total, err := a.Store.ListHosts(r.Context(), q, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(hosts, total))
	return nil
}

func (a *API) createHost(w http.ResponseWriter, r *http.Request) error {
	var in hostInput
	if err := decode(r, &in); err != nil {
		return err
	}
	h := &store.Host{}
	if err := in.apply(h); err != nil {
		return err
	}
	if err := a.Store.CreateHost(r.Context(), h, principal(r.Context()).Name); err != nil {
		return hostConflict(err)
	}
	a.audit(r, "create", "host", h.ID, nil, h)
	writeJSON(w, http.StatusCreated, created{ID: h.ID})
	return nil
}

func (a *API) getHost(w http.ResponseWriter, r *http.Request) error {
	h, err := a.Store.Host(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *API) updateHost(w http.ResponseWriter, r *http.Request) error {
	h, err := a.Store.Host(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	before := *h
	var in hostInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.apply(h); err != nil {
		return err
	}
	if err := a.Store.UpdateHost(r.Context(), h, principal(r.Context()).Name); err != nil {
		return hostConflict(err)
	}
	a.audit(r, "update", "host", h.ID, &before, h)
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *API) deleteHost(w http.ResponseWriter, r *http.Request) error {
	h, err := a.Store.Host(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.Store.DeleteHost(r.Context(), h.ID); err != nil {
		return err
	}
	a.audit(r, "delete", "host", h.ID, h, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

// hostTags is GET /host-store/api/v1/hosts/tags: every tag a host carries, once, sorted, optionally only those
// containing the query parameter query (case-insensitive), as PrivX's host tags list.
func (a *API) hostTags(w http.ResponseWriter, r *http.Request) error {
	hosts, _, err := a.Store.ListHosts(r.Context(), store.HostQuery{}, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		return err
	}
	query := r.URL.Query().Get("query")
	var tags []string
	for _, h := range hosts {
		for _, t := range h.Tags {
			if query == "" || containsFold(t, query) {
				tags = append(tags, t)
			}
		}
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	writeJSON(w, http.StatusOK, newList(tags, len(tags)))
	return nil
}
