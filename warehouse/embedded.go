package warehouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

// errClosed is returned by a backend used after Close.
var errClosed = errors.New("warehouse closed")

// embeddedBackend runs chDB inside this process. One engine per process
// (see engineInUse); calls are serialised through sem, a one-slot
// semaphore that a waiting caller can abandon when its context ends.
type embeddedBackend struct {
	conn   *chdbConn
	sem    chan struct{}
	tmpDir string // insert and id-set files, under the data dir
	unlock func() // releases the data dir lock
	method insertMethod
}

// insertMethod is how the embedded backend hands rows to chDB.
type insertMethod int

const (
	// insertFileRowBinary writes RowBinary to a temporary file and inserts
	// from the file() table function. The default: twice as fast as inline
	// text for 10k-row batches (BenchmarkEmbeddedInsertMethod, doc.go).
	insertFileRowBinary insertMethod = iota
	// insertInlineTSV sends the rows inside the INSERT statement as
	// TabSeparated text. Kept for the comparison benchmark.
	insertInlineTSV
)

// ChdbVersion is the libchdb release the embedded backend is built and
// tested against: the npm package @chdb/lib-linux-x64-gnu at this version,
// which deploy/local/chdb.sh installs (a test keeps the two in step).
const ChdbVersion = "26.7.3-stable.1"

// chdbLibPath resolves Config.LibPath: the field, then LOOPGATE_CHDB_LIB,
// then CHDB_LIB_PATH (the variable chdb-go reads), then the copy that
// deploy/local/chdb.sh caches for `make run` and `make test`
// ($LOOPGATE_CACHE, default ~/.cache/loopgate, /chdb-VERSION/libchdb.so)
// when it exists. "" when none is set or cached.
func chdbLibPath(cfg Config, getenv func(string) string) string {
	for _, p := range []string{cfg.LibPath, getenv("LOOPGATE_CHDB_LIB"), getenv("CHDB_LIB_PATH")} {
		if p != "" {
			return p
		}
	}
	if p := cachedChdbLib(getenv); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// cachedChdbLib is where deploy/local/chdb.sh installs libchdb.
func cachedChdbLib(getenv func(string) string) string {
	cache := getenv("LOOPGATE_CACHE")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			return ""
		}
		cache = filepath.Join(home, ".cache", "loopgate")
	}
	return filepath.Join(cache, "chdb-"+ChdbVersion, "libchdb.so")
}

// openEmbedded loads libchdb (on first use in the process) and opens a
// session on cfg.DataDir.
func openEmbedded(cfg Config) (*embeddedBackend, error) {
	lib, err := loadChdb(chdbLibPath(cfg, os.Getenv))
	if err != nil {
		return nil, err
	}
	if !engineInUse.CompareAndSwap(false, true) {
		return nil, ErrEngineInUse
	}
	fail := func(err error) (*embeddedBackend, error) {
		engineInUse.Store(false)
		return nil, err
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return fail(fmt.Errorf("create data dir %s: %w", cfg.DataDir, err))
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return fail(err)
	}
	// Files left by a crash are useless: start the directory afresh.
	tmp := filepath.Join(dir, "loopgate-tmp")
	if err := os.RemoveAll(tmp); err != nil {
		unlock()
		return fail(fmt.Errorf("clear temporary dir: %w", err))
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		unlock()
		return fail(fmt.Errorf("create temporary dir: %w", err))
	}
	conn, err := lib.open(
		"--path="+dir,
		// Inserts are acknowledged only when written: chDB turns
		// async_insert on by default.
		"--async_insert=0",
		// Rows decodes numbers itself; unquoted is exact with UseNumber.
		"--output_format_json_quote_64bit_integers=0",
	)
	if err != nil {
		unlock()
		return fail(fmt.Errorf("open chdb at %s: %w", dir, err))
	}
	return &embeddedBackend{conn: conn, sem: make(chan struct{}, 1), tmpDir: tmp, unlock: unlock}, nil
}

// run executes one query under the semaphore, then calls after (if not
// nil) once the statement is done with its input. If ctx ends first, run
// returns ctx.Err() at once; the statement still completes in the
// background (chDB cannot cancel it), then calls after and releases the
// semaphore.
func (e *embeddedBackend) run(ctx context.Context, q, format string, after func()) ([]byte, error) {
	if after == nil {
		after = func() {}
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		after()
		return nil, ctx.Err()
	}
	if e.conn == nil || ctx.Err() != nil {
		<-e.sem
		after()
		if e.conn == nil {
			return nil, errClosed
		}
		return nil, ctx.Err()
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-e.sem }()
		out, err := e.conn.query(q, format)
		if err != nil {
			// chDB keeps what a statement wrote before it failed during
			// execution (throwIf, max_result_rows) and returns it ahead of
			// the next statement's own result, which would then decode as
			// the failed one's (empty) rows. A throwaway statement run while
			// still holding the engine takes it.
			e.conn.query("SELECT 1", "TabSeparated") //nolint:errcheck // only drains
		}
		after()
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *embeddedBackend) exec(ctx context.Context, sql string) error {
	_, err := e.run(ctx, sql, "TabSeparated", nil)
	return err
}

