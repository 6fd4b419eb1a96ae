-- Usage outbox: the ledger's debits, net of their refunds, read by a
-- consumer (a reporter to a payment provider) that acknowledges each
-- operation once it was reported; a refund after that is read again as a
-- correction of the reported value.

-- usage_floor is, per consumer, the ledger positions below which every
-- debit (seq) and every refund (refund_seq) is dealt with, so that a read
-- scans only what follows them.
CREATE TABLE {{schema}}.usage_floor (
    consumer   text PRIMARY KEY,
    seq        bigint NOT NULL DEFAULT 0,
    refund_seq bigint NOT NULL DEFAULT 0
);

-- usage_acks records the operations a consumer reported: the debit's
-- position, the value reported, and its revision (0, then one more for
-- each correction).
CREATE TABLE {{schema}}.usage_acks (
    consumer     text NOT NULL,
    operation_id text NOT NULL,
    seq          bigint NOT NULL,
    value        bigint NOT NULL,
    revision     int NOT NULL,
    acked_at     timestamptz NOT NULL,
    PRIMARY KEY (consumer, operation_id)
);
CREATE INDEX usage_acks_acked_at ON {{schema}}.usage_acks (consumer, acked_at);

-- usage_claims leases operations to the reader that read them, so that
-- two replicas of a reporter do not send the same usage at once.
CREATE TABLE {{schema}}.usage_claims (
    consumer     text NOT NULL,
    operation_id text NOT NULL,
    token        text NOT NULL,
    until        timestamptz NOT NULL,
    PRIMARY KEY (consumer, operation_id)
);

CREATE INDEX ledger_debit_seq ON {{schema}}.ledger (seq) WHERE kind = 'debit';
CREATE INDEX ledger_refund_seq ON {{schema}}.ledger (seq) WHERE kind = 'refund';

-- usage_net is the credits operation p_op used: its debit less its refunds.
CREATE FUNCTION {{schema}}.usage_net(p_op text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(-l.amount), 0) FROM {{schema}}.ledger l
     WHERE l.operation_id = p_op AND l.kind IN ('debit', 'refund')
$$;

-- usage_advance moves a consumer's floors past the settled debits it
-- acknowledged and the settled refunds there is nothing more to do for,
-- drops acknowledgements below the debit floor made before p_keep, and
-- returns the floors.
CREATE FUNCTION {{schema}}.usage_advance(p_consumer text, p_cutoff timestamptz, p_keep timestamptz,
        OUT f bigint, OUT rf bigint)
LANGUAGE plpgsql AS $$
DECLARE
    nf bigint;
    nr bigint;
