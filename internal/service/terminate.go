package service

import (
	"context"
	"errors"
	"fmt"
)

// TerminateAgreement ends a signed agreement on the merchant's behalf: it
// records the intent, calls WeChat, then records TERMINATED (mode MERCHANT)
// at once, so the PAPAY.TERMINATE notification that follows changes
// nothing. Terminating an agreement that is already terminated answers it
// as it is. When WeChat's answer is lost the call fails with
// ErrWeChatUnavailable and the reconciler finishes the termination.
func (s *Service) TerminateAgreement(ctx context.Context, contractID, note string) (Agreement, error) {
	var v violations
	v.token("contract_id", contractID, 64, true)
	v.text("termination_note", note, 256, true)
	if err := v.err(); err != nil {
		return Agreement{}, err
	}
	k := AgreementKey{ContractID: contractID}
	unlock, err := s.lock(ctx, "contract/"+contractID)
	if err != nil {
		return Agreement{}, fmt.Errorf("terminate %s: %w", k, err)
	}
	defer unlock()
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
	intent, err := s.recordIntent(ctx, Intent{Kind: IntentTerminate, Key: contractID, Note: note}, "TerminateAgreement", "agreements/"+a.OutContractCode)
	if err != nil {
		return Agreement{}, fmt.Errorf("terminate %s: %w", k, err)
	}
	return s.terminateLocked(ctx, a, intent)
}

// terminateLocked sends the termination of intent and records its outcome.
// The caller holds the contract's lock.
func (s *Service) terminateLocked(ctx context.Context, a Agreement, intent Intent) (Agreement, error) {
	k := AgreementKey{ContractID: intent.Key}
	err := s.wechat.TerminateContract(ctx, TerminateRequest{Merchant: a.Merchant, ContractID: intent.Key, TerminationNote: intent.Note})
	if err != nil {
		derr := fromRemote("terminate "+k.String(), err)
		if KindOf(derr) == KindUnavailable {
			return Agreement{}, derr // the intent stays: the reconciler resumes it
		}
		if errors.Is(derr, ErrContractNotExist) {
			// Already ended at WeChat (e.g. by the user): learn how.
			if _, rerr := s.refreshAgreement(ctx, a); rerr != nil {
				return Agreement{}, errors.Join(derr, rerr)
			}
		}
		if rerr := s.resolveIntent(ctx, intent.ID); rerr != nil {
			return Agreement{}, errors.Join(derr, rerr)
		}
		return Agreement{}, derr
	}
	err = s.inTx(ctx, func(tx Tx) error {
		cur, err := k.find(ctx, tx)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		a = cur
		changed := a.terminate(intent.Key, TerminatedByMerchant, intent.Note, now)
		if !changed && a.TerminationMode == TerminatedByMerchant && a.TerminationNote == "" {
			// The PAPAY.TERMINATE of this very call won the race (it carries
			// no note): keep the merchant's note.
			a.TerminationNote, changed = intent.Note, true
		}
		if err := tx.DeleteIntent(ctx, intent.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
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
	s.log.InfoContext(ctx, "agreement terminated by merchant", "contract_id", intent.Key, "out_contract_code", a.OutContractCode)
	return a, nil
}

// recordIntent makes in durable before its WeChat call is sent, with the
// audit entry of the call (method on resource) that asked for it. An open
// intent of the same kind and key (a retry, or a crash before) is reused.
func (s *Service) recordIntent(ctx context.Context, in Intent, method, resource string) (Intent, error) {
	in.CreateTime = s.clock.Now()
	err := s.inTx(ctx, func(tx Tx) error {
		id, err := tx.CreateIntent(ctx, in)
		in.ID = id
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, method, resource)
	})
	if errors.Is(err, ErrConflict) {
		// The open intent of an earlier call is resumed: this call is
		// audited on its own.
		if aerr := s.inTx(ctx, func(tx Tx) error { return s.audit(ctx, tx, method, resource) }); aerr != nil {
			return Intent{}, aerr
		}
		open, lerr := s.store.OpenIntents(ctx)
		if lerr != nil {
			return Intent{}, lerr
		}
		for _, o := range open {
			if o.Kind == in.Kind && o.Key == in.Key {
				o.Note = in.Note
				return o, nil
			}
		}
	}
	return in, err
}

// resolveIntent deletes an intent; one already gone is fine.
func (s *Service) resolveIntent(ctx context.Context, id int64) error {
	err := s.inTx(ctx, func(tx Tx) error { return tx.DeleteIntent(ctx, id) })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
