package service

import "time"

// Clock tells the time. The domain never calls time.Now itself.
type Clock interface {
	Now() time.Time
}

// IDs makes identifiers.
type IDs interface {
	// NewOutContractCode returns a fresh, unique merchant contract code of
	// at most 32 letters and digits.
	NewOutContractCode() string
}
