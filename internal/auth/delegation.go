package auth

import (
	"slices"
	"strings"
)

// The delegation rule: a principal can only grant, create, reset or read what it already holds. Every operation
// that hands out permissions (or the means to act as a principal that has them) is checked here, whichever API
// dialect it comes through:
//
//   - a role it creates, edits (permissions, membership rules), deletes or assigns: the role's permissions, before
//     and after the change;
//   - a user whose password, roles, state or name it changes, or that it deletes: the user's current
//     permissions (and for a role change, those of the roles it gets);
//   - an API client it creates, edits, deletes or whose secrets it reads: the client's permissions, before and
//     after;
//   - a directory source it writes: the permissions of every role its users could be given by a membership rule;
//   - the authentication CA of certificate login, which can mint a login for any user: every permission.
//
// Holding means the effective set, with implied permissions (a "-manage" holds its "-view").

// NotHeldError is a refusal by the delegation rule; Missing lists the permissions the principal lacks, sorted.
type NotHeldError struct {
	Missing []string
}

func (e *NotHeldError) Error() string {
	return "you can only grant, create, reset or read what you hold yourself; missing: " + strings.Join(e.Missing, ", ")
}

// CheckHolds returns nil if actor holds every permission of every list (after expanding what each implies), or
// a *NotHeldError naming the missing ones.
func CheckHolds(actor PermissionSet, lists ...[]string) error {
	var missing []string
	for p := range NewPermissionSet(lists...) {
		if !actor.Has(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return &NotHeldError{Missing: missing}
}

// CheckHoldsAll is CheckHolds for operations that can act as any principal (the certificate-login CA).
func CheckHoldsAll(actor PermissionSet) error { return CheckHolds(actor, AllPermissions) }
