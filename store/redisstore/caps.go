package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/go402/go402/store"
)

// fieldCaps is the account hash field of the spend cap and thresholds: a
// JSON document (capsData) the scripts read and write with cjson, its
// credit amounts as decimal strings so that they stay exact.
const fieldCaps = "caps"

// capsData is the spend cap, its period's state and the thresholds.
type capsData struct {
	Limit   string         `json:"lim,omitempty"`
	Period  store.Period   `json:"per,omitempty"`
	Spent   string         `json:"spent,omitempty"` // set with StartS and StartNs
	StartS  int64          `json:"ss,omitempty"`
	StartNs int64          `json:"sn,omitempty"`
	Th      []capThreshold `json:"th,omitempty"`
}

// capThreshold is a threshold as the scripts test it: the cap spending
// rising to Level (K "c") or the balance falling to it (K "b"), once per
// period P: the cap's ("c"), the refill's ("r") or the calendar month's
// ("m"), marked with the period's start in M.
type capThreshold struct {
	Kind  store.ThresholdKind `json:"kind"`
	Value string              `json:"v"`
	K     string              `json:"k"`
	Level string              `json:"l"`
	P     string              `json:"p"`
	M     []int64             `json:"m,omitempty"`
}

// encodeCaps returns the caps field of a, or "" if it has none.
func encodeCaps(a *store.Account) (string, error) {
	if a.SpendCap == nil && len(a.Thresholds) == 0 {
		return "", nil
	}
	var d capsData
	if c := a.SpendCap; c != nil {
		d.Limit, d.Period = strconv.FormatInt(c.Limit, 10), c.Period
		if !c.Start.IsZero() {
			d.Spent, d.StartS, d.StartNs = strconv.FormatInt(c.Spent, 10), c.Start.Unix(), int64(c.Start.Nanosecond())
		}
	}
	for _, t := range a.Thresholds {
		ct := capThreshold{Kind: t.Kind, Value: strconv.FormatInt(t.Value, 10), K: "b", Level: strconv.FormatInt(t.Value, 10)}
		switch {
		case t.Kind == store.ThresholdCapPercent:
			ct.K, ct.Level, ct.P = "c", strconv.FormatInt(percentOf(a.SpendCap.Limit, t.Value), 10), "c"
		case t.Kind == store.ThresholdQuotaPercent:
			ct.Level, ct.P = strconv.FormatInt(a.Refill.Amount-percentOf(a.Refill.Amount, t.Value), 10), "r"
		case a.Refill != nil:
			ct.P = "r"
		case a.SpendCap != nil:
			ct.P = "c"
		default:
			ct.P = "m"
		}
		if !t.Marked.IsZero() {
			ct.M = []int64{t.Marked.Unix(), int64(t.Marked.Nanosecond())}
		}
		d.Th = append(d.Th, ct)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("redisstore: account %q: %w", a.ID, err)
	}
	return string(b), nil
}

// percentOf returns p percent of n, 0 ≤ p ≤ 100, rounded up, exactly.
func percentOf(n, p int64) int64 {
	return n/100*p + (n%100*p+99)/100
}

// decodeCaps sets a's spend cap and thresholds from the caps field v.
func decodeCaps(a *store.Account, v string) error {
	var d capsData
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		return fmt.Errorf("corrupt spend cap: %w", err)
	}
	if d.Limit != "" {
		c := &store.SpendCap{Period: d.Period}
		var err error
		if c.Limit, err = strconv.ParseInt(d.Limit, 10, 64); err != nil {
			return fmt.Errorf("corrupt spend cap: %w", err)
		}
		if d.Spent != "" {
			if c.Spent, err = strconv.ParseInt(d.Spent, 10, 64); err != nil {
				return fmt.Errorf("corrupt spend cap: %w", err)
			}
			c.Start = time.Unix(d.StartS, d.StartNs)
		}
		a.SpendCap = c
	}
	ts, err := thresholds(d.Th)
	a.Thresholds = ts
	return err
}

