package rpc

import papayv1 "github.com/papayd/papayd/gen/papay/v1"

// ChargeServer serves papay.v1.ChargeService. Charges are the subject of
// the next issue: until then every method answers codes.Unimplemented
// through the generated UnimplementedChargeServiceServer.
type ChargeServer struct {
	papayv1.UnimplementedChargeServiceServer
}

var _ papayv1.ChargeServiceServer = (*ChargeServer)(nil)
