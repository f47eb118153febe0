package warehouse

import "context"

// backend is what the Store needs from a ClickHouse: the server over the
// native protocol (serverBackend) or chDB in process (embeddedBackend).
// Every statement names its tables with the database, so neither backend
// has a current database.
type backend interface {
	// exec runs a statement that returns no rows (DDL).
	exec(ctx context.Context, sql string) error
	// insert writes b with its column list. A non-empty token is sent as
	// insert_deduplication_token (modern profile only); insert returns nil
	// only when ClickHouse has acknowledged every row.
	insert(ctx context.Context, db string, b *block, token string) error
	// query runs a SELECT and returns every row.
	query(ctx context.Context, sql string) (*Rows, error)
	// queryIDs is query with a set of ids shipped beside the statement:
	// idSetPlaceholder in sql is replaced by a table expression with one
	// String column, id (an external table on the server, a temporary
	// RowBinary file read through file() in chDB).
	queryIDs(ctx context.Context, sql string, ids []string) (*Rows, error)
	// settle waits until no insert that failed earlier is still running on
	// the server: a failed insert (a cut connection, a cancelled context)
	// may still be applied after the client gave up, and an existence check
	// made before it lands would let the retry insert the rows twice.
	settle(ctx context.Context) error
	// use makes db the default database of later statements, so analysts'
	// queries can name tables without it.
	use(ctx context.Context, db string) error
	ping(ctx context.Context) error
	close() error
}

// idSetPlaceholder marks where queryIDs puts the id set.
const idSetPlaceholder = "{ids}"

// insertSettings are the settings sent with every insert carrying a token:
// deduplication on, and blocks pushed into the rollup view deduplicated with
// it, so an insert retried in process is not counted twice by attempts_1m.
func insertSettings(token string) []setting {
	return []setting{
		{"insert_deduplicate", "1"},
		{"insert_deduplication_token", token},
		{"deduplicate_blocks_in_dependent_materialized_views", "1"},
	}
}

// setting is one query-level ClickHouse setting.
type setting struct{ name, value string }
