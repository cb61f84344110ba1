package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cluster"
	"github.com/gatehouse-dev/gatehouse/internal/extender"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// extenderLinkFresh is how old a session's registry heartbeat may be before other nodes stop relaying to it: three
// missed pings of the hub's default 15 s, as the status view counts it.
const extenderLinkFresh = 45 * time.Second

// newExtenderHub builds the hub that serves agents' connect requests on the API listener and dials through them
// for the proxy. Tokens are looked up by keyed hash and certificates by fingerprint after verification against
// the extender CA; a disabled extender's credential is refused like an unknown one, and every refusal is audited.
// At every heartbeat a session is checked again, so a deleted, disabled or re-keyed extender loses it even when
// the change was made through another node.
func newExtenderHub(st *store.Store, clientCA *extender.ClientCA, log *slog.Logger) *extender.Hub {
	admit := func(e *model.Extender, credential string) (extender.Identity, error) {
		if !e.Enabled {
			return extender.Identity{}, &extender.Refusal{Reason: "extender disabled", ExtenderID: e.ID, Extender: e.Name}
		}
		return extender.Identity{ID: e.ID, Name: e.Name, Prefix: e.RoutingPrefix, Credential: credential}, nil
	}
	return &extender.Hub{
		Log: log,
		Authenticate: func(ctx context.Context, token string) (extender.Identity, error) {
			e, err := st.ExtenderByToken(ctx, token)
			if errors.Is(err, store.ErrNotExist) {
				return extender.Identity{}, &extender.Refusal{Reason: "unknown or revoked token"}
			}
			if err != nil {
				return extender.Identity{}, err
			}
			if e.Authentication != model.ExtenderAuthToken {
				return extender.Identity{}, &extender.Refusal{Reason: "extender authenticates with a certificate", ExtenderID: e.ID, Extender: e.Name}
			}
			return admit(e, "token:"+st.SecretIndex(store.IndexExtenderToken, token))
		},
		AuthenticateCert: func(ctx context.Context, chain []*x509.Certificate) (extender.Identity, error) {
			fp, err := clientCA.Verify(chain, time.Now())
			if err != nil {
				return extender.Identity{}, &extender.Refusal{Reason: "untrusted or expired certificate"}
			}
			e, err := st.ExtenderByCertificate(ctx, fp)
			if errors.Is(err, store.ErrNotExist) {
				// Our CA issued it, so it once belonged to an extender: reissued since, or the extender deleted.
				return extender.Identity{}, &extender.Refusal{Reason: "revoked certificate", ExtenderID: chain[0].Subject.CommonName}
			}
			if err != nil {
				return extender.Identity{}, err
			}
			return admit(e, "cert:"+fp)
		},
		Check: func(ctx context.Context, id extender.Identity) error {
			a, err := st.ExtenderAdmission(ctx, id.ID)
			if errors.Is(err, store.ErrNotExist) {
				return extender.ErrRefused
			}
			if err != nil {
				return err
			}
			current := "token:" + a.TokenIndex
			if a.Authentication == model.ExtenderAuthCertificate {
				current = "cert:" + a.CertFingerprint
				if time.Now().After(a.CertNotAfter) { // a session outlives its certificate only until the next heartbeat
					return extender.ErrRefused
				}
			}
			if !a.Enabled || a.RoutingPrefix != id.Prefix || current != id.Credential {
				return extender.ErrRefused
			}
			return nil
		},
		OnStatus: func(ctx context.Context, id string, s extender.Status) {
			if err := st.SetExtenderStatus(ctx, id, s.Since, s.Address, s.Version, s.Heartbeat); err != nil {
				log.Warn("extender status not recorded", "extender_id", id, "err", err)
			}
		},
		OnRefused: func(ctx context.Context, r extender.RefusedConnect) {
			diff := map[string]any{"reason": r.Reason, "credential": r.Kind}
			if r.Extender != "" {
				diff["extender"] = r.Extender
			}
			if r.Suppressed > 0 {
				diff["suppressed"] = r.Suppressed
			}
			source := r.Remote
			if host, _, err := net.SplitHostPort(source); err == nil {
				source = host
			}
			e := &model.AuditEvent{Actor: "(extender agent)", Action: "connect", ObjectType: "extender", ObjectID: r.ExtenderID,
				SourceAddress: source, Outcome: "failure", Diff: diff}
			if err := st.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
				log.Error("audit event lost", "action", "connect", "object_type", "extender", "err", err)
			}
		},
	}
}

