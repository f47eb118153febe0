package warehouse

import (
	"reflect"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `'plain'`},
		{"it's", `'it\'s'`},
		{`back\slash`, `'back\\slash'`},
		{"nul\x00tab\tnl\n", `'nul\x00tab\x09nl\x0A'`},
		{"ünïcode", `'ünïcode'`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q): got %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAppendTSV(t *testing.T) {
	b := &block{table: "t", rows: 2, cols: []column{
		{"s", []string{"a\tb\nc\\d", "nul\x00"}},
		{"i", []int64{-1, 2}},
		{"u8", []uint8{0, 255}},
		{"f", []float64{1.5, 2e-9}},
	}}
	got, err := appendTSV(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	want := "a\\tb\\nc\\\\d\t-1\t0\t1.5\nnul\\0\t2\t255\t2e-09\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := appendTSV(nil, &block{rows: 1, cols: []column{{"x", []int8{1}}}}); err == nil {
		t.Fatal("got nil error for an unsupported column type")
	}
}

func TestAppendRowBinary(t *testing.T) {
	b := &block{table: "t", rows: 1, cols: []column{
		{"s", []string{"ab"}}, {"u16", []uint16{0x0102}}, {"i", []int64{-2}},
	}}
	got, err := appendRowBinary(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{2, 'a', 'b', 0x02, 0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestBlocksConsistent(t *testing.T) {
	outs := outcomes(1, 0, 20)
	s := &Store{m: newMetrics()}
	batch, err := s.uniqueOutcomes(outs)
	if err != nil {
		t.Fatal(err)
	}
	var refs []attemptRef
	for _, o := range batch {
		for i := range o.Attempts {
			refs = append(refs, attemptRef{o, i})
		}
	}
	for _, b := range []*block{requestsBlock(batch), attemptsBlock(refs)} {
		if err := checkBlock(b); err != nil {
			t.Error(err)
		}
	}
}

func TestUniqueOutcomes(t *testing.T) {
	outs := append(outcomes(1, 0, 5), outcomes(1, 2, 4)...) // 2 and 3 twice
	outs[0], outs[4] = outs[4], outs[0]                     // out of time order
	s := &Store{m: newMetrics()}
	batch, err := s.uniqueOutcomes(outs)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, o := range batch {
		ids = append(ids, o.ID)
		if i > 0 && o.StartMs < batch[i-1].StartMs {
			t.Errorf("got batch out of time order at %d", i)
		}
	}
	if len(ids) != 5 {
		t.Fatalf("got %d unique outcomes %v, want 5", len(ids), ids)
	}
	bad := outcomes(1, 0, 1)
	bad[0].ID = ""
	if _, err := s.uniqueOutcomes(bad); err == nil {
		t.Fatal("got nil error for an empty id")
	}
}
