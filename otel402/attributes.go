package otel402

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Attribute keys.
const (
	keyStep      = attribute.Key("go402.step")
	keyAllowed   = attribute.Key("go402.allowed")
	keyCode      = attribute.Key("go402.code")
	keyRoute     = attribute.Key("http.route")
	keyPlan      = attribute.Key("go402.plan")
	keyPolicy    = attribute.Key("go402.policy")
	keyOperation = attribute.Key("go402.store.operation")
	keyErrorType = attribute.Key("error.type")
)

// otherValue replaces the values past a bound, as OpenTelemetry's
// semantic conventions do for error.type.
const otherValue = "_OTHER"

// boundedNames admits at most max distinct names; later ones are
// otherValue.
type boundedNames struct {
	max   int
	mu    sync.Mutex
	names map[string]struct{}
}

func newBoundedNames(max int) *boundedNames {
	return &boundedNames{max: max, names: make(map[string]struct{})}
}

// name returns s if it is, or can become, one of the admitted names.
func (b *boundedNames) name(s string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.names[s]; ok {
		return s
	}
	if len(b.names) >= b.max {
		return otherValue
	}
	b.names[s] = struct{}{}
	return s
}

// decisionKey is what the attributes of a decision depend on.
type decisionKey struct {
	step, code, route, plan string
	allowed                 bool
}

// refusalKey is what the attributes of a rate-limit refusal depend on.
type refusalKey struct{ policy, route, plan string }

// decisionAttrs are the options of a decision's measurements, made once
// per decisionKey so that recording allocates nothing.
type decisionAttrs struct {
	span     []attribute.KeyValue // of the decision's span
	spanName string
	decision []metric.AddOption
	latency  []metric.RecordOption
	credits  []metric.AddOption
}

// maxCached bounds the attribute sets kept; past it, they are made for
// each measurement (and allocate).
const maxCached = 10000

// attrCache keeps the attribute options of decisions and refusals.
type attrCache struct {
	decisions sync.Map // decisionKey → *decisionAttrs
	refusals  sync.Map // refusalKey → []metric.AddOption
	size      atomic.Int64
}

// decision returns the options of k's measurements.
func (c *attrCache) decision(m *Metrics, k decisionKey) *decisionAttrs {
	if a, ok := c.decisions.Load(k); ok {
		return a.(*decisionAttrs)
	}
	route, plan := m.routes.name(k.route), m.plans.name(k.plan)
	kv := make([]attribute.KeyValue, 0, 5)
	kv = append(kv, keyStep.String(k.step), keyAllowed.Bool(k.allowed))
	if k.code != "" {
		kv = append(kv, keyCode.String(k.code))
	}
	kv = append(kv, optional(keyRoute, route)...)
	kv = append(kv, optional(keyPlan, plan)...)
	set := attribute.NewSet(kv...)
	credits := attribute.NewSet(append(optional(keyRoute, route), optional(keyPlan, plan)...)...)
	a := &decisionAttrs{
		span:     kv,
		spanName: "go402." + k.step,
		decision: []metric.AddOption{metric.WithAttributeSet(set)},
		latency:  []metric.RecordOption{metric.WithAttributeSet(set)},
		credits:  []metric.AddOption{metric.WithAttributeSet(credits)},
	}
	if c.size.Add(1) <= maxCached {
		c.decisions.Store(k, a)
	}
	return a
}

// refusal returns the options of a rate-limit refusal of k.
func (c *attrCache) refusal(m *Metrics, k refusalKey) []metric.AddOption {
	if a, ok := c.refusals.Load(k); ok {
		return a.([]metric.AddOption)
	}
	kv := append(optional(keyPolicy, k.policy), optional(keyRoute, m.routes.name(k.route))...)
	kv = append(kv, optional(keyPlan, m.plans.name(k.plan))...)
	a := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	if c.size.Add(1) <= maxCached {
		c.refusals.Store(k, a)
	}
	return a
}

// optional returns the attribute k=v, or none if v is empty.
func optional(k attribute.Key, v string) []attribute.KeyValue {
	if v == "" {
		return nil
	}
	return []attribute.KeyValue{k.String(v)}
}
