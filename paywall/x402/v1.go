package x402

import "encoding/json"

// x402 version 1, spoken beside version 2 when [Options.V1] is set: the
// payment comes in X-PAYMENT, the receipt goes out in X-PAYMENT-RESPONSE,
// networks have names instead of CAIP-2 ids, and every requirement
// describes the resource.
const (
	headerPaymentV1         = "X-PAYMENT"
	headerPaymentResponseV1 = "X-PAYMENT-RESPONSE"
)

// requirementsV1 is one way to pay in x402 version 1. MaxAmountRequired is
// the version 2 Amount; the other fields mean what they mean there and in
// [Resource].
type requirementsV1 struct {
	Scheme            string         `json:"scheme"`
	Network           string         `json:"network"`
	MaxAmountRequired string         `json:"maxAmountRequired"`
	Asset             string         `json:"asset"`
	PayTo             string         `json:"payTo"`
	Resource          string         `json:"resource"`
	Description       string         `json:"description"`
	MimeType          string         `json:"mimeType,omitempty"`
	MaxTimeoutSeconds int            `json:"maxTimeoutSeconds"`
	Extra             map[string]any `json:"extra,omitempty"`
}

// payloadV1 is the client's payment in x402 version 1: the chosen scheme
// and network and the scheme-specific payload.
type payloadV1 struct {
	X402Version int             `json:"x402Version"`
	Scheme      string          `json:"scheme"`
	Network     string          `json:"network"`
	Payload     json.RawMessage `json:"payload"`
}

// networkV1 maps well-known CAIP-2 ids to the network names of x402 version
// 1; other ids are used as they are.
func networkV1(caip2 string) string {
	switch caip2 {
	case "eip155:8453":
		return "base"
	case "eip155:84532":
		return "base-sepolia"
	case "eip155:43114":
		return "avalanche"
	case "eip155:43113":
		return "avalanche-fuji"
	case "eip155:137":
		return "polygon"
	case "eip155:80002":
		return "polygon-amoy"
	case "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp":
		return "solana"
	case "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1":
		return "solana-devnet"
	}
	return caip2
}

// requirementV1 returns accepts[i] with its network in version 1 naming,
// as a [Facilitator] gets it for a version 1 payment.
func (h *routeHandler) requirementV1(i int) PaymentRequirements {
	a := h.accepts[i]
	a.Network = h.networksV1[i]
	return a
}

// toV1 returns a requirement and its resource in version 1 form.
func toV1(a PaymentRequirements, res Resource) requirementsV1 {
	return requirementsV1{
		Scheme:            a.Scheme,
		Network:           a.Network,
		MaxAmountRequired: a.Amount,
		Asset:             a.Asset,
		PayTo:             a.PayTo,
		Resource:          res.URL,
		Description:       res.Description,
		MimeType:          res.MimeType,
		MaxTimeoutSeconds: a.MaxTimeoutSeconds,
		Extra:             a.Extra,
	}
}

// acceptsV1 returns the route's requirements in version 1 form for the
// resource at url, for the body of a challenge.
func (h *routeHandler) acceptsV1(url string) []requirementsV1 {
	res := h.resource(url)
	out := make([]requirementsV1, len(h.accepts))
	for i := range h.accepts {
		out[i] = toV1(h.requirementV1(i), res)
	}
	return out
}

// wireV1 returns the bodies of a facilitator call for a version 1 payment
// as the middleware hands it over: the requirement in version 1 naming, and
// the resource in p.Resource.
func wireV1(p PaymentPayload, req PaymentRequirements) (payloadV1, requirementsV1) {
	var res Resource
	if p.Resource != nil {
		res = *p.Resource
	}
	return payloadV1{X402Version: 1, Scheme: req.Scheme, Network: req.Network, Payload: p.Payload}, toV1(req, res)
}
