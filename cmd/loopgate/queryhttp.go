package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/loopgate/loopgate/warehouse"
)

// queryResult is the JSON form of warehouse rows on the admin /query
// endpoint.
type queryResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	Error   string   `json:"error,omitempty"`
}

// readOnly reports whether sql is a statement that only reads.
func readOnly(sql string) bool {
	s := strings.ToUpper(strings.TrimSpace(sql))
	for _, p := range []string{"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC ", "EXPLAIN"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// queryHandler serves GET /query?sql=SELECT... on the admin port of
// `loopgate dev`, whose embedded ClickHouse no other process can open while
// it runs. Only read-only statements are accepted.
func queryHandler(store *warehouse.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sql := r.URL.Query().Get("sql")
		w.Header().Set("Content-Type", "application/json")
		if !readOnly(sql) {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(queryResult{Error: "want ?sql= a read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN)"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		rows, err := store.Query(ctx, sql)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(queryResult{Error: err.Error()})
			return
		}
		json.NewEncoder(w).Encode(queryResult{Columns: rows.Columns, Rows: rows.Values})
	})
}

// queryRunningDev asks a running `loopgate dev` (its admin port) to run sql.
func queryRunningDev(ctx context.Context, adminAddr, sql string) (*warehouse.Rows, error) {
	ctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/query?sql="+url.QueryEscape(sql), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the running loopgate dev at %s: %w", adminAddr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var qr queryResult
	if err := json.Unmarshal(body, &qr); err != nil {
		return nil, fmt.Errorf("answer of %s/query: %w", adminAddr, err)
	}
	if qr.Error != "" {
		return nil, errors.New(qr.Error)
	}
	return &warehouse.Rows{Columns: qr.Columns, Values: qr.Rows}, nil
}
