-- Spend caps and thresholds (store.SpendCap, store.Threshold), kept in the
-- account's info column with their per-period state, atomically with the
-- spends and refunds that change them.

-- cap_bounds returns the period holding t: UTC seconds, minutes, hours or
-- days, or months from the billing anchor (the refill anchor), clamped to
-- shorter months' last day, or UTC calendar months without one.
CREATE FUNCTION {{schema}}.cap_bounds(period text, anchor timestamptz, t timestamptz,
    OUT p_start timestamptz, OUT p_end timestamptz)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    u timestamp := t AT TIME ZONE 'UTC';
    a timestamp := anchor AT TIME ZONE 'UTC';
    k int;
BEGIN
    IF period IN ('second', 'minute', 'hour', 'day') THEN
        p_start := date_trunc(period, u) AT TIME ZONE 'UTC';
        p_end := p_start + ('1 ' || period)::interval;
        RETURN;
    END IF;
    IF anchor IS NULL THEN
        p_start := date_trunc('month', u) AT TIME ZONE 'UTC';
        p_end := (date_trunc('month', u) + interval '1 month') AT TIME ZONE 'UTC';
        RETURN;
    END IF;
    k := (extract(year FROM u) - extract(year FROM a)) * 12 + extract(month FROM u) - extract(month FROM a);
    WHILE a + make_interval(months => k) > u LOOP
        k := k - 1;
    END LOOP;
    WHILE a + make_interval(months => k + 1) <= u LOOP
        k := k + 1;
    END LOOP;
    p_start := (a + make_interval(months => k)) AT TIME ZONE 'UTC';
    p_end := (a + make_interval(months => k + 1)) AT TIME ZONE 'UTC';
END $$;

-- json_time is t as the RFC 3339 text a Go time.Time is read from.
CREATE FUNCTION {{schema}}.json_time(t timestamptz) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
$$;

