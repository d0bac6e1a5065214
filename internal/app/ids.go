package app

import (
	"crypto/rand"
	"encoding/base32"
	"time"
)

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// randomIDs makes identifiers from crypto/rand.
type randomIDs struct{}

// NewOutContractCode returns "PA" and 26 base32 characters (130 random
// bits): 28 letters and digits, unique without coordination.
func (randomIDs) NewOutContractCode() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "PA" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