// loadExtenderCA opens the CA that issues extenders' client certificates, kept in the database (its key sealed
// with the master key) so every node of a cluster verifies the same; the first start creates it.
func (s *Server) loadExtenderCA(ctx context.Context) (*extender.ClientCA, error) {
	const certBlob, keyBlob, aad = "extender-ca/ca.crt", "extender-ca/ca.key.sealed", "extender-ca"
	var ca *extender.ClientCA
	err := s.store.Exclusive(ctx, "extender-ca", func(ctx context.Context) error {
		certPEM, err := s.store.Blob(ctx, certBlob)
		if errors.Is(err, store.ErrNotExist) {
			cp, kp, err := extender.NewClientCA(time.Now())
			if err != nil {
				return err
			}
			sealed, err := s.keys.Seal(kp, []byte(aad))
			if err != nil {
				return err
			}
			if err := s.store.PutBlob(ctx, keyBlob, sealed); err != nil {
				return err
			}
			if err := s.store.PutBlob(ctx, certBlob, cp); err != nil {
				return err
			}
			ca, err = extender.ParseClientCA(cp, kp)
			return err
		} else if err != nil {
			return err
		}
		sealed, err := s.store.Blob(ctx, keyBlob)
		if err != nil {
			return err
		}
		keyPEM, err := s.keys.Open(sealed, []byte(aad))
		if err != nil {
			return err
		}
		ca, err = extender.ParseClientCA(certPEM, keyPEM)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("extender client ca: %w", err)
	}
	return ca, nil
}

// extenderControl closes an extender's sessions on this node and announces the change, so the node holding
// them, if another, checks its sessions at once; and it issues extenders' client certificates.
type extenderControl struct {
	s  *Server
	ca *extender.ClientCA
}

func (c extenderControl) IssueExtenderCertificate(id, name string) (model.ExtenderCertificate, string, string, error) {
	ic, err := c.ca.Issue(id, name, time.Now())
	if err != nil {
		return model.ExtenderCertificate{}, "", "", err
	}
	return model.ExtenderCertificate{Serial: ic.Serial, Fingerprint: ic.Fingerprint, NotAfter: ic.NotAfter}, ic.CertPEM, ic.KeyPEM, nil
}

func (c extenderControl) Disconnect(id string) {
	c.s.ext.Disconnect(id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.s.node.Publish(ctx, cluster.TopicChange)
}

// clusterExtenders lets any node of a cluster reach an extender connected to any other: the hub registers its
// sessions in the database, dials it cannot serve go to the owning node over an authenticated relay, and the
// relay endpoint serves the other nodes' dials. On SQLite the node is alone and nothing is set up.
func (s *Server) clusterExtenders(mux *http.ServeMux) {
	if !s.store.Clustered() {
		return
	}
	self, log := s.node.ID, s.log.With("component", "extender-relay")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	// Sessions this node registered before a crash are not held by this process.
	if err := s.store.DeleteNodeExtenderLinks(ctx, self); err != nil {
		log.Warn("forgetting this node's extender sessions from before failed", "err", err)
	}
	cancel()
	s.ext.OnLink = func(ctx context.Context, l extender.Link, up bool) {
		var err error
		if up {
			err = s.store.PutExtenderLink(ctx, store.ExtenderLink{Key: l.Key, ExtenderID: l.Extender.ID, NodeID: self,
				ConnectedSince: l.Status.Since, Heartbeat: l.Status.Heartbeat})
		} else {
			err = s.store.DeleteExtenderLink(ctx, l.Key)
		}
		if err != nil {
			log.Warn("extender session not registered for the cluster", "extender", l.Extender.Name, "err", err)
		}
	}
	// A session ending here clears the extender's status only when no other node holds one (whose next heartbeat
	// would otherwise set it again, after up to 15 s of "disconnected").
	record := s.ext.OnStatus
	s.ext.OnStatus = func(ctx context.Context, id string, st extender.Status) {
		if st.Since.IsZero() {
			if elsewhere, err := s.store.ExtenderLinkedElsewhere(ctx, id, self, time.Now().Add(-extenderLinkFresh)); err == nil && elsewhere {
				return
			}
		}
		record(ctx, id, st)
	}
	key := s.keys.SigningKey("extender-relay")
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.Root())
	timeout := s.node.Timeout
	if timeout <= 0 {
		timeout = cluster.DefaultTimeout
	}
	// Nodes of one cluster answer each other at once; a node that does not is skipped after 5 s, and its
	// registry entries stop counting once its heartbeat is stale.
	client := &extender.RelayClient{Self: self, Key: key, RootCAs: pool, Log: log, DialTimeout: 5 * time.Second,
		Owners: func(ctx context.Context, prefix string) ([]extender.Owner, error) {
			now := time.Now()
			nodes, err := s.store.ExtenderOwners(ctx, prefix, self, now.Add(-extenderLinkFresh), now.Add(-timeout))
			out := make([]extender.Owner, 0, len(nodes))
			for _, n := range nodes {
				out = append(out, extender.Owner{Node: n.ID, Address: n.APIAddress})
			}
			return out, err
		}}
	relay := &extender.RelayServer{Hub: s.ext, Key: key, Limiter: s.api.Limiter, Log: log}
	s.ext.Relay = client
	mux.Handle("GET "+extender.RelayPath, relay)
	s.closers = append(s.closers, func(context.Context) error { relay.Close(); client.Close(); return nil })
}

// reapExtenderLinks is a leader's job: it forgets registry entries of sessions whose node died without removing
// them.
func (s *Server) reapExtenderLinks(ctx context.Context) {
	t := time.NewTicker(extenderLinkFresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.store.DeleteStaleExtenderLinks(ctx, time.Now().Add(-2*extenderLinkFresh)); err != nil && ctx.Err() == nil {
				s.log.Warn("forgetting stale extender sessions failed", "err", err)
			}
		}
	}
}
