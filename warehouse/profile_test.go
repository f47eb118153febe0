package warehouse

import "testing"

func TestProfileFor(t *testing.T) {
	tests := []struct {
		name, force, version string
		want                 string // profile name; empty for an error
	}{
		{"debian server", ProfileAuto, "18.16.1", ProfileLegacy},
		{"just before modern", "", "22.2.3.5", ProfileLegacy},
		{"first modern", ProfileAuto, "22.3.1.1", ProfileModern},
		{"chdb", ProfileAuto, "26.7.2.1", ProfileModern},
		{"later major", ProfileAuto, "23.1", ProfileModern},
		{"forced legacy", ProfileLegacy, "26.7.2.1", ProfileLegacy},
		{"forced modern", ProfileModern, "garbage", ProfileModern},
		{"unparsable", ProfileAuto, "garbage", ""},
		{"unknown name", "other", "26.7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := profileFor(tt.force, tt.version)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got profile %q, want an error", p.Name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.want || p.Version != tt.version {
				t.Fatalf("got %q (%s), want %q (%s)", p.Name, p.Version, tt.want, tt.version)
			}
		})
	}
}

func TestTimeLiteral(t *testing.T) {
	tests := []struct {
		name string
		p    Profile
		ms   int64
		want string
	}{
		{"modern keeps ms", ModernProfile(), 1767225600123, "fromUnixTimestamp64Milli(toInt64(1767225600123), 'UTC')"},
		{"legacy truncates to the second, like the column", LegacyProfile(), 1767225600999, "toDateTime(1767225600, 'UTC')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.timeLiteral(tt.ms); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
