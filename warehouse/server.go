package warehouse

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
)

// serverBackend talks to a ClickHouse server over the native protocol.
// (clickhouse-go's HTTP protocol is refused by 18.16, and an INSERT ...
// VALUES through Exec hangs there, so every insert is a native batch with a
// column list.)
type serverBackend struct {
	conn driver.Conn
	cfg  Config
	now  func() time.Time

	mu      sync.Mutex
	seq     uint64
	unknown []string // query ids of failed inserts that may still be running

	insertExtra []setting // sent with every insert (the cluster profile's), set once at Open
}

func openServer(ctx context.Context, cfg Config, now func() time.Time) (*serverBackend, error) {
	conn, err := dialServer(ctx, cfg, "")
	if err != nil {
		return nil, err
	}
	return &serverBackend{conn: conn, cfg: cfg, now: now}, nil
}

// use reconnects with db as the connection's default database (the native
// protocol sets it per connection, at the handshake).
func (s *serverBackend) use(ctx context.Context, db string) error {
	conn, err := dialServer(ctx, s.cfg, db)
	if err != nil {
		return err
	}
	old := s.conn
	s.conn = conn
	return old.Close()
}

func dialServer(ctx context.Context, cfg Config, db string) (driver.Conn, error) {
	tc, err := cfg.TLS.Load()
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		TLS:          tc, // nil: plaintext
		Protocol:     clickhouse.Native,
		Addr:         []string{cfg.Addr},
		Auth:         clickhouse.Auth{Database: db, Username: cfg.Username, Password: cfg.Password},
		DialTimeout:  cfg.DialTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

func (s *serverBackend) exec(ctx context.Context, sql string) error {
	return s.conn.Exec(ctx, sql)
}

func (s *serverBackend) ping(ctx context.Context) error {
	return s.conn.Ping(ctx)
}

func (s *serverBackend) close() error {
	return s.conn.Close()
}

func (s *serverBackend) insert(ctx context.Context, db string, b *block, token string) error {
	var opts []clickhouse.QueryOption
	if token != "" || len(s.insertExtra) > 0 {
		settings := clickhouse.Settings{}
		all := s.insertExtra
		if token != "" {
			all = append(slices.Clip(all), insertSettings(token)...)
		}
		for _, st := range all {
			// Servers before settings travelled as strings (18.16) take
			// only integers; numbers go as numbers to every server.
			if n, err := strconv.Atoi(st.value); err == nil {
				settings[st.name] = n
			} else {
				settings[st.name] = st.value
			}
		}
		opts = append(opts, clickhouse.WithSettings(settings))
	}
	s.mu.Lock()
	s.seq++
	queryID := fmt.Sprintf("loopgate-insert-%d-%d-%d", os.Getpid(), s.now().UnixNano(), s.seq)
	s.mu.Unlock()
	opts = append(opts, clickhouse.WithQueryID(queryID))
	ctx = clickhouse.Context(ctx, opts...)
	err := s.insertBlock(ctx, db, b)
	if err != nil {
		s.mu.Lock()
		s.unknown = append(s.unknown, queryID)
		s.mu.Unlock()
	}
	return err
}

// settle polls system.processes until none of the failed inserts runs.
func (s *serverBackend) settle(ctx context.Context) error {
	s.mu.Lock()
	ids := append([]string(nil), s.unknown...)
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = quote(id)
	}
	sql := "SELECT count() FROM system.processes WHERE query_id IN (" + strings.Join(quoted, ", ") + ")"
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		rows, err := s.query(ctx, sql)
		if err != nil {
			return fmt.Errorf("wait for failed inserts to end: %w", err)
		}
		if rows.Len() == 1 && rows.Values[0][0] == uint64(0) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for failed inserts to end: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	s.mu.Lock()
	s.unknown = s.unknown[len(ids):]
	s.mu.Unlock()
	return nil
}

func (s *serverBackend) insertBlock(ctx context.Context, db string, b *block) error {
	batch, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", db, b.table, strings.Join(b.names(), ", ")))
	if err != nil {
		return fmt.Errorf("prepare batch: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // after Send it is a no-op
	for i, c := range b.cols {
		if err := batch.Column(i).Append(c.data); err != nil {
			return fmt.Errorf("append column %s: %w", c.name, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	return nil
}

// queryIDs sends ids as an external table (native protocol external data).
func (s *serverBackend) queryIDs(ctx context.Context, sql string, ids []string) (*Rows, error) {
	t, err := ext.NewTable("_loopgate_ids", ext.Column("id", "String"))
	if err != nil {
		return nil, fmt.Errorf("create external table: %w", err)
	}
	for _, id := range ids {
		if err := t.Append(id); err != nil {
			return nil, fmt.Errorf("append to external table: %w", err)
		}
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(t))
	return s.query(ctx, strings.Replace(sql, idSetPlaceholder, "_loopgate_ids", 1))
}

func (s *serverBackend) query(ctx context.Context, sql string) (*Rows, error) {
	rs, err := s.conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := &Rows{Columns: rs.Columns()}
	cts := rs.ColumnTypes()
	for _, ct := range cts {
		out.Types = append(out.Types, ct.DatabaseTypeName())
	}
	for rs.Next() {
		dest := make([]any, len(cts))
		for i, ct := range cts {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rs.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan row: %w", err)
		}
		row := make([]any, len(cts))
		for i := range dest {
			row[i] = normalize(reflect.ValueOf(dest[i]).Elem(), out.Types[i])
		}
		out.Values = append(out.Values, row)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	decimalType = reflect.TypeFor[decimal.Decimal]()
	bigIntType  = reflect.TypeFor[big.Int]()
)

// normalize maps a scanned clickhouse-go value of ClickHouse type typ to
// the types Rows documents, matching what the embedded backend returns.
func normalize(v reflect.Value, typ string) any {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return normalize(v.Elem(), typ)
	case reflect.Slice:
		base := unwrapType(typ)
		if !strings.HasPrefix(base, "Array(") {
			if v.Type().Elem().Kind() == reflect.Uint8 {
				return string(v.Bytes())
			}
			return v.Interface()
		}
		elem := base[len("Array(") : len(base)-1]
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalize(v.Index(i), elem)
		}
		return out
	}
	switch v.Type() {
	case timeType:
		return v.Interface().(time.Time).UTC()
	case decimalType:
		f, _ := v.Interface().(decimal.Decimal).Float64()
		return f
	case bigIntType:
		b := v.Interface().(big.Int)
		return b.String()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return v.Interface()
}
