package configapi

// PermissionTable exposes the permission table to the external tests that check user_info against it.
func PermissionTable() []struct{ URL, Method, Perm string } {
	out := make([]struct{ URL, Method, Perm string }, 0, len(permissionTable))
	for _, a := range permissionTable {
		out = append(out, struct{ URL, Method, Perm string }{a.URL, a.Method, a.Perm})
	}
	return out
}

// Public marks rows that need no login.
const Public = public