-- percent_of is p percent of n, rounded up, exactly.
CREATE FUNCTION {{schema}}.percent_of(n bigint, p bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT n / 100 * p + (n % 100 * p + 99) / 100
$$;

-- cap_state returns the spend cap of info as it is at t: its limit, what
-- was spent in the period holding t, and that period.
CREATE FUNCTION {{schema}}.cap_state(info jsonb, anchor timestamptz, t timestamptz,
    OUT lim bigint, OUT spent bigint, OUT p_start timestamptz, OUT p_end timestamptz)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    c jsonb := info->'spend_cap';
    b record;
BEGIN
    IF c IS NULL OR jsonb_typeof(c) <> 'object' THEN
        RETURN;
    END IF;
    b := {{schema}}.cap_bounds(c->>'period', anchor, t);
    lim := (c->>'limit')::bigint;
    p_start := b.p_start;
    p_end := b.p_end;
    spent := 0;
    IF (c->>'start')::timestamptz = b.p_start THEN
        spent := coalesce((c->>'spent')::bigint, 0);
    END IF;
END $$;

-- with_cap is info with the spend cap's state set.
CREATE FUNCTION {{schema}}.with_cap(info jsonb, spent bigint, p_start timestamptz) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_set(jsonb_set(info, '{spend_cap,spent}', to_jsonb(spent)),
                     '{spend_cap,start}', {{schema}}.json_time(p_start))
$$;

-- threshold_period is the start of the period in which a threshold of kind
-- k is reported once: the cap's for cap percentages (and balance levels
-- without a refill), the refill's, else the UTC calendar month.
CREATE FUNCTION {{schema}}.threshold_period(k text, cap_start timestamptz, every_us bigint,
    anchor timestamptz, t timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF k = 'cap_percent' OR (k = 'balance' AND every_us IS NULL AND cap_start IS NOT NULL) THEN
        RETURN cap_start;
    END IF;
    IF every_us IS NOT NULL THEN
        IF t < anchor THEN
            RETURN anchor - every_us * interval '1 microsecond';
        END IF;
        RETURN anchor + (floor((extract(epoch FROM t) - extract(epoch FROM anchor)) * 1000000 / every_us)::bigint
                         * every_us) * interval '1 microsecond';
    END IF;
    RETURN date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
END $$;

-- mark_crossed marks the thresholds of info that a spend from balance
-- before and cap spending spent_before to bal and spent crossed, and
-- returns info and the crossed thresholds.
CREATE FUNCTION {{schema}}.mark_crossed(info jsonb, before bigint, bal bigint, spent_before bigint, spent bigint,
    lim bigint, cap_start timestamptz, quota bigint, every_us bigint, anchor timestamptz, t timestamptz,
    OUT new_info jsonb, OUT crossed jsonb)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    th jsonb;
    i int;
    v bigint;
    lvl bigint;
    hit boolean;
    p timestamptz;
BEGIN
    new_info := info;
    crossed := '[]';
    FOR th, i IN SELECT e, n - 1 FROM jsonb_array_elements(coalesce(info->'thresholds', '[]')) WITH ORDINALITY AS x(e, n) LOOP
        v := (th->>'value')::bigint;
        IF th->>'kind' = 'cap_percent' THEN
            lvl := {{schema}}.percent_of(lim, v);
            hit := spent_before < lvl AND lvl <= spent;
        ELSIF th->>'kind' = 'quota_percent' THEN
            lvl := {{schema}}.percent_of(quota, v);
            hit := quota - before < lvl AND lvl <= quota - bal;
        ELSE
            hit := before > v AND bal <= v;
        END IF;
        IF NOT coalesce(hit, false) THEN
            CONTINUE;
        END IF;
        p := {{schema}}.threshold_period(th->>'kind', cap_start, every_us, anchor, t);
        IF (th->>'marked')::timestamptz IS NOT DISTINCT FROM p THEN
            CONTINUE;
        END IF;
        th := jsonb_set(th, '{marked}', {{schema}}.json_time(p));
        new_info := jsonb_set(new_info, ARRAY['thresholds', i::text], th);
        crossed := crossed || jsonb_build_array(th);
    END LOOP;
END $$;

DROP FUNCTION {{schema}}.spend(text, bigint, text, text, text);

-- spend debits p_cost if the balance and the spend cap cover it, as
-- operation p_op: a repeated operation returns its first outcome, a
-- cancelled one fails. For an account with a spend cap or thresholds, cap
-- is the cap's state and the thresholds crossed, as JSON.
CREATE FUNCTION {{schema}}.spend(p_account text, p_cost bigint, p_op text, p_route text, p_key_prefix text,
    OUT ok boolean, OUT balance bigint, OUT next_refill timestamptz, OUT cap jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := {{schema}}.clock();
    a record;
    x record;
    c record;
    m record;
    prev bigint;
    reached boolean := false;
    crossed jsonb := '[]';
BEGIN
    SELECT * INTO a FROM {{schema}}.lock_account(p_account, t);
    balance := a.balance;
    next_refill := a.next_refill;
    ok := true;
    IF p_cost = 0 THEN
        RETURN;
    END IF;
    SELECT l.balance INTO prev FROM {{schema}}.ledger l WHERE l.operation_id = p_op AND l.kind = 'debit';
    IF FOUND THEN
        balance := prev;
        RETURN;
    END IF;
    PERFORM 1 FROM {{schema}}.cancelled cl WHERE cl.operation_id = p_op;
    IF FOUND THEN
        RAISE EXCEPTION 'operation cancelled' USING ERRCODE = 'P0003';
    END IF;
    SELECT y.info, y.refill_amount, y.refill_every_us, y.refill_anchor INTO x
        FROM {{schema}}.accounts y WHERE y.id = p_account;
    IF NOT (x.info ? 'spend_cap' OR x.info ? 'thresholds') THEN
        IF balance < p_cost THEN
            ok := false;
            RETURN;
        END IF;
        balance := balance - p_cost;
        UPDATE {{schema}}.accounts y SET balance = spend.balance WHERE y.id = p_account;
        INSERT INTO {{schema}}.ledger (at, account_id, kind, amount, balance, operation_id, route, key_prefix)
        VALUES (t, p_account, 'debit', -p_cost, balance, p_op, p_route, p_key_prefix);
        RETURN;
    END IF;
    c := {{schema}}.cap_state(x.info, x.refill_anchor, t);
    IF balance < p_cost THEN
        ok := false;
    ELSIF c.lim IS NOT NULL AND p_cost > c.lim - c.spent THEN
        ok := false;
        reached := true;
    ELSE
        balance := balance - p_cost;
        m := {{schema}}.mark_crossed(x.info, a.balance, balance, c.spent, c.spent + p_cost, c.lim, c.p_start,
                                     x.refill_amount, x.refill_every_us, x.refill_anchor, t);
        IF c.lim IS NOT NULL THEN
            m.new_info := {{schema}}.with_cap(m.new_info, c.spent + p_cost, c.p_start);
        END IF;
        crossed := m.crossed;
        UPDATE {{schema}}.accounts y SET balance = spend.balance, info = m.new_info
            WHERE y.id = p_account AND (spend.balance <> a.balance OR y.info IS DISTINCT FROM m.new_info);
        INSERT INTO {{schema}}.ledger (at, account_id, kind, amount, balance, operation_id, route, key_prefix)
        VALUES (t, p_account, 'debit', -p_cost, balance, p_op, p_route, p_key_prefix);
    END IF;
    IF c.lim IS NOT NULL OR jsonb_array_length(coalesce(x.info->'thresholds', '[]')) > 0 THEN
        cap := jsonb_build_object('limit', coalesce(c.lim, 0),
            'spent', coalesce(c.spent, 0) + CASE WHEN ok THEN p_cost ELSE 0 END,
            'reset_at', CASE WHEN c.lim IS NULL THEN NULL ELSE {{schema}}.json_time(c.p_end) END,
            'reached', reached, 'crossed', crossed);
    END IF;
END $$;

-- credit adds p_amount as a refund, top-up or adjustment; once per
-- (p_op, p_kind). A refund of a debit (p_of_debit) gives back at most what
-- operation p_op debited from the account, and nothing if it debited
-- nothing. A refund also gives its amount back to the spend cap's current
-- period, up to what was spent in it.
CREATE OR REPLACE FUNCTION {{schema}}.credit(p_account text, p_amount bigint, p_kind text, p_op text, p_of_debit boolean,
    p_route text, p_key_prefix text, OUT balance bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := {{schema}}.clock();
    a record;
    amt bigint := p_amount;
    n bigint;
    x record;
    c record;
BEGIN
    SELECT * INTO a FROM {{schema}}.lock_account(p_account, t);
    balance := a.balance;
    IF p_of_debit THEN
        SELECT least(-l.amount, p_amount) INTO amt FROM {{schema}}.ledger l
            WHERE l.operation_id = p_op AND l.kind = 'debit' AND l.account_id = p_account;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    INSERT INTO {{schema}}.ledger (at, account_id, kind, amount, balance, operation_id, route, key_prefix)
    VALUES (t, p_account, p_kind, amt, balance + amt, p_op, p_route, p_key_prefix)
    ON CONFLICT (operation_id, kind) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 1 THEN
        balance := balance + amt;
        UPDATE {{schema}}.accounts y SET balance = credit.balance WHERE y.id = p_account;
        IF p_kind = 'refund' THEN
            SELECT y.info, y.refill_anchor INTO x FROM {{schema}}.accounts y WHERE y.id = p_account;
            c := {{schema}}.cap_state(x.info, x.refill_anchor, t);
            IF c.lim IS NOT NULL THEN
                UPDATE {{schema}}.accounts y
                    SET info = {{schema}}.with_cap(x.info, c.spent - least(amt, c.spent), c.p_start)
                    WHERE y.id = p_account;
            END IF;
        END IF;
    END IF;
END $$;
