// Package auth holds who may do what: the permission names, principals, signed access tokens and the limiter of
// failed logins. It makes no HTTP decisions of its own; the API packages call it.
package auth

import "slices"

// Permission names, exactly as the API and the roles use them.
const (
	UsersView                 = "users-view"
	UsersManage               = "users-manage"
	RolesView                 = "roles-view"
	RolesManage               = "roles-manage"
	APIClientsManage          = "api-clients-manage"
	SourcesView               = "sources-view"
	SourcesManage             = "sources-manage"
	HostsView                 = "hosts-view"
	HostsManage               = "hosts-manage"
	APITargetsView            = "api-targets-view"
	APITargetsManage          = "api-targets-manage"
	APIProxyCredentialsOwn    = "api-proxy-credentials-own"
	APIProxyCredentialsManage = "api-proxy-credentials-manage"
	ConnectionsView           = "connections-view"
	ConnectionsTerminate      = "connections-terminate"
	ConnectionsTrails         = "connections-trails"
	SettingsView              = "settings-view"
	SettingsManage            = "settings-manage"
	AuditView                 = "audit-view"
	ConfigView                = "config-view"
	ConfigManage              = "config-manage"
	// Just-in-time roles (the workflow engine), with PrivX's names. Deciding on a request needs no permission:
	// holding an approver role of its step is what lets a user decide.
	WorkflowsView             = "workflows-view"
	WorkflowsManage           = "workflows-manage"
	WorkflowsRequests         = "workflows-requests"
	WorkflowsRequestsOnBehalf = "workflows-requests-on-behalf"
)

// AllPermissions lists every permission; the first-start superuser role holds them all.
var AllPermissions = []string{
	UsersView, UsersManage, RolesView, RolesManage, APIClientsManage, SourcesView, SourcesManage, HostsView,
	HostsManage, APITargetsView, APITargetsManage, APIProxyCredentialsOwn, APIProxyCredentialsManage,
	ConnectionsView, ConnectionsTerminate, ConnectionsTrails, SettingsView, SettingsManage, AuditView, ConfigView,
	ConfigManage,
	WorkflowsView, WorkflowsManage, WorkflowsRequests, WorkflowsRequestsOnBehalf,
}

// generations are AllPermissions in the order releases added them. The first-start superuser role holds every
// permission of its release only; UpgradeEveryPermission extends a role like it with what later releases added.
var generations = [][]string{
	{UsersView, UsersManage, RolesView, RolesManage, APIClientsManage, SourcesView, SourcesManage, HostsView,
		HostsManage, APITargetsView, APITargetsManage, APIProxyCredentialsOwn, APIProxyCredentialsManage,
		ConnectionsView, ConnectionsTerminate, ConnectionsTrails, SettingsView, SettingsManage, AuditView, ConfigView,
		ConfigManage},
	{WorkflowsView, WorkflowsManage, WorkflowsRequests, WorkflowsRequestsOnBehalf},
}

// UpgradeEveryPermission returns the permissions a later release added that a role holding perms is due: a role
// that holds every permission of the generations before one (the superuser role of an older data dir) gets that
// generation's too. A role that lacks any older permission was narrowed on purpose and gets nothing.
func UpgradeEveryPermission(perms []string) []string {
	var added []string
	held := func(p string) bool { return slices.Contains(perms, p) || slices.Contains(added, p) }
	for i := 1; i < len(generations); i++ {
		for _, older := range generations[:i] {
			for _, p := range older {
				if !held(p) {
					return added
				}
			}
		}
		for _, p := range generations[i] {
			if !held(p) {
				added = append(added, p)
			}
		}
	}
	return added
}

// ValidPermission reports whether p is a known permission name.
func ValidPermission(p string) bool { return slices.Contains(AllPermissions, p) }

// implied lists permissions that a stronger one includes, so a role with "-manage" need not also list "-view".
var implied = map[string][]string{
	UsersManage:               {UsersView},
	RolesManage:               {RolesView},
	SourcesManage:             {SourcesView},
	HostsManage:               {HostsView},
	APITargetsManage:          {APITargetsView},
	SettingsManage:            {SettingsView},
	ConfigManage:              {ConfigView},
	APIProxyCredentialsManage: {APIProxyCredentialsOwn},
	WorkflowsManage:           {WorkflowsView},
	WorkflowsRequestsOnBehalf: {WorkflowsRequests},
}

// PermissionSet is the effective permissions of a principal.
type PermissionSet map[string]bool

// NewPermissionSet expands perms with what they imply.
func NewPermissionSet(perms ...[]string) PermissionSet {
	set := PermissionSet{}
	for _, list := range perms {
		for _, p := range list {
			set[p] = true
			for _, q := range implied[p] {
				set[q] = true
			}
		}
	}
	return set
}

// Has reports whether the set holds p.
func (s PermissionSet) Has(p string) bool { return s[p] }

// Sorted returns the permissions in a stable order.
func (s PermissionSet) Sorted() []string {
	out := make([]string, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
