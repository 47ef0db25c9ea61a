-- privtrak ledger, migration 2: apply_deltas_from, the batch apply that also
-- checks where the batch's reading started (schemas/ledger/CONTRACT.md,
-- README.md "Exactly once" step 0).
--
-- A ledger reads each partition contiguously from the offset PostgreSQL
-- stores (seeked there at start and on every consumer-group assignment).
-- So the position a batch's reading of a partition started from can never
-- be above the stored next offset: it is either that offset, or below it
-- when another ledger advanced it meanwhile (a rebalance, a zombie, an
-- overlapping static list), whose records the offset check then skips.
-- A start above the stored offset means the records in between were never
-- applied and never will be by this reader (it was seeked from a stale or
-- foreign position, or the stored offset was rewound by hand): the batch is
-- refused, nothing changes, and the ledger re-reads from the stored offset.

CREATE FUNCTION privtrak.apply_deltas_from(
    p_topic text,
    p_partitions int[], p_from_offsets bigint[], p_next_offsets bigint[],
    d_partition int[], d_offset bigint[],
    d_user_id bytea[], d_info_hash bytea[],
    d_uploaded bigint[], d_downloaded bigint[],
    d_event smallint[],
    d_reported_at_ms bigint[], d_seeding boolean[], d_interval_s bigint[], d_reset boolean[],
    d_instance bigint[],
    d_sequence bigint[],
    d_client_ip bytea[],
    d_peer_id bytea[],
    d_upload_factor int[], d_download_factor int[],
    r_partition int[], r_offset bigint[], r_key bytea[], r_value bytea[], r_reason text[]
) RETURNS TABLE (applied bigint, duplicates bigint, skipped bigint)
LANGUAGE plpgsql
SET search_path = privtrak, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_gap record;
BEGIN
    IF p_topic IS NULL THEN
        RAISE EXCEPTION 'apply_deltas_from: p_topic is null';
    END IF;
    IF coalesce(cardinality(p_from_offsets), 0) <> coalesce(cardinality(p_partitions), 0) THEN
        RAISE EXCEPTION 'apply_deltas_from: p_partitions has % elements, p_from_offsets %',
            coalesce(cardinality(p_partitions), 0), coalesce(cardinality(p_from_offsets), 0);
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_partitions, p_from_offsets) AS u(partition, from_offset)
               WHERE u.partition IS NULL OR u.from_offset IS NULL) THEN
        RAISE EXCEPTION 'apply_deltas_from: a partition or its from offset is null';
    END IF;

    -- The same rows apply_deltas locks, locked first (partition order, as
    -- there), so the check below and the apply see one committed state.
    INSERT INTO partition_offsets AS po (topic, partition, next_offset, updated_at)
    SELECT DISTINCT p_topic, u.partition, 0::bigint, now()
    FROM unnest(p_partitions) AS u(partition)
    ORDER BY 2
    ON CONFLICT (topic, partition) DO NOTHING;

    PERFORM 1 FROM partition_offsets po
    WHERE po.topic = p_topic AND po.partition = ANY (p_partitions)
    ORDER BY po.partition
    FOR UPDATE;

    SELECT u.partition, u.from_offset, po.next_offset
      INTO v_gap
      FROM unnest(p_partitions, p_from_offsets) AS u(partition, from_offset)
      JOIN partition_offsets po ON po.topic = p_topic AND po.partition = u.partition
     WHERE u.from_offset > po.next_offset
     ORDER BY u.partition
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'PT409',
            MESSAGE = format('apply_deltas_from: %s partition %s: the batch was read from offset %s '
                             'but the stored next offset is %s; refused (records %s..%s would be skipped); '
                             're-read from the stored offset',
                             p_topic, v_gap.partition, v_gap.from_offset, v_gap.next_offset,
                             v_gap.next_offset, v_gap.from_offset - 1);
    END IF;

    RETURN QUERY SELECT a.applied, a.duplicates, a.skipped FROM apply_deltas(
        p_topic, p_partitions, p_next_offsets,
        d_partition, d_offset, d_user_id, d_info_hash, d_uploaded, d_downloaded, d_event,
        d_reported_at_ms, d_seeding, d_interval_s, d_reset, d_instance, d_sequence,
        d_client_ip, d_peer_id, d_upload_factor, d_download_factor,
        r_partition, r_offset, r_key, r_value, r_reason) AS a;
END;
$fn$;

COMMENT ON FUNCTION privtrak.apply_deltas_from IS
    'apply_deltas after refusing a batch read from above a partition''s stored next offset (SQLSTATE PT409): see schemas/ledger/CONTRACT.md';
