package service

import (
	"context"
	"fmt"
)

// TerminateAgreement ends a signed agreement on the merchant's behalf: it
// calls WeChat, then records TERMINATED (mode MERCHANT) at once, so the
// PAPAY.TERMINATE notification that follows changes nothing. Terminating an
// agreement that is already terminated answers it as it is.
func (s *Service) TerminateAgreement(ctx context.Context, contractID, note string) (Agreement, error) {
	var v violations
	v.token("contract_id", contractID, 64, true)
	v.text("termination_note", note, 256, true)
	if err := v.err(); err != nil {
		return Agreement{}, err
	}
	k := AgreementKey{ContractID: contractID}
	a, err := k.find(ctx, s.store)
	if err != nil {
		return Agreement{}, fmt.Errorf("terminate %s: %w", k, err)
	}
	switch a.State {
	case AgreementTerminated:
		return a, nil
	case AgreementSigned:
	default:
		return Agreement{}, fmt.Errorf("terminate %s: %w", k, ErrAgreementNotSigned)
	}
	err = s.wechat.TerminateContract(ctx, TerminateRequest{Merchant: a.Merchant, ContractID: contractID, TerminationNote: note})
	if err != nil {
		return Agreement{}, fromRemote("terminate "+k.String(), err)
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		cur, err := k.find(ctx, tx)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		a = cur
		changed := a.terminate(contractID, TerminatedByMerchant, note, now)
		if !changed && a.TerminationMode == TerminatedByMerchant && a.TerminationNote == "" {
			// The PAPAY.TERMINATE of this very call won the race (it carries
			// no note): keep the merchant's note.
			a.TerminationNote, changed = note, true
		}
		if !changed {
			return nil
		}
		a.UpdateTime = now
		return tx.UpdateAgreement(ctx, a)
	})
	if err != nil {
		return Agreement{}, fmt.Errorf("terminate %s: record: %w", k, err)
	}
	s.log.InfoContext(ctx, "agreement terminated by merchant", "contract_id", contractID, "out_contract_code", a.OutContractCode)
	return a, nil
}
