// Package storetest is the conformance suite of service.Store: the same
// tests, through the interface only, for every store.
package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// Opener returns a fresh, empty store, closed when t ends.
type Opener func(t *testing.T) service.Store

// test is one subtest of the suite.
type test struct {
	name string
	run  func(t *testing.T, open Opener)
}

// tests are the suite's subtests, in the order Run runs them.
var tests = slices.Concat(
	[]test{{"AgreementRoundTrip", testAgreementRoundTrip}},
	agreements.tests("Agreement"),
	[]test{{"ChargeRoundTrip", testChargeRoundTrip}, {"RefundedTotal", testRefundedTotal}},
	charges.tests("Charge"),
	[]test{{"RefundRoundTrip", testRefundRoundTrip}},
	refunds.tests("Refund"),
	[]test{
		{"RefundsOfCharge", testRefundsOfCharge},
		{"ListAgreements", testListAgreements},
		{"ListCharges", testListCharges},
		{"ListRefunds", testListRefunds},
		{"ListInTx", testListInTx},
		{"ListPageSize", testListPageSize},
		{"PageTokens", testPageTokens},
		{"PageTokenFilters", testPageTokenFilters},
		{"InTxRollback", testInTxRollback},
		{"InTxError", testInTxError},
		{"InTxPanic", testInTxPanic},
		{"Notifications", testNotifications},
		{"Anomalies", testAnomalies},
		{"Intents", testIntents},
		{"IntentNeedsCreateTime", testIntentNeedsCreateTime},
		{"DueScans", testDueScans},
		{"DueScanBounds", testDueScanBounds},
		{"DueScansFollowUpdates", testDueScansFollowUpdates},
		{"ClaimDue", testClaimDue},
		{"ClaimDueLimit", testClaimDueLimit},
		{"ReleaseClaims", testReleaseClaims},
		{"Leases", testLeases},
		{"LockKey", testLockKey},
		{"Events", testEvents},
		{"EventFilters", testEventFilters},
		{"EventTimeOutOfRange", testEventTimeOutOfRange},
		{"PruneEvents", testPruneEvents},
		{"EventsCommitted", testEventsCommitted},
		{"Keys", testKeys},
		{"KeyChecks", testKeyChecks},
		{"TouchKey", testTouchKey},
		{"AuditEntries", testAuditEntries},
		{"RecordAuditEntry", testRecordAuditEntry},
		{"WebhookEndpoints", testWebhookEndpoints},
		{"WebhookDeliveries", testWebhookDeliveries},
		{"WebhookDeliveryChecks", testWebhookDeliveryChecks},
		{"CursorBeyondInt64", testCursorBeyondInt64},
		{"Ping", testPing},
	},
)

// Run runs the suite: each subtest, in parallel with the others, on fresh,
// empty stores from open.
func Run(t *testing.T, open func(t *testing.T) service.Store) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open)
		})
	}
}

// shanghai is a zone other than UTC: the stores read times back in UTC.
var shanghai = time.FixedZone("CST", 8*3600)

// base is the suite's reference time; it carries nanoseconds.
var base = time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)

// inTx runs fn in a transaction of s and fails the test on error.
func inTx(t *testing.T, s service.Store, fn func(service.Tx) error) {
	t.Helper()
	if err := s.InTx(t.Context(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

// checkErr fails the test unless err is want (nil: no error).
func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) { // errors.Is(nil, nil) holds
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// checkUTC fails the test for every non-zero time of times that is not in
// UTC.
func checkUTC(t *testing.T, step string, times map[string]time.Time) {
	t.Helper()
	for name, tm := range times {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: %s in %v, want UTC", step, name, tm.Location())
		}
	}
}

// eventually polls cond every few milliseconds until it holds, and fails
// the test with what when it still does not after 10 s.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testPing(t *testing.T, open Opener) {
	if err := open(t).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v, want nil", err)
	}
}
