package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrOtherIdentity is ClaimIdentity's error for a database that belongs to
// another mode or another sp_mchid.
var ErrOtherIdentity = errors.New("refusing another papayd's database")

const (
	identitySQL      = `SELECT mode, sp_mchid FROM identity WHERE id = 1`
	claimIdentitySQL = `INSERT INTO identity (id, mode, sp_mchid, claim_time) VALUES (1, ?, ?, ?)`
)

// ClaimIdentity makes sure the database belongs to mode ("sandbox" or
// "live") and spMchID: the first claim records them (a database without an
// identity, new or from an older papayd, is adopted), a later one must name
// the same. Otherwise it returns an error wrapping ErrOtherIdentity that
// names both. Call it once, right after Open, before anything else uses
// the database.
func (db *DB) ClaimIdentity(ctx context.Context, mode, spMchID string) error {
	if (mode != "sandbox" && mode != "live") || spMchID == "" {
		return fmt.Errorf("claim database %s: mode %q, sp_mchid %q", db.path, mode, spMchID)
	}
	// Straight on the writer connection, before the writer runs anything:
	// its BEGIN IMMEDIATE holds the write lock from the read to the insert.
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("claim database %s: %w", db.path, err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	var haveMode, haveMchID string
	switch err := tx.QueryRowContext(ctx, identitySQL).Scan(&haveMode, &haveMchID); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, claimIdentitySQL, mode, spMchID, time.Now().UTC().UnixNano()); err != nil {
			return fmt.Errorf("claim database %s: %w", db.path, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("claim database %s: %w", db.path, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("claim database %s: %w", db.path, err)
	}
	return checkIdentity(db.path, haveMode, haveMchID, mode, spMchID)
}

const databaseFileSQL = `SELECT file FROM pragma_database_list WHERE name = 'main'`

// CheckIdentity is ClaimIdentity for a reader: it returns an error
// wrapping ErrOtherIdentity when the database belongs to another mode or
// sp_mchid, and claims nothing (a database without an identity passes).
func (r *Reader) CheckIdentity(ctx context.Context, mode, spMchID string) error {
	var path, haveMode, haveMchID string
	if err := r.conn.QueryRowContext(ctx, databaseFileSQL).Scan(&path); err != nil {
		return fmt.Errorf("check database identity: %w", err)
	}
	switch err := r.conn.QueryRowContext(ctx, identitySQL).Scan(&haveMode, &haveMchID); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("check database %s identity: %w", path, err)
	}
	return checkIdentity(path, haveMode, haveMchID, mode, spMchID)
}

func checkIdentity(path, haveMode, haveMchID, mode, spMchID string) error {
	if haveMode != mode || haveMchID != spMchID {
		return fmt.Errorf("%s belongs to %s mode (sp_mchid %s); this papayd is %s mode, sp_mchid %s: %w",
			path, haveMode, haveMchID, mode, spMchID, ErrOtherIdentity)
	}
	return nil
}
