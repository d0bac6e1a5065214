package db

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"in order", fstest.MapFS{
			"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A"), "migrations/README": file("x"),
		}, []int{1, 2}, false},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0003_c.sql": file("C")}, nil, true},
		{"duplicate version", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0001_b.sql": file("B")}, nil, true},
		{"not starting at 1", fstest.MapFS{"migrations/0002_b.sql": file("B")}, nil, true},
		{"bad name", fstest.MapFS{"migrations/1_a.sql": file("A")}, nil, true},
		{"no number", fstest.MapFS{"migrations/init.sql": file("A")}, nil, true},
		{"none", fstest.MapFS{}, nil, true},
	}
	for _, tt := range tests {
		ms, err := loadMigrations(tt.fs)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error: %v", tt.name, err, tt.wantErr)
			continue
		}
		var got []int
		for _, m := range ms {
			got = append(got, m.version)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: versions (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	t.Parallel()
	if vs := embeddedVersions(t); len(vs) == 0 || vs[0] != 1 {
		t.Errorf("embedded migrations %v, want 1..n", vs)
	}
}