// settle has nothing to wait for: the engine runs one statement at a time,
// so an abandoned insert finishes before the next statement starts.
func (e *embeddedBackend) settle(context.Context) error { return nil }

// use runs USE, which the engine session keeps for later statements.
func (e *embeddedBackend) use(ctx context.Context, db string) error {
	return e.exec(ctx, "USE "+db)
}

func (e *embeddedBackend) query(ctx context.Context, sql string) (*Rows, error) {
	return e.queryThen(ctx, sql, nil)
}

func (e *embeddedBackend) queryThen(ctx context.Context, sql string, after func()) (*Rows, error) {
	out, err := e.run(ctx, sql, "JSONCompact", after)
	if err != nil {
		return nil, err
	}
	return parseJSONCompact(out)
}

// queryIDs writes ids to a temporary RowBinary file and reads it with
// file(): chDB has no external tables.
func (e *embeddedBackend) queryIDs(ctx context.Context, sql string, ids []string) (*Rows, error) {
	data, err := appendRowBinary(nil, &block{table: "ids", rows: len(ids), cols: []column{{"id", ids}}})
	if err != nil {
		return nil, err
	}
	path, err := e.writeTemp("ids-*.rowbinary", data)
	if err != nil {
		return nil, err
	}
	set := fmt.Sprintf("(SELECT id FROM file(%s, 'RowBinary', 'id String'))", quote(path))
	return e.queryThen(ctx, strings.Replace(sql, idSetPlaceholder, set, 1), func() { os.Remove(path) })
}

// writeTemp writes data to a new file in the temporary directory.
func (e *embeddedBackend) writeTemp(pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(e.tmpDir, pattern)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write temporary file: %w", err)
	}
	return f.Name(), nil
}

func (e *embeddedBackend) ping(ctx context.Context) error {
	_, err := e.run(ctx, "SELECT 1", "TabSeparated", nil)
	return err
}

func (e *embeddedBackend) insert(ctx context.Context, db string, b *block, token string) error {
	if e.method == insertFileRowBinary {
		return e.insertFile(ctx, db, b, token)
	}
	return e.insertInline(ctx, db, b, token)
}

// insertInline sends b as TabSeparated text inside the statement.
func (e *embeddedBackend) insertInline(ctx context.Context, db string, b *block, token string) error {
	var q []byte
	q = appendInsertHead(q, db, b, token)
	q = append(q, " FORMAT TabSeparated\n"...)
	q, err := appendTSV(q, b)
	if err != nil {
		return err
	}
	// A trailing NUL lets purego pass the statement to C without a copy.
	q = append(q, 0)
	_, err = e.run(ctx, unsafe.String(&q[0], len(q)), "TabSeparated", nil)
	return err
}

// insertFile writes RowBinary to a temporary file under the data dir and
// inserts it through file().
func (e *embeddedBackend) insertFile(ctx context.Context, db string, b *block, token string) error {
	data, err := appendRowBinary(nil, b)
	if err != nil {
		return err
	}
	path, err := e.writeTemp("insert-*.rowbinary", data)
	if err != nil {
		return err
	}
	structure := make([]string, len(b.cols))
	for i, c := range b.cols {
		structure[i] = c.name + " " + chType(c.data)
	}
	q := appendInsertHead(nil, db, b, token)
	q = fmt.Appendf(q, " SELECT * FROM file(%s, 'RowBinary', %s)", quote(path), quote(strings.Join(structure, ", ")))
	_, err = e.run(ctx, string(q), "TabSeparated", func() { os.Remove(path) })
	return err
}

// appendInsertHead appends "INSERT INTO db.table (cols) SETTINGS ...".
func appendInsertHead(q []byte, db string, b *block, token string) []byte {
	q = fmt.Appendf(q, "INSERT INTO %s.%s (%s)", db, b.table, strings.Join(b.names(), ", "))
	if token == "" {
		return q
	}
	for i, s := range insertSettings(token) {
		if i == 0 {
			q = append(q, " SETTINGS "...)
		} else {
			q = append(q, ", "...)
		}
		q = append(q, s.name...)
		q = append(q, " = "...)
		q = appendQuoted(q, s.value)
	}
	return q
}

// chType is the ClickHouse type of a block column's Go slice.
func chType(data any) string {
	switch data.(type) {
	case []string:
		return "String"
	case []int64:
		return "Int64"
	case []uint64:
		return "UInt64"
	case []uint32:
		return "UInt32"
	case []uint16:
		return "UInt16"
	case []uint8:
		return "UInt8"
	case []float64:
		return "Float64"
	}
	return "String"
}

func (e *embeddedBackend) close() error {
	e.sem <- struct{}{} // wait for a statement still running
	defer func() { <-e.sem }()
	if e.conn == nil {
		return nil
	}
	e.conn.close()
	e.conn = nil
	e.unlock()
	engineInUse.Store(false)
	return nil
}
