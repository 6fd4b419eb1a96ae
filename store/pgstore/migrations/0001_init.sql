-- Accounts: balance and refill state as columns, every other field of
-- store.Account as JSON in info, so that new fields need no migration.
CREATE TABLE {{schema}}.accounts (
    id              text PRIMARY KEY,
    balance         bigint NOT NULL CHECK (balance >= 0),
    refill_amount   bigint,
    refill_every_us bigint,
    refill_anchor   timestamptz,
    refilled_at     timestamptz,
    info            jsonb NOT NULL DEFAULT '{}'
);

-- Keys: the SHA-256 digest of the raw key and its display prefix only.
CREATE TABLE {{schema}}.keys (
    digest       bytea PRIMARY KEY,
    account_id   text NOT NULL REFERENCES {{schema}}.accounts (id) ON DELETE CASCADE,
    prefix       text NOT NULL,
    revoked      boolean NOT NULL DEFAULT false,
    expires_at   timestamptz,
    created_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX keys_account_id ON {{schema}}.keys (account_id);

-- The ledger: one row per movement of credits, never updated or deleted.
CREATE TABLE {{schema}}.ledger (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    account_id   text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('debit', 'refund', 'topup', 'refill', 'adjust')),
    amount       bigint NOT NULL,
    balance      bigint NOT NULL,
    operation_id text NOT NULL,
    route        text NOT NULL DEFAULT '',
    key_prefix   text NOT NULL DEFAULT '',
    UNIQUE (operation_id, kind)
);
CREATE INDEX ledger_account_seq ON {{schema}}.ledger (account_id, seq);

CREATE FUNCTION {{schema}}.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON {{schema}}.ledger
    FOR EACH ROW EXECUTE FUNCTION {{schema}}.ledger_append_only();

-- Operations cancelled because their answer was lost: a debit arriving
-- after its cancellation is refused.
CREATE TABLE {{schema}}.cancelled (
    operation_id text PRIMARY KEY,
    account_id   text NOT NULL,
    at           timestamptz NOT NULL
);

-- The clock of every balance, refill and ledger time: the server's.
CREATE FUNCTION {{schema}}.clock() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT now() $$;

-- refill_due applies the refill due at t, if any: at every boundary
-- anchor + k·every a balance below amount is raised to amount. boundary is
-- the refilled_at to store, next_refill the first boundary after t.
CREATE FUNCTION {{schema}}.refill_due(
    balance bigint, amount bigint, every_us bigint, anchor timestamptz, refilled_at timestamptz, t timestamptz,
    OUT new_balance bigint, OUT boundary timestamptz, OUT next_refill timestamptz)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    b timestamptz;
BEGIN
    new_balance := balance;
    boundary := refilled_at;
    IF amount IS NULL THEN
        RETURN;
    END IF;
    IF t < anchor THEN
        next_refill := anchor;
        RETURN;
    END IF;
    b := anchor + (floor((extract(epoch FROM t) - extract(epoch FROM anchor)) * 1000000 / every_us)::bigint
                   * every_us) * interval '1 microsecond';
    next_refill := b + every_us * interval '1 microsecond';
    IF refilled_at IS NULL OR b > refilled_at THEN
        boundary := b;
        IF balance < amount THEN
            new_balance := amount;
        END IF;
    END IF;
END $$;