// thresholds converts the scripts' thresholds to the store's.
func thresholds(th []capThreshold) ([]store.Threshold, error) {
	var out []store.Threshold
	for _, ct := range th {
		t := store.Threshold{Kind: ct.Kind}
		var err error
		if t.Value, err = strconv.ParseInt(ct.Value, 10, 64); err != nil {
			return nil, fmt.Errorf("corrupt threshold: %w", err)
		}
		if len(ct.M) == 2 {
			t.Marked = time.Unix(ct.M[0], ct.M[1])
		}
		out = append(out, t)
	}
	return out, nil
}

// decodeCapReply decodes the cap part of a spend script's reply: {has,
// limit, spent, resetSec, resetNsec, reached, crossed thresholds as JSON}.
func decodeCapReply(v []any) (*store.CapResult, error) {
	if len(v) != 7 {
		return nil, errReply("spend")
	}
	if has, _ := v[0].(int64); has != 1 {
		return nil, nil
	}
	lim, err1 := parseBalance("spend", v[1])
	spent, err2 := parseBalance("spend", v[2])
	if err1 != nil || err2 != nil {
		return nil, errReply("spend")
	}
	r := &store.CapResult{Limit: lim, Spent: spent}
	sec, _ := v[3].(int64)
	nsec, _ := v[4].(int64)
	if lim > 0 {
		r.ResetAt = time.Unix(sec, nsec)
	}
	reached, _ := v[5].(int64)
	r.Reached = reached == 1
	if s, _ := v[6].(string); s != "" {
		var th []capThreshold
		if err := json.Unmarshal([]byte(s), &th); err != nil {
			return nil, errReply("spend")
		}
		ts, err := thresholds(th)
		if err != nil {
			return nil, err
		}
		r.Crossed = ts
	}
	return r, nil
}

// KeepsSpendCaps implements [store.SpendCapper].
func (*Store) KeepsSpendCaps() {}

// luaCaps defines the spend cap functions and release that a decision
// calls: they answer an account without a spend cap or thresholds, or
// without holds due for release, at once, and hand any other to extra's
// (see luaLib), which luaCapsLib and luaReleaseLib define.
const luaCaps = `
local function caps_load(v, f, now)
  if not v then return nil end
  return extra().caps_load(v, f, now)
end
local function caps_debit(c, bal, amt, nx, f, now, w)
  if c then return extra().caps_debit(c, bal, amt, nx, f, now, w) end
  if dlt(bal, amt) then return false, bal, false, '' end
  return true, dsub(bal, amt), false, ''
end
local function caps_append(r, c, reached, crossed)
  if not c then return r end
  return extra().caps_append(r, c, reached, crossed)
end
local function release(k, hk, hn, now_us)
  if not hn or tonumber(hn) > now_us then return false end
  return extra().release(k, hk, hn, now_us)
end
`

