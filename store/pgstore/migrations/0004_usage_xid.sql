-- Usage floors that no late commit slips under.
--
-- A ledger row takes its seq when it is inserted but becomes visible when
-- its transaction commits, so rows appear out of seq order: a row of a
-- transaction still open can have a seq below rows already read,
-- acknowledged and passed by a floor. Its transaction ID (xid, the top
-- transaction's, taken at or before the insert) bounds it instead: every
-- transaction with an xid below the xmin of a snapshot has ended, so every
-- row it wrote is visible to that snapshot and to every later one; a row
-- not visible to a snapshot has an xid at or above its xmin, whatever its
-- seq (an early seq with a late xid, or the reverse).
--
-- So each floor is a pair (seq, xid), with the invariant:
--
--     every ledger row of the floor's kind with seq <= floor.seq and
--     (xid < floor.xid or xid IS NULL) is dealt with;
--
-- so nothing can be pending but the rows with seq > floor.seq or
-- xid >= floor.xid, the rows a read scans. usage_advance keeps it: under
-- the floor's row lock it takes the xmin h of a snapshot no newer than
-- those of its reads; moves floor.seq past the visible rows above it that
-- are dealt with; and moves floor.xid up to h, or only up to the smallest
-- xid of the open rows (not dealt with) under the new floor.seq, which
-- are rows that committed late. A row its reads do not see (its
-- transaction still open, or not begun) has an xid >= h >= floor.xid, so
-- it stays above the floor until it is dealt with, whatever its seq. Both
-- parts only rise. An acknowledgement is dropped only once its debit is
-- under both, so that no read meets that debit again.
--
-- A read keeps the rows above the floor, walking the seq index from lo,
-- which usage_advance returns: the seq below which none of the open rows
-- lies. Under most floors no row is open, and lo is floor.seq; a late
-- commit lowers it to just below its row until that row is dealt with.
--
-- Rows written before this migration have no xid: every transaction that
-- wrote one had ended when the migration took the ledger's lock, so they
-- are bounded by seq alone.

ALTER TABLE {{schema}}.ledger ADD COLUMN xid xid8;
ALTER TABLE {{schema}}.ledger ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX ledger_debit_xid ON {{schema}}.ledger (xid) WHERE kind = 'debit';
CREATE INDEX ledger_refund_xid ON {{schema}}.ledger (xid) WHERE kind = 'refund';

-- usage_floor.xid and refund_xid complete the floors seq and refund_seq.
ALTER TABLE {{schema}}.usage_floor
    ADD COLUMN xid xid8 NOT NULL DEFAULT '0',
    ADD COLUMN refund_xid xid8 NOT NULL DEFAULT '0';

DROP FUNCTION {{schema}}.usage_advance(text, timestamptz, timestamptz);

-- usage_debit_open reports whether debit l is still to be dealt with by
-- p_consumer: not settled at p_cutoff, or not acknowledged.
CREATE FUNCTION {{schema}}.usage_debit_open(p_consumer text, p_cutoff timestamptz, l {{schema}}.ledger)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT l.at > p_cutoff OR NOT EXISTS (SELECT 1 FROM {{schema}}.usage_acks a
        WHERE a.consumer = p_consumer AND a.operation_id = l.operation_id)
$$;

-- usage_refund_open reports whether refund x is still to be dealt with by
-- p_consumer: not settled at p_cutoff, or its operation acknowledged with
-- another value than its net, or its debit not acknowledged but being
-- reported. (A debit neither acknowledged nor being reported will be
-- reported net of it.)
CREATE FUNCTION {{schema}}.usage_refund_open(p_consumer text, p_cutoff timestamptz, x {{schema}}.ledger)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT x.at > p_cutoff OR coalesce(
        (SELECT a.value <> {{schema}}.usage_net(x.operation_id) FROM {{schema}}.usage_acks a
          WHERE a.consumer = p_consumer AND a.operation_id = x.operation_id),
        EXISTS (SELECT 1 FROM {{schema}}.usage_claims c
                 WHERE c.consumer = p_consumer AND c.operation_id = x.operation_id))
$$;

-- usage_late returns the smallest xid and the smallest seq of the open
-- rows of kind p_kind (debit or refund) with seq <= p_seq and
-- xid >= p_xid: the rows of a floor (p_seq, p_xid) that committed late.
-- They are among the rows of recent transactions, which the xid index
-- finds; a plan made for the floor at hand sees that, a generic one
-- cannot tell them from a third of the ledger.
CREATE FUNCTION {{schema}}.usage_late(p_consumer text, p_cutoff timestamptz, p_kind text, p_seq bigint,
        p_xid xid8, OUT xid xid8, OUT seq bigint)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    IF p_kind = 'debit' THEN
        SELECT min(l.xid), min(l.seq) INTO xid, seq FROM {{schema}}.ledger l
         WHERE l.kind = 'debit' AND l.xid >= p_xid AND l.seq <= p_seq
           AND {{schema}}.usage_debit_open(p_consumer, p_cutoff, l);
    ELSE
        SELECT min(x.xid), min(x.seq) INTO xid, seq FROM {{schema}}.ledger x
         WHERE x.kind = 'refund' AND x.xid >= p_xid AND x.seq <= p_seq
           AND {{schema}}.usage_refund_open(p_consumer, p_cutoff, x);
    END IF;
END $$;

-- usage_advance moves a consumer's floors past the settled debits it
-- acknowledged and the settled refunds there is nothing more to do for,
-- keeping the invariant above, drops acknowledgements under the debit
-- floor made before p_keep, and returns the floors, (f, fx) for debits and
-- (rf, rfx) for refunds, and in lo and rlo the seq below which none of
-- their open rows lies.
CREATE FUNCTION {{schema}}.usage_advance(p_consumer text, p_cutoff timestamptz, p_keep timestamptz,
        OUT lo bigint, OUT f bigint, OUT fx xid8, OUT rlo bigint, OUT rf bigint, OUT rfx xid8)
LANGUAGE plpgsql AS $$
DECLARE
    h xid8;
    n bigint;
BEGIN
    INSERT INTO {{schema}}.usage_floor (consumer) VALUES (p_consumer) ON CONFLICT DO NOTHING;
    SELECT u.seq, u.xid, u.refund_seq, u.refund_xid INTO f, fx, rf, rfx
      FROM {{schema}}.usage_floor u WHERE u.consumer = p_consumer FOR UPDATE;
    -- Taken after the lock and before the reads below: no row they miss
    -- has an xid below h.
    h := pg_snapshot_xmin(pg_current_snapshot());
    SELECT min(l.seq) - 1 INTO n FROM {{schema}}.ledger l
     WHERE l.kind = 'debit' AND l.seq > f AND {{schema}}.usage_debit_open(p_consumer, p_cutoff, l);
    IF n IS NULL THEN
        SELECT coalesce(max(l.seq), f) INTO n FROM {{schema}}.ledger l WHERE l.kind = 'debit' AND l.seq > f;
    END IF;
    SELECT greatest(fx, least(h, u.xid)), least(n, u.seq - 1) INTO fx, lo
      FROM {{schema}}.usage_late(p_consumer, p_cutoff, 'debit', n, fx) u;
    f := n;
    SELECT min(x.seq) - 1 INTO n FROM {{schema}}.ledger x
     WHERE x.kind = 'refund' AND x.seq > rf AND {{schema}}.usage_refund_open(p_consumer, p_cutoff, x);
    IF n IS NULL THEN
        SELECT coalesce(max(x.seq), rf) INTO n FROM {{schema}}.ledger x WHERE x.kind = 'refund' AND x.seq > rf;
    END IF;
    SELECT greatest(rfx, least(h, u.xid)), least(n, u.seq - 1) INTO rfx, rlo
      FROM {{schema}}.usage_late(p_consumer, p_cutoff, 'refund', n, rfx) u;
    rf := n;
    UPDATE {{schema}}.usage_floor u SET seq = f, xid = fx, refund_seq = rf, refund_xid = rfx
     WHERE u.consumer = p_consumer AND (u.seq, u.xid, u.refund_seq, u.refund_xid) IS DISTINCT FROM (f, fx, rf, rfx);
    DELETE FROM {{schema}}.usage_claims c USING {{schema}}.usage_acks a, {{schema}}.ledger l
     WHERE c.consumer = p_consumer AND a.consumer = p_consumer AND a.operation_id = c.operation_id
       AND a.seq <= f AND a.acked_at < p_keep
       AND l.operation_id = a.operation_id AND l.kind = 'debit' AND (l.xid IS NULL OR l.xid < fx);
    DELETE FROM {{schema}}.usage_acks a USING {{schema}}.ledger l
     WHERE a.consumer = p_consumer AND a.seq <= f AND a.acked_at < p_keep
       AND l.operation_id = a.operation_id AND l.kind = 'debit' AND (l.xid IS NULL OR l.xid < fx);
END $$;

-- usage_pending claims, for p_lease under p_token, up to p_limit usages
-- that p_consumer has to report and no other reader holds: first the
-- corrections of reported operations refunded since, then settled debits
-- not acknowledged, oldest first, with their value net of refunds (and
-- the revision and time of the report a correction replaces). Debits
-- refunded in full before their report are acknowledged on the way. It
-- reads the rows above the floors that usage_advance returns, from lo.
CREATE OR REPLACE FUNCTION {{schema}}.usage_pending(p_consumer text, p_limit int, p_settle interval,
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
         WHERE x.kind = 'refund' AND x.seq > fl.rlo AND (x.seq > fl.rf OR x.xid >= fl.rfx)
           AND x.at <= t - p_settle
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
         WHERE l.kind = 'debit' AND l.seq > fl.lo AND (l.seq > fl.f OR l.xid >= fl.fx)
           AND l.at <= t - p_settle
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
