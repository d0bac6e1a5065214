package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewDatabase creates an empty database with a unique name on the server and
// returns its URL; the database is dropped (its connections closed) when t
// ends. It fails t when the database cannot be created, and reports an error
// on t when it cannot be dropped.
func (c *Cluster) NewDatabase(ctx context.Context, t testing.TB) string {
	t.Helper()
	u, err := url.Parse(c.url)
	if err != nil {
		t.Fatalf("pgtest: server URL: %v", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	name := "pgtest_" + hex.EncodeToString(b[:])
	if err := c.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// exec runs one statement on the server's URL, on a connection of its own.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
