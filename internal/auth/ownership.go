package auth

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// CredentialLimits are the restrictions on a proxy credential that an owner may narrow but never widen.
type CredentialLimits struct {
	Enabled       bool
	NotBefore     time.Time
	NotAfter      time.Time
	SourceAddress []string
}

// FieldRefusal is a refusal naming the request field at fault.
type FieldRefusal struct {
	Field string
	Msg   string
}

func (e *FieldRefusal) Error() string { return e.Field + ": " + e.Msg }

// OwnerMayChange decides a change an owner (a user without api-proxy-credentials-manage) makes to their own
// credential. What is stored is the ceiling an administrator set, or the owner narrowed to: the owner may
// disable but not re-enable, move not_before later and not_after earlier but not back, and add address limits or
// narrow them to subsets, but not drop or widen them. A credential an owner disabled or narrowed needs an
// administrator (or a new credential) to widen again: the store does not keep who set which limit, so the stored
// state is the only safe ceiling.
func OwnerMayChange(before, after CredentialLimits) error {
	if after.Enabled && !before.Enabled {
		return &FieldRefusal{"enabled", "a disabled credential can only be re-enabled by an administrator"}
	}
	if after.NotBefore.Before(before.NotBefore) {
		return &FieldRefusal{"not_before", "an owner may only narrow the validity window; not_before cannot move earlier"}
	}
	if after.NotAfter.After(before.NotAfter) {
		return &FieldRefusal{"not_after", "an owner may only narrow the validity window; not_after cannot move later"}
	}
	if len(before.SourceAddress) == 0 {
		return nil // no limit yet: any limit narrows
	}
	if len(after.SourceAddress) == 0 {
		return &FieldRefusal{"source_address", "an owner cannot remove the address restriction an administrator set"}
	}
	ceiling, errs := policy.ValidateCIDRList(before.SourceAddress)
	if len(errs) > 0 {
		return &FieldRefusal{"source_address", "the stored address restriction is unreadable; ask an administrator"}
	}
	wanted, errs := policy.ValidateCIDRList(after.SourceAddress)
	if len(errs) > 0 {
		fe := errs[0].Prefixed("source_address")
		return &FieldRefusal{fe.Field, fe.Error()}
	}
	for i, p := range wanted {
		if !withinAny(p, ceiling) {
			return &FieldRefusal{"source_address[" + strconv.Itoa(i) + "]",
				p.String() + " is outside the address restriction an administrator set; an owner may only narrow it"}
		}
	}
	return nil
}

// withinAny reports whether every address of p lies inside one prefix of set.
func withinAny(p netip.Prefix, set []netip.Prefix) bool {
	for _, q := range set {
		if q.Addr().Is4() == p.Addr().Is4() && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
