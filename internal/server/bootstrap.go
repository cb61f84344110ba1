package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// AdminPasswordFile is where a generated first-start admin password is written, inside the data dir.
const AdminPasswordFile = "initial-admin-password"

// bootstrap creates the superuser role and the admin user on first start with an empty store. The password is
// adminPassword if set; otherwise it is generated, written to <dataDir>/initial-admin-password (0600) and printed
// once to out.
func bootstrap(ctx context.Context, st *store.Store, dataDir, adminPassword string, out io.Writer, log *slog.Logger) error {
	n, err := st.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if n > 0 {
		if err := upgradeEveryPermission(ctx, st, log); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if adminPassword != "" {
			// Applying it here would let anyone who can set the environment reset the admin password on every
			// restart; say so instead of ignoring it silently.
			log.Warn("GATEHOUSE_ADMIN_PASSWORD is set but ignored: it only sets the admin password on the first start with an empty store, and this store already has users",
				"data_dir", dataDir, "hint", "log in with the existing admin password (a generated one is in "+filepath.Join(dataDir, AdminPasswordFile)+"), or start on a new --data-dir")
		}
		return nil
	}
	generated := adminPassword == ""
	if generated {
		adminPassword = secrets.RandomToken(18)
	}
	hash, err := secrets.HashPassword(adminPassword)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	role := &model.Role{Name: "superuser", Comment: "Every permission; created at first start", Permissions: auth.AllPermissions}
	if err := st.CreateRole(ctx, role, "gatehouse"); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	admin := &model.User{Username: "admin", FullName: "Administrator", Enabled: true, PasswordHash: hash}
	if err := st.CreateUser(ctx, admin, "gatehouse"); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := st.SetUserRoles(ctx, admin.ID, []string{role.ID}); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if generated {
		path := filepath.Join(dataDir, AdminPasswordFile)
		if err := os.WriteFile(path, []byte(adminPassword+"\n"), 0o600); err != nil {
			return fmt.Errorf("bootstrap: write %s: %w", path, err)
		}
		fmt.Fprintf(out, "Created user admin with a generated password (also in %s; shown only this once):\n\n    %s\n\n", path, adminPassword)
	} else {
		fmt.Fprintln(out, "Created user admin with the password from GATEHOUSE_ADMIN_PASSWORD.")
	}
	return nil
}

// upgradeEveryPermission gives roles that hold every permission of an older release (the first-start superuser of
// an older data dir) the permissions added since, so that its admin can use the new features; roles narrowed on
// purpose are left alone (auth.UpgradeEveryPermission).
func upgradeEveryPermission(ctx context.Context, st *store.Store, log *slog.Logger) error {
	var roles []*model.Role
	for offset := 0; ; {
		page, total, err := st.ListRoles(ctx, store.ListOptions{Offset: offset, Limit: 1000})
		if err != nil {
			return err
		}
		roles = append(roles, page...)
		offset += len(page)
		if len(page) == 0 || offset >= total {
			break
		}
	}
	for _, r := range roles {
		added := auth.UpgradeEveryPermission(r.Permissions)
		if len(added) == 0 {
			continue
		}
		r.Permissions = append(r.Permissions, added...)
		if err := st.UpdateRole(ctx, r, "gatehouse"); err != nil {
			return fmt.Errorf("upgrade role %s: %w", r.Name, err)
		}
		log.Info("role holding every permission of an older release given the new ones", "role", r.Name, "added", added)
	}
	return nil
}
