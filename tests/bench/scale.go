package main

import (
	"context"
	"fmt"
	"time"
)

// Figure 4: scale. One database grows through the sizes (N agreements and
// N charges, charge i against agreement i mod N), seeded directly with
// internal/db in transactions of seedBatch rows while papayd is stopped
// (on SQLite with the seeded table's indexes created afterwards:
// bulkseed.go); at each size papayd starts on it, the bench pages through
// all charges (500 a page) to collect page tokens, and GetAgreement,
// GetCharge and ListCharges (a page of 50 at a random depth: by page
// token, and by create_time_end) are measured over gRPC. Bytes per record:
// the file plus its WAL after a TRUNCATE checkpoint, the growth while
// agreements were added divided by the agreements added, and likewise for
// charges. The smallest size is measured again after the largest, on a
// copy of its database kept for that, and its two measurements are taken
// as one: half an hour or more passes between them, and a shared
// machine's speed drifts over minutes, so the ratio of the largest size's
// p99 to the smallest's compares the same machine.

// walkLimit bounds the walk through all charges at one size.
const walkLimit = 15 * time.Minute

// scalePoint is one size.
type scalePoint struct {
	Records        int
	SeedAgreements time.Duration // seeding this step's agreements
	SeedCharges    time.Duration
	FileBytes      int64 // database and WAL after a checkpoint
	AgreementBytes int64 // bytes added by all agreements so far
	ChargeBytes    int64
	Walk           time.Duration // paging through all charges, 500 a page
	WalkPages      int
	Results        []result // GetAgreement, GetCharge, ListCharges by token, by time
	PeakRSSKiB     int64    // largest VmHWM of the loads
}

func (s scalePoint) bytesPerAgreement() float64 {
	return float64(s.AgreementBytes) / float64(s.Records)
}
func (s scalePoint) bytesPerCharge() float64 { return float64(s.ChargeBytes) / float64(s.Records) }

// runScale grows the empty database d through sizes and measures each
// with b's papayd processes on it.
func runScale(ctx context.Context, b *bench, pg *pgServer, d *database, sizes []int, conc int, dur time.Duration) ([]scalePoint, error) {
	size, err := d.size(ctx)
	if err != nil {
		return nil, err
	}
	var points []scalePoint
	var first *database // the copy of the smallest size's database
	prev := 0
	var agreementBytes, chargeBytes int64
	for _, n := range sizes {
		pt := scalePoint{Records: n}
		grow := func(table string, fill func(s seeder, workers, from, to int) error) (time.Duration, int64, error) {
			start := time.Now()
			if err := d.bulkSeed(ctx, table, prev, n, fill); err != nil {
				return 0, 0, fmt.Errorf("seed %s: %w", table, err)
			}
			took := time.Since(start)
			after, err := d.size(ctx)
			return took, after, err
		}
		var after int64
		pt.SeedAgreements, after, err = grow("agreements", func(s seeder, w, from, to int) error {
			return seedAgreements(ctx, s, w, b.creds, from, to)
		})
		if err != nil {
			return nil, err
		}
		agreementBytes += after - size
		size = after
		pt.SeedCharges, after, err = grow("charges", func(s seeder, w, from, to int) error {
			return seedCharges(ctx, s, w, b.creds, settledCharges, from, to, n)
		})
		if err != nil {
			return nil, err
		}
		chargeBytes += after - size
		size = after
		pt.FileBytes, pt.AgreementBytes, pt.ChargeBytes = size, agreementBytes, chargeBytes
		logf("scale %d: seeded %d agreements in %s, %d charges in %s; %.1f MiB, %.0f B/agreement, %.0f B/charge",
			n, n-prev, pt.SeedAgreements.Round(time.Millisecond), n-prev, pt.SeedCharges.Round(time.Millisecond),
			float64(size)/(1<<20), pt.bytesPerAgreement(), pt.bytesPerCharge())
		prev = n

		f, err := d.start(b.bin, b.env)
		if err != nil {
			return nil, err
		}
		pt.Walk, pt.WalkPages, pt.Results, err = measureScale(ctx, b, pg, f, n, conc, dur)
		if err != nil {
			f.stop()
			return nil, err
		}
		for _, res := range pt.Results {
			pt.PeakRSSKiB = max(pt.PeakRSSKiB, res.PeakRSSKiB)
		}
		if err := f.stop(); err != nil {
			return nil, err
		}
		points = append(points, pt)
		if len(points) == 1 && len(sizes) > 1 {
			if first, err = d.copyTo(ctx, pg, "first"); err != nil {
				return nil, fmt.Errorf("keep the smallest size's database: %w", err)
			}
		}
	}
	if first != nil {
		n := points[0].Records
		logf("scale %d again, after the largest, on a copy of its database", n)
		f, err := first.start(b.bin, b.env)
		if err != nil {
			return nil, err
		}
		_, _, again, err := measureScale(ctx, b, pg, f, n, conc, dur)
		if err != nil {
			f.stop()
			return nil, err
		}
		if err := f.stop(); err != nil {
			return nil, err
		}
		for k, res := range again {
			points[0].Results[k] = mergeResults(points[0].Results[k], res)
			points[0].PeakRSSKiB = max(points[0].PeakRSSKiB, res.PeakRSSKiB)
		}
	}
	return points, nil
}

// measureScale pages through the n charges of f's database and measures
// the size's four loads on it.
func measureScale(ctx context.Context, b *bench, pg *pgServer, f fleet, n, conc int, dur time.Duration) (time.Duration, int, []result, error) {
	r := newReadCalls(f, n, conc)
	// Whole: a page token is only had by paging to it, and the load
	// reads pages at every depth. Bounded all the same (20,000 pages
	// at 10^7); a cut walk shows in the table's page count.
	walk, err := r.collectTokens(ctx, walkLimit)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("paging through the charges: %w", err)
	}
	logf("  paged through %d of %d charges, 500 a page, in %s", min(n, 500*len(r.tokens)), n, walk.Round(time.Millisecond))
	res := runReads(ctx, f, pg, b.prof, []readLoad{
		// Each lookup finds a record not read before: the figure is about
		// the database's size, not papayd's record cache (figure 3).
		{name: fmt.Sprintf("GetAgreement gRPC @%s", count(n)), fn: r.getAgreement, distinct: true, records: n, warm: r.healthCheck},
		{name: fmt.Sprintf("GetCharge gRPC @%s", count(n)), fn: r.getCharge, distinct: true, records: n, warm: r.healthCheck},
		{name: fmt.Sprintf("ListCharges(50) by page token gRPC @%s", count(n)), fn: r.listChargesPage},
		{name: fmt.Sprintf("ListCharges(50) by create_time_end gRPC @%s", count(n)), fn: r.listChargesBefore},
	}, conc, dur, 1)
	return walk, len(r.tokens), res, nil
}

// count writes 10000 as 10^4 and other numbers as they are.
func count(n int) string {
	e, m := 0, n
	for m >= 10 && m%10 == 0 {
		m, e = m/10, e+1
	}
	if m == 1 && e > 0 {
		return fmt.Sprintf("10^%d", e)
	}
	return fmt.Sprint(n)
}
