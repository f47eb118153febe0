package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/loopgate/loopgate/admin"

	"github.com/loopgate/loopgate/gateway"
	"github.com/loopgate/loopgate/warehouse"
)

// validateGateway checks the gateway section and the gateway's side of
// every configured key (networks, limits, budgets).
func (c Config) validateGateway() error {
	errs := []error{c.Gateway.Validate()}
	for _, k := range c.Router.APIKeys {
		errs = append(errs, gateway.ValidateKey(k))
	}
	return errors.Join(errs...)
}

// hasBudgets reports whether any customer or key has a budget: only then
// does a router need the warehouse (to share spend).
func (c Config) hasBudgets() bool {
	for _, cu := range c.Gateway.Customers {
		if len(cu.Budgets) > 0 {
			return true
		}
	}
	for _, k := range c.Router.APIKeys {
		if len(k.Budgets) > 0 {
			return true
		}
	}
	return false
}

// storeAuditor writes the gateway's budget warnings to the audit table.
type storeAuditor struct {
	store *warehouse.Store
	actor string
}

func (a storeAuditor) Audit(ctx context.Context, action, detail string) error {
	if err := a.store.WriteAudit(ctx, warehouse.AuditEntry{Actor: a.actor, Action: action, Detail: detail}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// gatewayOptions share spend and audit warnings through store (nil: this
// router's own spend only, warnings as metrics and logs).
func gatewayOptions(store *warehouse.Store, gatewayID string) []gateway.Option {
	if store == nil {
		return nil
	}
	return []gateway.Option{gateway.WithSpendSource(store), gateway.WithAuditor(storeAuditor{store: store, actor: "gateway:" + gatewayID})}
}

// needsWarehouse reports whether a router process needs the warehouse: to
// share budgets, or to keep the keys made through the admin API.
func (c Config) needsWarehouse() bool { return c.hasBudgets() || c.Gateway.KeyAPI }

// enableKeys serves the key API from store on this router and applies
// the stored keys before it serves.
func (s *routerService) enableKeys(ctx context.Context, cfg Config, store *warehouse.Store, p process) error {
	keys, err := gateway.NewKeys(store, s.r, rand.Reader, cfg.Gateway.KeySyncInterval, p.deps("keys"))
	if err != nil {
		return err
	}
	if err := keys.Load(ctx); err != nil {
		return err
	}
	s.keys = keys
	return nil
}

// mountKeys puts the key API on the admin server, when it is served.
func (s *routerService) mountKeys(srv *admin.Server) {
	if s.keys == nil {
		return
	}
	h := s.keys.Handler()
	srv.Handle("GET /keys", admin.RoleRead, h)
	srv.Handle("POST /keys", admin.RoleAdmin, h)
	srv.Handle("POST /keys/{id}/revoke", admin.RoleAdmin, h)
	srv.Handle("POST /keys/{id}/rotate", admin.RoleAdmin, h)
}
