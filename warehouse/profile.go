package warehouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Profile is the small set of ClickHouse differences the schema and the
// writer adapt to. It is chosen from `SELECT version()` when a Store opens
// (or forced with Config.Profile) and is otherwise the same SQL.
type Profile struct {
	// Name is "modern" or "legacy".
	Name string
	// Version is the engine's version string, e.g. "26.7.2.1" or "18.16.1";
	// empty when the profile was built without a connection (tests, golden
	// files).
	Version string

	// DateTime64 stores times as DateTime64(3, 'UTC'); otherwise DateTime
	// ('UTC') with the exact milliseconds in the *_ms Int64 column beside it.
	DateTime64 bool
	// LowCardinality stores repetitive strings (regions, models, results) as
	// LowCardinality(String); otherwise String.
	LowCardinality bool
	// Codecs adds column compression codecs (Delta, ZSTD).
	Codecs bool
	// TTL adds retention TTLs with ttl_only_drop_parts = 1.
	TTL bool
	// InsertDedup sets non_replicated_deduplication_window on the MergeTree
	// tables and sends insert_deduplication_token with every insert.
	InsertDedup bool
	// WideDecimal stores wei amounts as Decimal(76, s) (Decimal256, 20.8+);
	// otherwise Decimal(38, s) (Decimal128, which 18.16 has), enough below
	// event.MaxWeiDigits integer digits.
	WideDecimal bool
}

// minModernMajor is the first ClickHouse release with everything the modern
// profile uses: insert_deduplication_token arrived in 22.2, so 22.3 LTS is
// the floor. Anything older gets the legacy profile, whose DDL also runs on
// every newer release.
const (
	minModernMajor = 22
	minModernMinor = 3
)

// ModernProfile returns the profile for ClickHouse ≥ 22.3 and chDB.
func ModernProfile() Profile {
	return Profile{Name: ProfileModern, DateTime64: true, LowCardinality: true, Codecs: true, TTL: true, InsertDedup: true, WideDecimal: true}
}

// LegacyProfile returns the profile for older servers (written for 18.16).
func LegacyProfile() Profile {
	return Profile{Name: ProfileLegacy}
}

// Profile names, for Config.Profile.
const (
	ProfileAuto   = "auto"
	ProfileModern = "modern"
	ProfileLegacy = "legacy"
)

// profileFor picks the profile for a version() string; name forces one.
func profileFor(name, version string) (Profile, error) {
	var p Profile
	switch name {
	case ProfileModern:
		p = ModernProfile()
	case ProfileLegacy:
		p = LegacyProfile()
	case ProfileAuto, "":
		major, minor, err := parseVersion(version)
		if err != nil {
			return Profile{}, err
		}
		if major > minModernMajor || (major == minModernMajor && minor >= minModernMinor) {
			p = ModernProfile()
		} else {
			p = LegacyProfile()
		}
	default:
		return Profile{}, fmt.Errorf("unknown profile %q", name)
	}
	p.Version = version
	return p, nil
}

// parseVersion reads the major and minor number of a ClickHouse version()
// string such as "18.16.1" or "26.7.2.1".
func parseVersion(v string) (major, minor int, err error) {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("parse version %q: want major.minor", v)
	}
	if major, err = strconv.Atoi(parts[0]); err != nil {
		return 0, 0, fmt.Errorf("parse version %q: %w", v, err)
	}
	if minor, err = strconv.Atoi(parts[1]); err != nil {
		return 0, 0, fmt.Errorf("parse version %q: %w", v, err)
	}
	return major, minor, nil
}

// timeFromMs is the SQL expression turning a Unix-milliseconds Int64 column
// into the profile's time type.
func (p Profile) timeFromMs(col string) string {
	if p.DateTime64 {
		return fmt.Sprintf("fromUnixTimestamp64Milli(%s, 'UTC')", col)
	}
	return fmt.Sprintf("toDateTime(intDiv(%s, 1000), 'UTC')", col)
}

// timeLiteral is a constant of the profile's time type for Unix ms, used in
// WHERE clauses so the primary key (which starts with time) prunes. The
// legacy value is truncated to the second, which keeps a `>=` bound
// inclusive; upper bounds use timeLiteralCeil.
func (p Profile) timeLiteral(ms int64) string {
	if p.DateTime64 {
		return fmt.Sprintf("fromUnixTimestamp64Milli(toInt64(%d), 'UTC')", ms)
	}
	return fmt.Sprintf("toDateTime(%d, 'UTC')", floorDiv(ms, 1000))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
