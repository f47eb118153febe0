package warehouse

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ErrNoChdb is returned by Open for the embedded backend when libchdb.so
// cannot be found or loaded.
var ErrNoChdb = errors.New("libchdb not available")

// ErrEngineInUse is returned by Open for the embedded backend when another
// embedded Store in this process is still open: libchdb runs one engine per
// process.
var ErrEngineInUse = errors.New("embedded engine already open in this process")

// ErrDataDirInUse is returned by Open for the embedded backend when another
// process has the data directory open.
var ErrDataDirInUse = errors.New("embedded data dir in use by another process")

// engineInUse guards the one chDB engine a process may run. Package-level
// state is deliberate here (and in libCache below, the only other instance):
// the resource it guards, the engine inside libchdb, is itself
// process-global, and a second chdb_connect would silently replace the first
// Store's session.
var engineInUse atomic.Bool

// chdbLib is the C API of libchdb.so that the embedded backend uses, bound
// lazily with purego when the backend is opened. The signatures follow
// chdb.h (chDB ≥ 3.x, the API chdb-go v1.11 binds):
//
//	chdb_connection *chdb_connect(int argc, char **argv);
//	void chdb_close_conn(chdb_connection *conn);
//	chdb_result *chdb_query(chdb_connection conn, const char *query, const char *format);
//	void chdb_destroy_query_result(chdb_result *result);
//	char *chdb_result_buffer(chdb_result *result);
//	size_t chdb_result_length(chdb_result *result);
//	const char *chdb_result_error(chdb_result *result);
//
// chdb_connection is a pointer to an opaque struct; chdb_connect returns a
// pointer to one.
type chdbLib struct {
	connect   func(argc int32, argv unsafe.Pointer) unsafe.Pointer
	closeConn func(conn unsafe.Pointer)
	query     func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	destroy   func(result unsafe.Pointer)
	buffer    func(result unsafe.Pointer) unsafe.Pointer
	length    func(result unsafe.Pointer) uintptr
	errorMsg  func(result unsafe.Pointer) unsafe.Pointer
}

// libCache keeps the bound library per path: dlopen is reference counted
// and ClickHouse must never be unloaded, so binding once is both cheaper and
// safer. Guarded by libMu; like engineInUse it mirrors process-global state
// (the dynamic loader's).
var (
	libMu    sync.Mutex
	libCache = map[string]*chdbLib{}
)

// loadChdb binds libchdb.so at path.
func loadChdb(path string) (*chdbLib, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: libchdb.so %s is not installed and no path is set: run `make run`, `make test` or `deploy/local/chdb.sh install` once (it caches the library), or set LOOPGATE_CHDB_LIB (warehouse.lib_path)", ErrNoChdb, ChdbVersion)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoChdb, err)
	}
	libMu.Lock()
	defer libMu.Unlock()
	if lib := libCache[path]; lib != nil {
		return lib, nil
	}
	l, err := bindChdb(path)
	if err != nil {
		return nil, err
	}
	libCache[path] = l
	return l, nil
}

// chdbConn is one open chDB session. It is not safe for concurrent use; the
// embedded backend serialises calls.
type chdbConn struct {
	lib  *chdbLib
	conn unsafe.Pointer // chdb_connection *
}

// connect opens a session with clickhouse-local style arguments, e.g.
// "--path=/var/lib/loopgate/chdb".
func (l *chdbLib) open(args ...string) (*chdbConn, error) {
	argv := append([]string{"clickhouse"}, args...)
	bufs := make([][]byte, len(argv))
	ptrs := make([]*byte, len(argv)+1)
	for i, a := range argv {
		bufs[i] = append([]byte(a), 0)
		ptrs[i] = &bufs[i][0]
	}
	c := l.connect(int32(len(argv)), unsafe.Pointer(&ptrs[0]))
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(ptrs)
	if c == nil {
		return nil, fmt.Errorf("chdb_connect %v returned no connection", args)
	}
	if *(*unsafe.Pointer)(c) == nil {
		return nil, fmt.Errorf("chdb_connect %v returned a closed connection", args)
	}
	return &chdbConn{lib: l, conn: c}, nil
}

// query runs one statement and returns its output in format (e.g.
// "JSONCompact", "CSV"). A query ending in a NUL byte is passed to C
// without a copy.
func (c *chdbConn) query(q, format string) ([]byte, error) {
	if c.conn == nil {
		return nil, errors.New("chdb connection closed")
	}
	// chdb_query takes the chdb_connection by value: the pointer stored at
	// the address chdb_connect returned.
	res := c.lib.query(*(*unsafe.Pointer)(c.conn), q, format)
	if res == nil {
		return nil, nil
	}
	defer c.lib.destroy(res)
	if e := c.lib.errorMsg(res); e != nil {
		if msg := cString(e); msg != "" {
			return nil, errors.New(msg)
		}
	}
	n := int(c.lib.length(res))
	buf := c.lib.buffer(res)
	if n == 0 || buf == nil {
		return nil, nil
	}
	out := make([]byte, n)
	copy(out, unsafe.Slice((*byte)(buf), n))
	return out, nil
}

func (c *chdbConn) close() {
	if c.conn != nil {
		c.lib.closeConn(c.conn)
		c.conn = nil
	}
}

// cString copies a NUL-terminated C string.
func cString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}
