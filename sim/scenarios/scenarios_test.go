package scenarios

import "testing"

func TestAllParse(t *testing.T) {
	names := Names()
	if len(names) < 5 {
		t.Fatalf("got %d scenarios, want at least the 5 public ones", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sc, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Name != name {
				t.Errorf("got name %q, want %q (the file name)", sc.Name, name)
			}
		})
	}
}
