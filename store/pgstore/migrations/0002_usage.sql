-- Usage outbox: the ledger's debits, net of their refunds, read by a
-- consumer (a reporter to a payment provider) that acknowledges each
-- operation once it was reported.

-- usage_floor is, per consumer, the ledger position below which every
-- debit is acknowledged, so that a read scans only what follows it.
CREATE TABLE {{schema}}.usage_floor (
    consumer text PRIMARY KEY,
    seq      bigint NOT NULL DEFAULT 0
);

-- usage_acks records the operations a consumer reported, and the value.
CREATE TABLE {{schema}}.usage_acks (
    consumer     text NOT NULL,
    operation_id text NOT NULL,
    seq          bigint NOT NULL,
    value        bigint NOT NULL,
    acked_at     timestamptz NOT NULL,
    PRIMARY KEY (consumer, operation_id)
);

-- usage_claims leases operations to the replica that read them, so that
-- two replicas of a reporter do not send the same usage at once.
CREATE TABLE {{schema}}.usage_claims (
    consumer     text NOT NULL,
    operation_id text NOT NULL,
    token        text NOT NULL,
    until        timestamptz NOT NULL,
    PRIMARY KEY (consumer, operation_id)
);

CREATE INDEX ledger_debit_seq ON {{schema}}.ledger (seq) WHERE kind = 'debit';

-- usage_advance moves a consumer's floor past the settled, acknowledged
-- debits that follow it, and returns it.
CREATE FUNCTION {{schema}}.usage_advance(p_consumer text, p_cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    f bigint;
    nf bigint;
BEGIN
    INSERT INTO {{schema}}.usage_floor (consumer) VALUES (p_consumer) ON CONFLICT DO NOTHING;
    SELECT u.seq INTO f FROM {{schema}}.usage_floor u WHERE u.consumer = p_consumer FOR UPDATE;
    SELECT min(l.seq) - 1 INTO nf FROM {{schema}}.ledger l
     WHERE l.kind = 'debit' AND l.seq > f
       AND (l.at > p_cutoff OR NOT EXISTS (SELECT 1 FROM {{schema}}.usage_acks a
             WHERE a.consumer = p_consumer AND a.operation_id = l.operation_id));
    IF nf IS NULL THEN
        SELECT coalesce(max(l.seq), f) INTO nf FROM {{schema}}.ledger l WHERE l.kind = 'debit' AND l.seq > f;
    END IF;
    IF nf > f THEN
        UPDATE {{schema}}.usage_floor SET seq = nf WHERE consumer = p_consumer;
        DELETE FROM {{schema}}.usage_claims c USING {{schema}}.usage_acks a
         WHERE c.consumer = p_consumer AND a.consumer = p_consumer
           AND a.operation_id = c.operation_id AND a.seq <= nf;
        DELETE FROM {{schema}}.usage_acks a WHERE a.consumer = p_consumer AND a.seq <= nf;
        f := nf;
    END IF;
    RETURN f;
END $$;

-- usage_pending claims, for p_lease under p_token, up to p_limit settled
-- debits that p_consumer has not acknowledged and no other replica holds,
-- oldest first, with their value net of refunds. Debits refunded in full
-- are acknowledged on the way and not returned.
CREATE FUNCTION {{schema}}.usage_pending(p_consumer text, p_limit int, p_settle interval,
        p_lease interval, p_token text)
RETURNS TABLE (u_seq bigint, u_op text, u_account text, u_value bigint, u_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := {{schema}}.clock();
    f bigint := {{schema}}.usage_advance(p_consumer, t - p_settle);
    r record;
    n int := 0;
BEGIN
    FOR r IN
        SELECT l.seq, l.operation_id, l.account_id, l.at,
               -l.amount - coalesce((SELECT sum(x.amount) FROM {{schema}}.ledger x
                                      WHERE x.operation_id = l.operation_id AND x.kind = 'refund'), 0) AS net
          FROM {{schema}}.ledger l
         WHERE l.kind = 'debit' AND l.seq > f AND l.at <= t - p_settle
           AND NOT EXISTS (SELECT 1 FROM {{schema}}.usage_acks a
                            WHERE a.consumer = p_consumer AND a.operation_id = l.operation_id)
         ORDER BY l.seq
    LOOP
        EXIT WHEN n >= p_limit;
        INSERT INTO {{schema}}.usage_claims AS c (consumer, operation_id, token, until)
             VALUES (p_consumer, r.operation_id, p_token, t + p_lease)
        ON CONFLICT (consumer, operation_id) DO UPDATE SET token = p_token, until = t + p_lease
             WHERE c.until <= t OR c.token = p_token;
        CONTINUE WHEN NOT FOUND;
        -- A fresh look: another reader may have acknowledged it since the
        -- loop's snapshot.
        PERFORM 1 FROM {{schema}}.usage_acks a WHERE a.consumer = p_consumer AND a.operation_id = r.operation_id;
        CONTINUE WHEN FOUND;
        IF r.net <= 0 THEN
            INSERT INTO {{schema}}.usage_acks VALUES (p_consumer, r.operation_id, r.seq, 0, t)
                ON CONFLICT DO NOTHING;
            CONTINUE;
        END IF;
        n := n + 1;
        u_seq := r.seq; u_op := r.operation_id; u_account := r.account_id; u_value := r.net; u_at := r.at;
        RETURN NEXT;
    END LOOP;
END $$;

-- usage_ack records operations as reported by p_consumer. Their claims
-- stay until the floor passes them, so that a reader whose snapshot
-- predates the acknowledgement cannot claim them again.
CREATE FUNCTION {{schema}}.usage_ack(p_consumer text, p_ops text[], p_seqs bigint[], p_values bigint[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO {{schema}}.usage_acks (consumer, operation_id, seq, value, acked_at)
    SELECT p_consumer, o, s, v, {{schema}}.clock() FROM unnest(p_ops, p_seqs, p_values) AS u(o, s, v)
    ON CONFLICT DO NOTHING;
$$;