BEGIN
    INSERT INTO {{schema}}.usage_floor (consumer) VALUES (p_consumer) ON CONFLICT DO NOTHING;
    SELECT u.seq, u.refund_seq INTO f, rf FROM {{schema}}.usage_floor u WHERE u.consumer = p_consumer FOR UPDATE;
    SELECT min(l.seq) - 1 INTO nf FROM {{schema}}.ledger l
     WHERE l.kind = 'debit' AND l.seq > f
       AND (l.at > p_cutoff OR NOT EXISTS (SELECT 1 FROM {{schema}}.usage_acks a
             WHERE a.consumer = p_consumer AND a.operation_id = l.operation_id));
    IF nf IS NULL THEN
        SELECT coalesce(max(l.seq), f) INTO nf FROM {{schema}}.ledger l WHERE l.kind = 'debit' AND l.seq > f;
    END IF;
    -- A refund is dealt with when its operation's acknowledged value is
    -- its net, or when its debit is neither acknowledged nor being
    -- reported (the debit's report will be net of it).
    SELECT min(x.seq) - 1 INTO nr FROM {{schema}}.ledger x
      LEFT JOIN {{schema}}.usage_acks a ON a.consumer = p_consumer AND a.operation_id = x.operation_id
     WHERE x.kind = 'refund' AND x.seq > rf
       AND (x.at > p_cutoff
            OR (a.operation_id IS NOT NULL AND a.value <> {{schema}}.usage_net(x.operation_id))
            OR (a.operation_id IS NULL AND EXISTS (SELECT 1 FROM {{schema}}.usage_claims c
                  WHERE c.consumer = p_consumer AND c.operation_id = x.operation_id)));
    IF nr IS NULL THEN
        SELECT coalesce(max(x.seq), rf) INTO nr FROM {{schema}}.ledger x WHERE x.kind = 'refund' AND x.seq > rf;
    END IF;
    IF nf > f OR nr > rf THEN
        UPDATE {{schema}}.usage_floor SET seq = nf, refund_seq = nr WHERE consumer = p_consumer;
        f := nf;
        rf := nr;
    END IF;
    DELETE FROM {{schema}}.usage_claims c USING {{schema}}.usage_acks a
     WHERE c.consumer = p_consumer AND a.consumer = p_consumer
       AND a.operation_id = c.operation_id AND a.seq <= f AND a.acked_at < p_keep;
    DELETE FROM {{schema}}.usage_acks a WHERE a.consumer = p_consumer AND a.seq <= f AND a.acked_at < p_keep;
END $$;

-- usage_claim leases operation p_op to p_token until p_until, unless it
-- is leased at t (to any reader: one that reads again before its lease
-- ends is still reporting it); it reports whether it did.
CREATE FUNCTION {{schema}}.usage_claim(p_consumer text, p_op text, p_token text, t timestamptz,
        p_until timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{schema}}.usage_claims AS c (consumer, operation_id, token, until)
         VALUES (p_consumer, p_op, p_token, p_until)
    ON CONFLICT (consumer, operation_id) DO UPDATE SET token = p_token, until = p_until
         WHERE c.until <= t;
    RETURN FOUND;
END $$;

-- usage_pending claims, for p_lease under p_token, up to p_limit usages
-- that p_consumer has to report and no other reader holds: first the
-- corrections of reported operations refunded since, then settled debits
-- not acknowledged, oldest first, with their value net of refunds (and
-- the revision and time of the report a correction replaces). Debits
-- refunded in full before their report are acknowledged on the way.
CREATE FUNCTION {{schema}}.usage_pending(p_consumer text, p_limit int, p_settle interval,
        p_lease interval, p_token text, p_keep interval)
RETURNS TABLE (u_seq bigint, u_op text, u_account text, u_value bigint, u_at timestamptz,
        u_revision int, u_reported_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := {{schema}}.clock();
    fl record;
    r record;
    n int := 0;
BEGIN
    SELECT * INTO fl FROM {{schema}}.usage_advance(p_consumer, t - p_settle, t - p_keep);
    FOR r IN
        SELECT l.seq, l.operation_id, l.account_id, l.at, a.revision, a.acked_at,
               {{schema}}.usage_net(x.operation_id) AS net
          FROM {{schema}}.ledger x
          JOIN {{schema}}.usage_acks a ON a.consumer = p_consumer AND a.operation_id = x.operation_id
          JOIN {{schema}}.ledger l ON l.operation_id = x.operation_id AND l.kind = 'debit'
         WHERE x.kind = 'refund' AND x.seq > fl.rf AND x.at <= t - p_settle
           AND a.value <> {{schema}}.usage_net(x.operation_id)
         ORDER BY x.seq
    LOOP
        EXIT WHEN n >= p_limit;
        CONTINUE WHEN NOT {{schema}}.usage_claim(p_consumer, r.operation_id, p_token, t, t + p_lease);
        -- A fresh look: another reader may have corrected it since the
        -- loop's snapshot.
        PERFORM 1 FROM {{schema}}.usage_acks a
          WHERE a.consumer = p_consumer AND a.operation_id = r.operation_id AND a.revision = r.revision;
        CONTINUE WHEN NOT FOUND;
        n := n + 1;
        u_seq := r.seq; u_op := r.operation_id; u_account := r.account_id; u_value := r.net; u_at := r.at;
        u_revision := r.revision + 1; u_reported_at := r.acked_at;
        RETURN NEXT;
    END LOOP;
    FOR r IN
        SELECT l.seq, l.operation_id, l.account_id, l.at, {{schema}}.usage_net(l.operation_id) AS net
          FROM {{schema}}.ledger l
         WHERE l.kind = 'debit' AND l.seq > fl.f AND l.at <= t - p_settle
           AND NOT EXISTS (SELECT 1 FROM {{schema}}.usage_acks a
                            WHERE a.consumer = p_consumer AND a.operation_id = l.operation_id)
         ORDER BY l.seq
    LOOP
        EXIT WHEN n >= p_limit;
        CONTINUE WHEN NOT {{schema}}.usage_claim(p_consumer, r.operation_id, p_token, t, t + p_lease);
        -- A fresh look: another reader may have acknowledged it since the
        -- loop's snapshot.
        PERFORM 1 FROM {{schema}}.usage_acks a WHERE a.consumer = p_consumer AND a.operation_id = r.operation_id;
        CONTINUE WHEN FOUND;
        IF r.net <= 0 THEN
            INSERT INTO {{schema}}.usage_acks VALUES (p_consumer, r.operation_id, r.seq, 0, 0, t)
                ON CONFLICT DO NOTHING;
            CONTINUE;
        END IF;
        n := n + 1;
        u_seq := r.seq; u_op := r.operation_id; u_account := r.account_id; u_value := r.net; u_at := r.at;
        u_revision := 0; u_reported_at := NULL;
        RETURN NEXT;
    END LOOP;
END $$;

-- usage_ack records operations as reported by p_consumer, each with the
-- value and revision reported; an older revision never replaces a newer
-- one. Their leases end; the claims stay until the floor passes them.
CREATE FUNCTION {{schema}}.usage_ack(p_consumer text, p_ops text[], p_seqs bigint[], p_values bigint[],
        p_revisions int[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO {{schema}}.usage_acks AS a (consumer, operation_id, seq, value, revision, acked_at)
    SELECT p_consumer, o, s, v, r, {{schema}}.clock()
      FROM unnest(p_ops, p_seqs, p_values, p_revisions) AS u(o, s, v, r)
    ON CONFLICT (consumer, operation_id) DO UPDATE
       SET value = excluded.value, revision = excluded.revision, acked_at = excluded.acked_at
     WHERE a.revision < excluded.revision;
    UPDATE {{schema}}.usage_claims c SET until = {{schema}}.clock()
     WHERE c.consumer = p_consumer AND c.operation_id = ANY (p_ops);
$$;
