package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// The `papayd keys` subcommands work on cfg's database (PAPAYD_DATABASE_URL,
// or the one in cfg.DataDir) whether or not a papayd serves it: they take no data-directory lock and
// open the database as papayd does (migrating it if needed; SQLite's busy
// timeout waits out the other writer). A running papayd sees a change
// within 5 s (it reloads its keys that often).

// cliCaller is the caller of `papayd keys` in the audit trail: the
// operator at the data directory.
var cliCaller = service.Caller{Name: "papayd keys (command line)", Peer: "local"}

// withKeys runs fn on a Service over cfg's database.
func withKeys(ctx context.Context, cfg Config, fn func(context.Context, *service.Service) error) error {
	ctx = service.WithCaller(ctx, cliCaller)
	store, err := openStore(ctx, cfg, 0)
	if err != nil {
		return err
	}
	svc := service.New(service.Config{}, store, nil, systemClock{}, randomIDs{}, slog.New(slog.DiscardHandler))
	err = fn(ctx, svc)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	return err
}

// CreateKey creates an API key and writes its id and token to out: the
// only time the token is shown.
func CreateKey(ctx context.Context, cfg Config, in service.KeyInput, out io.Writer) error {
	return withKeys(ctx, cfg, func(ctx context.Context, svc *service.Service) error {
		k, token, err := svc.CreateKey(ctx, in)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "id:  %s\nkey: %s\n", k.ID, token)
		return err
	})
}

// ListKeys writes a table of the API keys to out: id, name, scopes,
// sub-merchants, times. Never a secret or its hash.
func ListKeys(ctx context.Context, cfg Config, out io.Writer) error {
	return withKeys(ctx, cfg, func(ctx context.Context, svc *service.Service) error {
		keys, err := svc.ListKeys(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tSCOPES\tSUB-MERCHANTS\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
		for _, k := range keys {
			scopes := make([]string, len(k.Scopes))
			for i, s := range k.Scopes {
				scopes[i] = string(s)
			}
			subs := "all"
			if len(k.SubMchIDs) > 0 {
				subs = strings.Join(k.SubMchIDs, ",")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(scopes, ","), subs,
				keyTime(k.CreateTime, "-"), keyTime(k.ExpireTime, "never"), keyTime(k.LastUsedTime, "never"), keyTime(k.RevokeTime, "-"))
		}
		return w.Flush()
	})
}

func keyTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}

// RevokeKey revokes the API key id and writes what it did to out.
// Revoking a revoked key changes nothing.
func RevokeKey(ctx context.Context, cfg Config, id string, out io.Writer) error {
	return withKeys(ctx, cfg, func(ctx context.Context, svc *service.Service) error {
		k, err := svc.RevokeKey(ctx, id)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "revoked %s (%s) at %s\n", k.ID, k.Name, keyTime(k.RevokeTime, "-"))
		return err
	})
}

// ParseKeyExpiry reads --expires: a date (the key expires at its start,
// 00:00 UTC) or an RFC 3339 time.
func ParseKeyExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expiry %q is neither a date (2027-06-30) nor an RFC 3339 time", s)
	}
	return t, nil
}
