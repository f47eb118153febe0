package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/warehouse"
)

// queryResult is the JSON form of warehouse rows on the admin /query
// endpoint.
type queryResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// queryHandler serves GET /query?sql=SELECT... (read role) on the admin
// port of `loopgate dev`, whose embedded ClickHouse no other process can
// open while it runs. The statement runs read-only and sandboxed
// (warehouse.QueryReadOnly); a refused one is answered 400 with the reason.
func queryHandler(store *warehouse.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sql := r.URL.Query().Get("sql")
		if strings.TrimSpace(sql) == "" {
			admin.WriteError(w, http.StatusBadRequest, "want ?sql= one read-only statement")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		rows, err := store.QueryReadOnly(ctx, sql)
		switch {
		case errors.Is(err, warehouse.ErrNotReadOnly):
			admin.WriteError(w, http.StatusBadRequest, err.Error())
			return
		case err != nil:
			admin.WriteError(w, http.StatusBadRequest, "query failed: "+err.Error())
			return
		}
		admin.WriteJSON(w, http.StatusOK, queryResult{Columns: rows.Columns, Rows: rows.Values})
	})
}

// adminToken is the token `loopgate query` presents to a running
// `loopgate dev`: the admin token variable, else the token dev saved.
func adminToken(cfg Config) string {
	if cfg.Admin.TokenEnv != "" {
		if t := os.Getenv(cfg.Admin.TokenEnv); t != "" {
			return t
		}
	}
	b, err := os.ReadFile(devTokenPath(cfg))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// queryRunningDev asks a running `loopgate dev` (its admin port) to run sql.
func queryRunningDev(ctx context.Context, cfg Config, sql string) (*warehouse.Rows, error) {
	ctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	addr := cfg.Admin.Addr
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/query?sql="+url.QueryEscape(sql), nil)
	if err != nil {
		return nil, err
	}
	if t := adminToken(cfg); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the running loopgate dev at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e event.APIError
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return nil, fmt.Errorf("loopgate dev at %s: %s (%d)", addr, e.Error.Message, resp.StatusCode)
		}
		return nil, fmt.Errorf("loopgate dev at %s answered %s", addr, resp.Status)
	}
	var qr queryResult
	if err := json.Unmarshal(body, &qr); err != nil {
		return nil, fmt.Errorf("answer of %s/query: %w", addr, err)
	}
	return &warehouse.Rows{Columns: qr.Columns, Values: qr.Rows}, nil
}
