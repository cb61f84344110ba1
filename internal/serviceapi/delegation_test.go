package serviceapi_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// delegationEnv holds the objects the delegation matrix acts on; victims are made per case by the admin so an
// allowed change never disturbs another case.
type delegationEnv struct {
	t   *testing.T
	gh  *testserver.Instance
	adm string
	seq atomic.Int64
}

func (e *delegationEnv) unique(p string) string { return fmt.Sprintf("%s-%d", p, e.seq.Add(1)) }

func (e *delegationEnv) role(perms ...string) string {
	if perms == nil {
		perms = []string{}
	}
	return e.gh.Create(rolesPath, e.adm, map[string]any{"name": e.unique("role"), "permissions": perms})
}

// userWith is a user holding a role with perms (none: a plain user).
func (e *delegationEnv) userWith(perms ...string) string {
	id := e.gh.Create(usersPath, e.adm, map[string]any{"username": e.unique("user"), "password": "Victim-pass-1"})
	if perms != nil {
		e.gh.JSON("PUT", "/role-store/api/v1/users/"+id+"/roles", e.adm, []map[string]string{{"id": e.role(perms...)}}, http.StatusOK, nil)
	}
	return id
}

func (e *delegationEnv) clientWith(perms ...string) string {
	roles := []map[string]string{}
	if perms != nil {
		roles = append(roles, map[string]string{"id": e.role(perms...)})
	}
	return e.gh.Create(clientsPath, e.adm, map[string]any{"name": e.unique("client"), "roles": roles})
}

// directoryUserWith makes a source with one directory user holding perms (none: a plain user) and returns the
// source id. Whoever rewrites that source decides who logs in as the user.
func (e *delegationEnv) directoryUserWith(perms ...string) string {
	src := e.gh.Create(sourcesPath, e.adm, offlineSourceBody(e.unique("dir")))
	u, err := e.gh.Server.Store().UpsertDirectoryUser(context.Background(), src, store.DirectoryUser{ExternalID: e.unique("cn="), Username: e.unique("dir-user")})
	if err != nil {
		e.t.Fatal(err)
	}
	if perms != nil {
		e.gh.JSON("PUT", "/role-store/api/v1/users/"+u.ID+"/roles", e.adm, []map[string]string{{"id": e.role(perms...)}}, http.StatusOK, nil)
	}
	return src
}

// sensitiveOp is one operation a delegated admin might try. It needs the route's permission, and carries the
// permissions of the object it grants, changes or reads; the rule under test is that it is allowed exactly when
// the caller holds both.
type sensitiveOp struct {
	name    string
	needs   string
	carries []string
	// do runs the operation as the caller (token, user id) and returns the status.
	do func(e *delegationEnv, token, self string) int
}

