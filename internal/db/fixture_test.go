package db

import (
	"time"

	"github.com/papayd/papayd/internal/storetest"
)

// The record fixtures are the conformance suite's.
var (
	fullAgreement = storetest.FullAgreement
	fullCharge    = storetest.FullCharge
	fullRefund    = storetest.FullRefund
)

// shanghai is a zone other than UTC: the store reads times back in UTC.
var shanghai = time.FixedZone("CST", 8*3600)
