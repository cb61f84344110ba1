package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gatehouse-dev/gatehouse/internal/extender"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newExtenderHub builds the hub that serves agents' connect requests on the API listener and dials through them
// for the proxy. Tokens are looked up by keyed hash; a disabled extender's token is refused like an unknown one.
func newExtenderHub(st *store.Store, log *slog.Logger) *extender.Hub {
	return &extender.Hub{
		Log: log,
		Authenticate: func(ctx context.Context, token string) (extender.Identity, error) {
			e, err := st.ExtenderByToken(ctx, token)
			if errors.Is(err, store.ErrNotExist) || (err == nil && !e.Enabled) {
				return extender.Identity{}, extender.ErrRefused
			}
			if err != nil {
				return extender.Identity{}, err
			}
			return extender.Identity{ID: e.ID, Name: e.Name, Prefix: e.RoutingPrefix}, nil
		},
		OnStatus: func(ctx context.Context, id string, s extender.Status) {
			if err := st.SetExtenderStatus(ctx, id, s.Since, s.Address, s.Version, s.Heartbeat); err != nil {
				log.Warn("extender status not recorded", "extender_id", id, "err", err)
			}
		},
	}
}