-- lock_account locks an account, applies its due refill (with its ledger
-- row) and returns it; P0002 if there is none.
CREATE FUNCTION {{schema}}.lock_account(p_account text, t timestamptz,
    OUT balance bigint, OUT refilled_at timestamptz, OUT next_refill timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    r record;
BEGIN
    SELECT x.balance, x.refill_amount, x.refill_every_us, x.refill_anchor, x.refilled_at INTO a
        FROM {{schema}}.accounts x WHERE x.id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account not found' USING ERRCODE = 'P0002';
    END IF;
    r := {{schema}}.refill_due(a.balance, a.refill_amount, a.refill_every_us, a.refill_anchor, a.refilled_at, t);
    balance := r.new_balance;
    refilled_at := r.boundary;
    next_refill := r.next_refill;
    IF r.boundary IS DISTINCT FROM a.refilled_at THEN
        UPDATE {{schema}}.accounts x SET balance = r.new_balance, refilled_at = r.boundary WHERE x.id = p_account;
        IF r.new_balance <> a.balance THEN
            INSERT INTO {{schema}}.ledger (at, account_id, kind, amount, balance, operation_id)
            VALUES (t, p_account, 'refill', r.new_balance - a.balance, r.new_balance,
                    'refill:' || (extract(epoch FROM r.boundary) * 1000000)::bigint || ':' || p_account);
        END IF;
    END IF;
END $$;

-- spend debits p_cost if the balance covers it, as operation p_op: a
-- repeated operation returns its first outcome, a cancelled one fails.
CREATE FUNCTION {{schema}}.spend(p_account text, p_cost bigint, p_op text, p_route text, p_key_prefix text,
    OUT ok boolean, OUT balance bigint, OUT next_refill timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := {{schema}}.clock();
    a record;
    prev bigint;
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
    PERFORM 1 FROM {{schema}}.cancelled c WHERE c.operation_id = p_op;
    IF FOUND THEN
        RAISE EXCEPTION 'operation cancelled' USING ERRCODE = 'P0003';
    END IF;
    IF balance < p_cost THEN
        ok := false;
        RETURN;
    END IF;
    balance := balance - p_cost;
    UPDATE {{schema}}.accounts x SET balance = spend.balance WHERE x.id = p_account;
    INSERT INTO {{schema}}.ledger (at, account_id, kind, amount, balance, operation_id, route, key_prefix)
    VALUES (t, p_account, 'debit', -p_cost, balance, p_op, p_route, p_key_prefix);
END $$;

-- credit adds p_amount as a refund, top-up or adjustment; once per
-- (p_op, p_kind). A refund of a debit (p_of_debit) gives back at most what
-- operation p_op debited from the account, and nothing if it debited nothing.
CREATE FUNCTION {{schema}}.credit(p_account text, p_amount bigint, p_kind text, p_op text, p_of_debit boolean,
    p_route text, p_key_prefix text, OUT balance bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := {{schema}}.clock();
    a record;
    amt bigint := p_amount;
    n bigint;
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
        UPDATE {{schema}}.accounts x SET balance = credit.balance WHERE x.id = p_account;
    END IF;
END $$;

-- cancel makes sure operation p_op moves no credits: a debit not yet made
-- never will be, one made is refunded (unless it already was).
CREATE FUNCTION {{schema}}.cancel(p_account text, p_op text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d bigint;
BEGIN
    PERFORM 1 FROM {{schema}}.accounts x WHERE x.id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO {{schema}}.cancelled (operation_id, account_id, at)
    VALUES (p_op, p_account, {{schema}}.clock()) ON CONFLICT DO NOTHING;
    SELECT -l.amount INTO d FROM {{schema}}.ledger l
        WHERE l.operation_id = p_op AND l.kind = 'debit' AND l.account_id = p_account;
    IF FOUND THEN
        PERFORM {{schema}}.credit(p_account, d, 'refund', p_op, true, '', '');
    END IF;
END $$;

-- put_account creates or replaces an account; a change of balance is an
-- 'adjust' ledger row, so that balances stay the sum of their ledger.
CREATE FUNCTION {{schema}}.put_account(p_id text, p_balance bigint, p_refill_amount bigint,
    p_refill_every_us bigint, p_refill_anchor timestamptz, p_refilled_at timestamptz, p_info jsonb, p_op text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old bigint;
BEGIN
    INSERT INTO {{schema}}.accounts (id, balance) VALUES (p_id, 0) ON CONFLICT DO NOTHING;
    SELECT x.balance INTO old FROM {{schema}}.accounts x WHERE x.id = p_id FOR UPDATE;
    UPDATE {{schema}}.accounts x SET balance = p_balance, refill_amount = p_refill_amount,
        refill_every_us = p_refill_every_us, refill_anchor = p_refill_anchor, refilled_at = p_refilled_at,
        info = p_info
    WHERE x.id = p_id;
    IF p_balance <> old THEN
        INSERT INTO {{schema}}.ledger (at, account_id, kind, amount, balance, operation_id)
        VALUES ({{schema}}.clock(), p_id, 'adjust', p_balance - old, p_balance, p_op);
    END IF;
END $$;

-- Changes that cached lookups depend on are announced on the channel named
-- after the schema: 'a:' and an account ID, or 'k:' and a key digest in hex.
CREATE FUNCTION {{schema}}.notify_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify({{channel}}, 'a:' || NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_notify AFTER INSERT OR UPDATE OF refill_amount, refill_every_us, refill_anchor, info
    ON {{schema}}.accounts FOR EACH ROW EXECUTE FUNCTION {{schema}}.notify_account();

CREATE FUNCTION {{schema}}.notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify({{channel}}, 'k:' || encode(OLD.digest, 'hex'));
    ELSE
        PERFORM pg_notify({{channel}}, 'k:' || encode(NEW.digest, 'hex'));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER keys_notify AFTER INSERT OR DELETE OR UPDATE OF digest, account_id, prefix, revoked, expires_at, created_at
    ON {{schema}}.keys FOR EACH ROW EXECUTE FUNCTION {{schema}}.notify_key();
