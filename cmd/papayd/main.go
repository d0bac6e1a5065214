// Command papayd serves WeChat Pay Global auto-debit contracts and charges
// over gRPC and REST. With no configuration it runs in sandbox mode against
// a built-in WeChat Pay simulator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/papayd/papayd/internal/app"
	"github.com/papayd/papayd/internal/service"
)

// papayd's garbage collector settings when the environment sets none. Its
// live heap is small (tens of MiB, the record cache included) and
// short-lived garbage per call is most of what it allocates, so collecting
// at 3x the live heap instead of 2x spends about half the CPU on marking;
// the soft memory limit makes the collector work harder instead of letting
// the heap grow past it when the live heap is large.
const (
	defaultGCPercent   = 200
	defaultMemoryLimit = 100 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "papayd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "backup":
			return backup(ctx, args[1:], stderr)
		case "migrate":
			return migrate(ctx, args[1:], stderr)
		case "verify":
			return verify(ctx, args[1:], stdout, stderr)
		case "keys":
			return keys(ctx, args[1:], stdout, stderr)
		case "audit":
			return audit(ctx, args[1:], stdout, stderr)
		case "version", "-version", "--version":
			if len(args) > 1 {
				return errors.New("usage: papayd version")
			}
			return version(stdout)
		}
	}
	cfg, err := app.ParseConfig(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	log, err := app.NewLogger(cfg, stderr)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// backup is "papayd backup [flags] DEST": a consistent online copy of the
// database in PAPAYD_DATA_DIR, safe while papayd runs. It only reads: a
// missing database is an error (exit status 1), never created.
func backup(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, rest, err := app.ParseConfigArgs(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("usage: papayd backup [flags] DEST")
	}
	if err := app.Backup(ctx, cfg, rest[0]); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "papayd: backup written to", rest[0])
	return nil
}

// migrate is "papayd migrate [flags]": the database's migrations applied
// alone (PostgreSQL: under its advisory lock), as papayd applies them at
// start.
func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, rest, err := app.ParseConfigArgs(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("usage: papayd migrate [flags]")
	}
	return app.Migrate(ctx, cfg, stderr)
}

// verify is "papayd verify [flags]": every record in PAPAYD_DATA_DIR's
// database compared with WeChat Pay by query (PAPAYD_VERIFY_QPS a second),
// read-only, safe while papayd runs. Exit status 1 when a record disagrees
// or could not be compared.
func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := app.ParseConfigArgs(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("usage: papayd verify [flags]")
	}
	log, err := app.NewLogger(cfg, stderr)
	if err != nil {
		return err
	}
	return app.Verify(ctx, cfg, cfg.VerifyQPS, stdout, log)
}

// keysUsage is the keys subcommands' usage.
const keysUsage = `usage: papayd keys [flags] create --name NAME --scopes SCOPE[,SCOPE...] [--sub-mchid ID ...] [--expires DATE] [--rate N]
       papayd keys [flags] list
       papayd keys [flags] revoke ID`

// keys is "papayd keys create|list|revoke": the API keys of
// PAPAYD_DATA_DIR's database, safe while papayd runs (it sees a change
// within 5 s). create prints the new key once, to stdout.
func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := app.ParseConfigArgs(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return errors.New(keysUsage)
	}
	switch verb, rest := rest[0], rest[1:]; verb {
	case "create":
		var in service.KeyInput
		var scopes, expires string
		fs := flag.NewFlagSet("papayd keys create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.StringVar(&in.Name, "name", "", "the key's name (required, at most 64 bytes)")
		fs.StringVar(&scopes, "scopes", "", fmt.Sprintf("comma-separated scopes (required): %v", service.Scopes))
		fs.Func("sub-mchid", "a sub-merchant the key may act for; repeat for more (none: every one)", func(v string) error {
			in.SubMchIDs = append(in.SubMchIDs, v)
			return nil
		})
		fs.StringVar(&expires, "expires", "", "expiry: a date (2027-06-30, at 00:00 UTC) or an RFC 3339 time (none: never)")
		fs.Float64Var(&in.RateLimit, "rate", 0, "calls a second the key may make (0: the deployment's default)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return errors.New(keysUsage)
		}
		for s := range strings.SplitSeq(scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				in.Scopes = append(in.Scopes, service.Scope(s))
			}
		}
		if expires != "" {
			if in.ExpireTime, err = app.ParseKeyExpiry(expires); err != nil {
				return err
			}
		}
		if err := app.CreateKey(ctx, cfg, in, stdout); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "papayd: store the key now: it cannot be shown again")
		return nil
	case "list":
		if len(rest) != 0 {
			return errors.New(keysUsage)
		}
		return app.ListKeys(ctx, cfg, stdout)
	case "revoke":
		if len(rest) != 1 {
			return errors.New(keysUsage)
		}
		return app.RevokeKey(ctx, cfg, rest[0], stdout)
	}
	return errors.New(keysUsage)
}

// version is "papayd version" (or -version): the module version, the VCS
// revision it was built from (with "+modified" when the work tree had
// changes) and the Go version, from the binary's build information.
func version(stdout io.Writer) error {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("version: no build information in this binary")
	}
	mod, rev, modified := bi.Main.Version, "unknown", ""
	if mod == "" {
		mod = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	_, err := fmt.Fprintf(stdout, "papayd %s revision %s%s %s\n", mod, rev, modified, bi.GoVersion)
	return err
}

// auditUsage is the audit subcommand's usage.
const auditUsage = "usage: papayd audit [flags] [list [-resource RESOURCE] [-key-id ID] [-limit N]]"

// audit is "papayd audit": the audit trail of PAPAYD_DATA_DIR's database,
// newest first, read-only (safe while papayd runs).
func audit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := app.ParseConfigArgs(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	var f service.AuditFilter
	limit := 100
	if len(rest) > 0 {
		if rest[0] != "list" {
			return errors.New(auditUsage)
		}
		fs := flag.NewFlagSet("papayd audit list", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.StringVar(&f.Resource, "resource", "", "only entries of this resource, such as charges/ORDER-0001")
		fs.StringVar(&f.KeyID, "key-id", "", "only entries of this API key")
		fs.IntVar(&limit, "limit", limit, "at most this many entries")
		if err := fs.Parse(rest[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 || limit < 1 {
			return errors.New(auditUsage)
		}
	}
	return app.PrintAudit(ctx, cfg, f, limit, stdout)
}
