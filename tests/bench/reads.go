package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// Figure 3: reads. GetAgreement (by contract id) and GetCharge (by
// out_trade_no) of seeded SIGNED agreements and SUCCEEDED charges, picked
// across the whole set, over gRPC and over REST (the grpc-gateway on the
// HTTP port, which calls the services in process). The ceilings are
// grpc.health.v1 Check on papayd's gRPC server (same listener, same
// interceptor chain, same client connection, no work behind it) and the
// same Check through the gateway, GET /v1/health (same HTTP server,
// gateway, marshaler and interceptors).

// spread maps call i to a record index in [0, n), visiting the set in a
// scattered order (n need not be prime; the multiplier is).
func spread(i, n int) int { return int((uint64(i) * 2654435761) % uint64(n)) }

// readCalls are the calls of figures 3 and 4 against one papayd holding
// agreements and charges seeded records of each.
// Call i goes to process f.pick(i): calls alternate between replicas.
type readCalls struct {
	f          fleet
	agreements []papayv1.AgreementServiceClient // one per process of f
	charges    []papayv1.ChargeServiceClient
	health     []healthpb.HealthClient
	http       *http.Client
	n          int
	tokens     []string // page tokens at evenly spaced depths (collectTokens)
}

func newReadCalls(f fleet, n, conc int) *readCalls {
	r := &readCalls{
		f: f, n: n,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conc * len(f), MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}},
	}
	for _, p := range f {
		r.agreements = append(r.agreements, papayv1.NewAgreementServiceClient(p.conn))
		r.charges = append(r.charges, papayv1.NewChargeServiceClient(p.conn))
		r.health = append(r.health, healthpb.NewHealthClient(p.conn))
	}
	return r
}

// at is the index of call i's process.
func (r *readCalls) at(i int) int { return i % len(r.f) }

func (r *readCalls) healthCheck(ctx context.Context, i int) error {
	resp, err := r.health[r.at(i)].Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		err = fmt.Errorf("health: %v", resp.GetStatus())
	}
	return err
}

func (r *readCalls) getAgreement(ctx context.Context, i int) error {
	id := seedContractID(spread(i, r.n))
	resp, err := r.agreements[r.at(i)].GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: id})
	if err == nil && resp.GetAgreement().GetContractId() != id {
		err = fmt.Errorf("GetAgreement %s answered %s", id, resp.GetAgreement().GetContractId())
	}
	return err
}

func (r *readCalls) getCharge(ctx context.Context, i int) error {
	no := seedOutTradeNo(settledCharges, spread(i, r.n))
	resp, err := r.charges[r.at(i)].GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: no})
	if err == nil && resp.GetCharge().GetOutTradeNo() != no {
		err = fmt.Errorf("GetCharge %s answered %s", no, resp.GetCharge().GetOutTradeNo())
	}
	return err
}

