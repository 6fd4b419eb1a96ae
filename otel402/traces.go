package otel402

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/go402/go402/paywall"
)

// traceDecision makes the span of decision d during iv, with a's
// attributes, as a child of the span in ctx: from the request's previous
// decision (or its arrival at Handler) to d, or an instant for a decision
// without Handler or made after the handler (a refund, a settlement).
func (m *Metrics) traceDecision(ctx context.Context, d paywall.Decision, a *decisionAttrs, iv interval) {
	_, span := m.tracer.Start(ctx, a.spanName, trace.WithTimestamp(iv.start), trace.WithAttributes(a.span...))
	if d.Err != nil {
		span.RecordError(d.Err)
		span.SetStatus(codes.Error, string(d.Code))
	}
	span.End(trace.WithTimestamp(iv.end))
}

// interval is when a decision or a store call started and ended.
type interval struct{ start, end time.Time }

// traceStore makes the span of a store call of a's operation during iv
// that returned err, of error type et; a failure (not an unknown key or
// account, nor an account that exists) records err.
func (m *Metrics) traceStore(ctx context.Context, a *operationAttrs, et errorType, err error, iv interval) {
	_, span := m.tracer.Start(ctx, a.spanName, trace.WithTimestamp(iv.start), trace.WithAttributes(a.span[et]...))
	if et.failure() {
		span.RecordError(err)
		span.SetStatus(codes.Error, errorTypeNames[et])
	}
	span.End(trace.WithTimestamp(iv.end))
}
