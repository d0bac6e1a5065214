package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrOtherIdentity is ClaimIdentity's error for a database that belongs to
// another mode or another sp_mchid.
var ErrOtherIdentity = errors.New("refusing another papayd's database")

const (
	identitySQL = `SELECT mode, sp_mchid FROM identity WHERE id = 1`
	// A replica that loses the race to claim waits for the winner's commit
	// and inserts nothing; identitySQL, a later statement, then reads the
	// winner's row.
	claimIdentitySQL = `INSERT INTO identity (id, mode, sp_mchid, claim_time) VALUES (1, $1, $2, $3)
ON CONFLICT (id) DO NOTHING`
)

// ClaimIdentity makes sure the database belongs to mode ("sandbox" or
// "live") and spMchID: the first claim records them, a later one, by this
// replica or another, must name the same. Otherwise it returns an error
// wrapping ErrOtherIdentity that names both. Replicas claiming at once
// agree: one claim is recorded, and the others are checked against it.
// Call it once, right after Open, before anything else uses the database.
func (db *DB) ClaimIdentity(ctx context.Context, mode, spMchID string) error {
	name := db.name()
	if (mode != "sandbox" && mode != "live") || spMchID == "" {
		return fmt.Errorf("claim %s: mode %q, sp_mchid %q", name, mode, spMchID)
	}
	if _, err := db.pool.Exec(ctx, claimIdentitySQL, mode, spMchID, time.Now().UTC().UnixNano()); err != nil {
		return fmt.Errorf("claim %s: %w", name, err)
	}
	var haveMode, haveMchID string
	if err := db.pool.QueryRow(ctx, identitySQL).Scan(&haveMode, &haveMchID); err != nil {
		return fmt.Errorf("claim %s: %w", name, err)
	}
	return checkIdentity(name, haveMode, haveMchID, mode, spMchID)
}

// CheckIdentity is ClaimIdentity without the claim: it returns an error
// wrapping ErrOtherIdentity when the database belongs to another mode or
// sp_mchid; a database without an identity passes.
func (db *DB) CheckIdentity(ctx context.Context, mode, spMchID string) error {
	name := db.name()
	var haveMode, haveMchID string
	if err := db.pool.QueryRow(ctx, identitySQL).Scan(&haveMode, &haveMchID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return fmt.Errorf("check %s identity: %w", name, err)
	}
	return checkIdentity(name, haveMode, haveMchID, mode, spMchID)
}

// name names the database in errors: its name and server, not the URL
// (which may hold a password).
func (db *DB) name() string {
	c := db.pool.Config().ConnConfig
	return fmt.Sprintf("database %s on %s:%d", c.Database, c.Host, c.Port)
}

func checkIdentity(name, haveMode, haveMchID, mode, spMchID string) error {
	if haveMode != mode || haveMchID != spMchID {
		return fmt.Errorf("%s belongs to %s mode (sp_mchid %s); this papayd is %s mode, sp_mchid %s: %w",
			name, haveMode, haveMchID, mode, spMchID, ErrOtherIdentity)
	}
	return nil
}