func delegationOps() []sensitiveOp {
	all := auth.AllPermissions
	return []sensitiveOp{
		{"reset superuser password", auth.UsersManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", usersPath+"/"+e.userWith(all...)+"/password", tok, map[string]any{"password": "Attacker-pass-1"})
			return s
		}},
		{"reset plain user password", auth.UsersManage, nil, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", usersPath+"/"+e.userWith()+"/password", tok, map[string]any{"password": "Changed-pass-1"})
			return s
		}},
		{"disable superuser", auth.UsersManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", usersPath+"/"+e.userWith(all...), tok, map[string]any{"enabled": false})
			return s
		}},
		{"rename a user holding audit-view", auth.UsersManage, []string{auth.AuditView}, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", usersPath+"/"+e.userWith(auth.AuditView), tok, map[string]any{"username": e.unique("renamed")})
			return s
		}},
		{"delete superuser", auth.UsersManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("DELETE", usersPath+"/"+e.userWith(all...), tok, nil)
			return s
		}},
		{"grant self the superuser role", auth.RolesManage, all, func(e *delegationEnv, tok, self string) int {
			roles := []map[string]string{{"id": e.role(all...)}}
			s, _ := e.gh.Do("PUT", "/role-store/api/v1/users/"+self+"/roles", tok, roles)
			return s
		}},
		{"grant a roles-view role", auth.RolesManage, []string{auth.RolesView}, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", "/role-store/api/v1/users/"+e.userWith()+"/roles", tok, []map[string]string{{"id": e.role(auth.RolesView)}})
			return s
		}},
		{"strip a superuser's roles", auth.RolesManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", "/role-store/api/v1/users/"+e.userWith(all...)+"/roles", tok, []map[string]string{})
			return s
		}},
		{"create a superuser role", auth.RolesManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("POST", rolesPath, tok, map[string]any{"name": e.unique("r"), "permissions": all})
			return s
		}},
		{"create a settings-manage role", auth.RolesManage, []string{auth.SettingsManage}, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("POST", rolesPath, tok, map[string]any{"name": e.unique("r"), "permissions": []string{auth.SettingsManage}})
			return s
		}},
		{"create a roles-view role", auth.RolesManage, []string{auth.RolesView}, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("POST", rolesPath, tok, map[string]any{"name": e.unique("r"), "permissions": []string{auth.RolesView}})
			return s
		}},
		{"widen a role with audit-view", auth.RolesManage, []string{auth.RolesView, auth.AuditView}, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", rolesPath+"/"+e.role(auth.RolesView), tok, map[string]any{"permissions": []string{auth.RolesView, auth.AuditView}})
			return s
		}},
		{"add a membership rule to a superuser role", auth.RolesManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", rolesPath+"/"+e.role(all...), tok, map[string]any{"source_rules": []map[string]string{{"tag": "mine"}}})
			return s
		}},
		{"strip a superuser role of its permissions", auth.RolesManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", rolesPath+"/"+e.role(all...), tok, map[string]any{"permissions": []string{}})
			return s
		}},
		{"delete a superuser role", auth.RolesManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("DELETE", rolesPath+"/"+e.role(all...), tok, nil)
			return s
		}},
		{"create a superuser API client", auth.APIClientsManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("POST", clientsPath, tok, map[string]any{"name": e.unique("c"), "roles": []map[string]string{{"id": e.role(all...)}}})
			return s
		}},
		{"read a superuser API client's secrets", auth.APIClientsManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("GET", clientsPath+"/"+e.clientWith(all...), tok, nil)
			return s
		}},
		{"read a plain API client's secrets", auth.APIClientsManage, nil, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("GET", clientsPath+"/"+e.clientWith(), tok, nil)
			return s
		}},
		{"give an API client the superuser role", auth.APIClientsManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", clientsPath+"/"+e.clientWith(), tok, map[string]any{"roles": []map[string]string{{"id": e.role(all...)}}})
			return s
		}},
		{"rename a superuser API client", auth.APIClientsManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", clientsPath+"/"+e.clientWith(all...), tok, map[string]any{"name": e.unique("renamed")})
			return s
		}},
		{"delete a superuser API client", auth.APIClientsManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("DELETE", clientsPath+"/"+e.clientWith(all...), tok, nil)
			return s
		}},
		{"create a source whose tags grant a superuser role", auth.SourcesManage, all, func(e *delegationEnv, tok, _ string) int {
			role := e.role(all...)
			e.gh.JSON("PUT", rolesPath+"/"+role, e.adm, map[string]any{"source_rules": []map[string]string{{"tag": e.unique("t")}}}, http.StatusOK, nil)
			defer e.gh.JSON("DELETE", rolesPath+"/"+role, e.adm, nil, http.StatusOK, nil) // the rule would reach every later source
			s, _ := e.gh.Do("POST", sourcesPath, tok, offlineSourceBody(e.unique("src")))
			return s
		}},
		{"repoint the source of a superuser directory user", auth.SourcesManage, all, func(e *delegationEnv, tok, _ string) int {
			src := e.directoryUserWith(all...)
			s, _ := e.gh.Do("PUT", sourcesPath+"/"+src, tok, offlineSourceBody(e.unique("src")))
			return s
		}},
		{"delete the source of a superuser directory user", auth.SourcesManage, all, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("DELETE", sourcesPath+"/"+e.directoryUserWith(all...), tok, nil)
			return s
		}},
		{"repoint the source of a plain directory user", auth.SourcesManage, nil, func(e *delegationEnv, tok, _ string) int {
			s, _ := e.gh.Do("PUT", sourcesPath+"/"+e.directoryUserWith(), tok, offlineSourceBody(e.unique("src")))
			return s
		}},
		{"set the certificate-login CA (configuration API)", auth.ConfigManage, all, func(e *delegationEnv, tok, _ string) int {
			if s, _ := e.gh.Do("POST", "/api/transaction", tok, nil); s != http.StatusOK {
				return s
			}
			defer e.gh.Do("DELETE", "/api/transaction", tok, nil)
			ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.gh.Server.CA().Root().Raw}))
			s, _ := e.gh.Do("PUT", "/api/configuration/aaa/settings", tok, map[string]any{"x509": map[string]any{"authentication_ca": ca}})
			return s
		}},
	}
}

// TestDelegationMatrix runs every sensitive operation as every delegated admin, end to end through the HTTP
// APIs: an operation is allowed exactly when the caller holds the route's permission and everything the object
// carries. Before the rule, users-manage reset superusers' passwords, roles-manage granted itself the superuser
// role and api-clients-manage minted superuser clients and read every client's secret.
func TestDelegationMatrix(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	e := &delegationEnv{t: t, gh: gh, adm: gh.AdminToken()}
	actors := []struct {
		name  string
		perms []string
	}{
		{"users-manage", []string{auth.UsersManage}},
		{"roles-manage", []string{auth.RolesManage}},
		{"api-clients-manage", []string{auth.APIClientsManage}},
		{"sources-manage", []string{auth.SourcesManage}},
		{"config-manage", []string{auth.ConfigManage}},
		{"users+roles+clients-manage", []string{auth.UsersManage, auth.RolesManage, auth.APIClientsManage}},
		{"roles-manage+audit-view", []string{auth.RolesManage, auth.AuditView}},
		{"superuser", auth.AllPermissions},
	}
	for _, a := range actors {
		uid := gh.Create(usersPath, e.adm, map[string]any{"username": "deleg-" + a.name, "password": "Deleg-pass-12"})
		role := e.role(a.perms...)
		held := auth.NewPermissionSet(a.perms)
		for _, op := range delegationOps() {
			t.Run(a.name+"/"+op.name, func(t *testing.T) {
				// The expectation is worked out here, not by auth.CheckHolds, which is what is under test.
				want := held.Has(op.needs) && !slices.ContainsFunc(op.carries, func(p string) bool { return !held.Has(p) })
				// Put the actor's role back and log in afresh: an allowed change to the actor's own roles ends
				// its sessions.
				gh.JSON("PUT", "/role-store/api/v1/users/"+uid+"/roles", e.adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
				tok := gh.Token("deleg-"+a.name, "Deleg-pass-12")
				status := op.do(e, tok, uid)
				switch {
				case want && (status < 200 || status > 299):
					t.Errorf("status %d, want success", status)
				case !want && status != http.StatusForbidden:
					t.Errorf("status %d, want 403", status)
				}
			})
		}
	}
}