// luaCapsLib holds the spend cap and threshold functions; see extra in
// luaLib.
const luaCapsLib = `
-- civil returns the UTC year, month and day of day z since 1970-01-01.
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end
-- days returns the day since 1970-01-01 of year y, month m, day d.
local function days(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end
-- add_months returns anchor a = {y, m, d, second of day, ns} moved k
-- months on, its day clamped to the month's last, as {sec, nsec}.
local function add_months(a, k)
  local mi = a[1] * 12 + a[2] - 1 + k
  local y = math.floor(mi / 12)
  local m = mi - y * 12 + 1
  local last = days(m == 12 and y + 1 or y, m == 12 and 1 or m + 1, 1) - days(y, m, 1)
  return {days(y, m, math.min(a[3], last)) * 86400 + a[4], a[5]}
end
local period_len = {second = 1, minute = 60, hour = 3600, day = 86400}
-- cap_bounds returns the start and end of the period per holding now (as
-- store.Period.Bounds); anchor is a month's billing anchor or nil.
local function cap_bounds(per, anchor, now)
  local len = period_len[per]
  if len then
    local s = now[1] - now[1] % len
    return {s, 0}, {s + len, 0}
  end
  anchor = anchor or {0, 0}
  local ad = math.floor(anchor[1] / 86400)
  local y, m, d = civil(ad)
  local a = {y, m, d, anchor[1] - ad * 86400, anchor[2]}
  local ny, nm = civil(math.floor(now[1] / 86400))
  local k = (ny - y) * 12 + nm - m
  while tlt(now, add_months(a, k)) do k = k - 1 end
  while not tlt(now, add_months(a, k + 1)) do k = k + 1 end
  return add_months(a, k), add_months(a, k + 1)
end
-- caps_load decodes the caps field v (false for none) of the account
-- fields f at now, starting a new cap period if one is due.
local function caps_load(v, f, now)
  if not v then return nil end
  local c = cjson.decode(v)
  if c.lim then
    local anchor = nil
    if f[2] then anchor = {tonumber(f[5]), tonumber(f[6])} end
    local s, e = cap_bounds(c.per, anchor, now)
    if not (c.spent and c.ss == s[1] and c.sn == s[2]) then c.spent = '0' end
    c.ss, c.sn, c.stop = s[1], s[2], e
  end
  return c
end
-- caps_save appends c to the writes w.
local function caps_save(c, w)
  local stop = c.stop
  c.stop = nil
  put(w, 'caps', cjson.encode(c))
  c.stop = stop
end
-- caps_spend records in c a spend of cost that took the balance from
-- before to after, marks the thresholds it crossed, appends c to w and
-- returns the crossed thresholds as JSON ('' if none). nx is the next
-- refill, f the account fields.
local function caps_spend(c, before, after, cost, nx, f, now, w)
  local sb = c.spent
  if c.lim then c.spent = dadd(c.spent, cost) end
  local crossed = {}
  for _, t in ipairs(c.th or {}) do
    local hit
    if t.k == 'c' then
      hit = c.lim and dlt(sb, t.l) and not dlt(c.spent, t.l)
    else
      hit = dlt(t.l, before) and not dlt(t.l, after)
    end
    if hit then
      local p
      if t.p == 'c' then p = {c.ss, c.sn}
      elseif t.p == 'r' then p = tsub(nx, {tonumber(f[3]), tonumber(f[4])})
      else p = cap_bounds('month', nil, now) end
      if not (t.m and t.m[1] == p[1] and t.m[2] == p[2]) then
        t.m = {p[1], p[2]}
        crossed[#crossed + 1] = t
      end
    end
  end
  caps_save(c, w)
  if #crossed == 0 then return '' end
  return cjson.encode(crossed)
end
-- caps_debit debits amt from balance bal if both the balance and the cap
-- of c (nil for none) allow, recording the spend in c and w as caps_spend
-- does, and returns whether it did, the balance, whether the cap refused
-- and the crossed thresholds as JSON.
local function caps_debit(c, bal, amt, nx, f, now, w)
  if dlt(bal, amt) then return false, bal, false, '' end
  if c and c.lim and dlt(dsub(c.lim, c.spent), amt) then return false, bal, true, '' end
  local after = dsub(bal, amt)
  if not c then return true, after, false, '' end
  return true, after, false, caps_spend(c, bal, after, amt, nx, f, now, w)
end
-- caps_give_back gives amt back to the current cap period of account k at
-- now, down to zero; it does nothing without a cap.
local function caps_give_back(k, amt, now)
  local f = read(k, 'caps')
  local c, w = caps_load(f[9], f, now), {}
  if not (c and c.lim) then return end
  if dlt(c.spent, amt) then c.spent = '0' else c.spent = dsub(c.spent, amt) end
  caps_save(c, w)
  redis.call('HSET', k, unpack(w))
end
-- caps_append appends the cap part of a spend's reply to the reply r, if
-- there is a c, and returns r.
local function caps_append(r, c, reached, crossed)
  if not c then return r end
  local stop = c.stop or {0, 0}
  for _, v in ipairs({1, c.lim or '0', c.spent or '0', stop[1], stop[2], reached and 1 or 0, crossed or ''}) do
    r[#r + 1] = v
  end
  return r
end
`