// collectTokens pages through every charge, newest first, 500 at a time
// (the largest page), and keeps each page token: the positions a client
// paging through the list reaches. It stops after limit (the tokens so
// far are kept) and returns how long the walk took.
func (r *readCalls) collectTokens(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	r.tokens = []string{""}
	token := ""
	for time.Since(start) < limit {
		resp, err := r.charges[0].ListCharges(ctx, &papayv1.ListChargesRequest{PageSize: 500, PageToken: token})
		if err != nil {
			return time.Since(start), err
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		r.tokens = append(r.tokens, token)
	}
	return time.Since(start), nil
}

// listChargesPage reads a page of 50 at a random depth of the list, with a
// page token collected before: how a client pages through the charges.
func (r *readCalls) listChargesPage(ctx context.Context, i int) error {
	token := r.tokens[spread(i, len(r.tokens))]
	resp, err := r.charges[r.at(i)].ListCharges(ctx, &papayv1.ListChargesRequest{PageSize: 50, PageToken: token})
	if err == nil && len(resp.GetCharges()) != 50 {
		err = fmt.Errorf("ListCharges page: %d charges, want 50", len(resp.GetCharges()))
	}
	return err
}

// listChargesBefore reads the page of 50 charges created before a random
// time of the seeded range (create_time_end, no token).
func (r *readCalls) listChargesBefore(ctx context.Context, i int) error {
	k := 50 + spread(i, r.n-50)
	resp, err := r.charges[r.at(i)].ListCharges(ctx, &papayv1.ListChargesRequest{
		PageSize: 50, CreateTimeEnd: timestamppb.New(seedTime(k))})
	if err == nil && len(resp.GetCharges()) != 50 {
		err = fmt.Errorf("ListCharges before #%d: %d charges, want 50", k, len(resp.GetCharges()))
	}
	return err
}

func (r *readCalls) get(ctx context.Context, i int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.f.pick(i).httpAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return err
}

// restHealth is the REST ceiling: grpc.health.v1 Check through the
// gateway (GET /v1/health), the same HTTP server, gateway and interceptors
// as the REST reads, with no work behind it.
func (r *readCalls) restHealth(ctx context.Context, i int) error { return r.get(ctx, i, "/v1/health") }

func (r *readCalls) restAgreement(ctx context.Context, i int) error {
	return r.get(ctx, i, "/v1/agreements/"+seedContractID(spread(i, r.n)))
}

func (r *readCalls) restCharge(ctx context.Context, i int) error {
	return r.get(ctx, i, "/v1/charges/"+seedOutTradeNo(settledCharges, spread(i, r.n)))
}

// readLoad is one named read and its call.
type readLoad struct {
	name string
	fn   call
	// distinct: the load makes at most records calls, call i reading
	// record spread(i, records), so no record is read twice (spread is a
	// bijection: its multiplier is a prime that divides no size), and the
	// warm-up calls warm instead, so that no read finds a record papayd
	// kept from an earlier call.
	distinct bool
	records  int
	warm     call
}

// runReads measures each load for d after a warm-up, all against f (and
// pg's CPU, when set). With rounds above 1 it measures the loads in turn,
// d/rounds each, rounds times, and adds each load's rounds up: a read and
// its ceiling then see the same machine, whose speed drifts over minutes
// on shared hosts. The first round is profiled. Loads of distinct records
// are measured in one round.
func runReads(ctx context.Context, f fleet, pg *pgServer, prof *profiler, loads []readLoad, conc int, d time.Duration, rounds int) []result {
	out := make([]result, len(loads))
	for round := range rounds {
		for k, l := range loads {
			if l.distinct && round > 0 {
				continue
			}
			warm, calls, dd := l.fn, 10_000_000, d/time.Duration(rounds)
			if l.distinct {
				warm, calls, dd = l.warm, l.records, d
			}
			p := prof
			if round == 0 {
				warmup(ctx, conc, min(d/4, time.Second), warm)
			} else {
				p = nil
			}
			hits0, misses0 := cacheLookups(f)
			r := measure(f, pg, p, func() result {
				return runLoad(ctx, l.name, conc, calls, dd, l.fn)
			})
			hits1, misses1 := cacheLookups(f)
			r.CacheHits, r.CacheMisses = hits1-hits0, misses1-misses0
			if round == 0 {
				out[k] = r
			} else {
				out[k] = mergeResults(out[k], r)
			}
		}
	}
	for _, r := range out {
		logf("  %-32s %9.0f/s  p50 %s  p99 %s  errors %d", r.Name, r.Rate(), fmtDur(r.Pct(50)), fmtDur(r.Pct(99)), r.Errors)
	}
	return out
}

// readRounds is how many rounds figure 3's loads are measured in: slices
// of at least a second.
func readRounds(d time.Duration) int { return max(1, min(5, int(d/time.Second))) }

// cacheLookups reads the record cache's hit and miss totals from papayd's
// /metrics, summed over f.
func cacheLookups(f fleet) (hits, misses uint64) {
	v := f.scrape(`papayd_record_cache_lookups_total{kind="agreement",result="hit"}`,
		`papayd_record_cache_lookups_total{kind="charge",result="hit"}`,
		`papayd_record_cache_lookups_total{kind="agreement",result="miss"}`,
		`papayd_record_cache_lookups_total{kind="charge",result="miss"}`)
	return uint64(v[0] + v[1]), uint64(v[2] + v[3])
}
