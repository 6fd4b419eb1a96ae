// Package stripebilling keeps go402 accounts in step with Stripe Billing and
// reports their usage back to it.
//
// [Webhook] verifies each event's Stripe-Signature and applies, through
// [store.Admin]'s atomic UpdateAccount:
//   - customer.subscription.created/updated/deleted: status (active,
//     trialing, past_due; canceled, incomplete_expired → canceled; paused,
//     unpaid, incomplete → suspended), plan and features from
//     [Options.Plans], the quota refilled from the billing period's start,
//     and PeriodEnd at a scheduled cancellation. A plan change moves the
//     balance by the difference of the two quotas at once.
//   - invoice.payment_failed / invoice.paid of a subscription's invoice: the
//     lapse reason (card_declined, insufficient_funds, payment_method_…) and
//     a grace of [Options.Grace] from the invoice's first attempt, cleared
//     when it is paid; the portal link as the account's PaymentURL.
//   - invoice.paid: credit packs ([Options.CreditPacks]) added once per
//     invoice, under the operation "stripe:<invoice ID>".
//
// Subscription state and payment state each keep the version (event time,
// then event ID) they were last set from, so duplicated and reordered
// deliveries converge on the state of the newest event.
//
// [Reporter] sends usage from an [Outbox] ([Journal] for a memory store,
// pgstore's UsageOutbox for its ledger) to Stripe meter events with the
// go402 operation ID as identifier. A refund after the report cancels that
// event and reports the net as "<operation ID>~<revision>", within
// [ReporterOptions.CancelWindow].
package stripebilling
