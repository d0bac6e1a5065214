package app

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// PrintAudit writes the audit trail of cfg's database that f selects,
// newest first, at most limit entries, as a table. The database is opened
// read-only (a running papayd may use it); a PostgreSQL one is only read.
func PrintAudit(ctx context.Context, cfg Config, f service.AuditFilter, limit int, out io.Writer) error {
	r, err := openReader(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tKEY\tNAME\tPEER\tMETHOD\tRESOURCE\tOUTCOME")
	for n := 0; n < limit; {
		f.PageSize = min(limit-n, service.MaxPageSize)
		es, next, err := r.ListAuditEntries(ctx, f)
		if err != nil {
			return err
		}
		for _, e := range es {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), orDash(e.KeyID), orDash(e.KeyName),
				orDash(e.Peer), e.Method, orDash(e.Resource), e.Outcome)
		}
		n += len(es)
		if f.PageToken = next; next == "" {
			break
		}
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
