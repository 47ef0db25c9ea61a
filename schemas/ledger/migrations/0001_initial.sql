-- privtrak ledger: the site's numbers from the tracker's deltas, exactly once.
-- Applied by the ledger's migration runner (schemas/ledger/CONTRACT.md) inside
-- one transaction, after CREATE SCHEMA privtrak; no BEGIN/COMMIT here.
-- Rules and example queries: schemas/ledger/README.md.

-- Settings ------------------------------------------------------------------

CREATE TABLE privtrak.settings (
    name        text PRIMARY KEY,
    value       bigint NOT NULL,
    description text
);

INSERT INTO privtrak.settings (name, value, description) VALUES
    ('peer_lifetime_s', 3600,
     'a gap longer than this between two announces of an entry counts as neither seeding nor leeching'),
    ('hnr_min_seed_s', 259200,
     'a snatch seeded less than this (seconds) is a hit-and-run candidate'),
    ('hnr_grace_s', 1209600,
     'a snatch becomes a hit-and-run candidate this long (seconds) after its last announce'),
    ('suspicious_window_s', 3600,
     'width of the torrent_windows buckets (seconds) used by suspicious_uploads'),
    ('max_upload_rate_bps', 104857600,
     'a delta uploading faster than this (bytes per second over its interval) raises an upload_rate cheat flag'),
    ('audit_enabled', 0,
     '1: apply_deltas also stores every applied delta in privtrak.deltas (daily partitions)'),
    ('audit_retention_days', 30,
     'drop_expired_delta_partitions() drops audit partitions older than this many days')
ON CONFLICT (name) DO NOTHING;

-- Kafka position and origin marks ------------------------------------------

CREATE TABLE privtrak.partition_offsets (
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

CREATE TABLE privtrak.origin_marks (
    topic         text   NOT NULL,
    partition     int    NOT NULL,
    instance      bigint NOT NULL,
    last_sequence bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, instance)
);

CREATE TABLE privtrak.rejected_records (
    topic        text   NOT NULL,
    partition    int    NOT NULL,
    kafka_offset bigint NOT NULL,
    key          bytea,
    value        bytea,
    reason       text   NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, kafka_offset)
);

-- Totals --------------------------------------------------------------------

CREATE TABLE privtrak.user_totals (
    user_id             bytea PRIMARY KEY,
    uploaded            bigint NOT NULL DEFAULT 0,
    downloaded          bigint NOT NULL DEFAULT 0,
    credited_uploaded   bigint NOT NULL DEFAULT 0,
    credited_downloaded bigint NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE privtrak.user_torrents (
    user_id             bytea  NOT NULL,
    info_hash           bytea  NOT NULL,
    uploaded            bigint NOT NULL DEFAULT 0,
    downloaded          bigint NOT NULL DEFAULT 0,
    credited_uploaded   bigint NOT NULL DEFAULT 0,
    credited_downloaded bigint NOT NULL DEFAULT 0,
    seed_seconds        bigint NOT NULL DEFAULT 0,
    leech_seconds       bigint NOT NULL DEFAULT 0,
    announces           bigint NOT NULL DEFAULT 0,
    completed_at        timestamptz,
    first_announce_at   timestamptz,
    last_announce_at    timestamptz,
    active              boolean NOT NULL DEFAULT true,
    PRIMARY KEY (user_id, info_hash)
);
CREATE INDEX user_torrents_info_hash ON privtrak.user_torrents (info_hash);
-- hit_and_run_candidates scans only snatches that are not seeded enough.
CREATE INDEX user_torrents_snatched ON privtrak.user_torrents (last_announce_at)
    WHERE completed_at IS NOT NULL;

CREATE TABLE privtrak.torrent_totals (
    info_hash        bytea PRIMARY KEY,
    uploaded         bigint NOT NULL DEFAULT 0,
    downloaded       bigint NOT NULL DEFAULT 0,
    snatches         bigint NOT NULL DEFAULT 0,
    last_announce_at timestamptz
);

-- One row per open entry (user, torrent, peer id): whether its last announce
-- was seeding. Seed/leech time is counted between two announces of an entry.
CREATE TABLE privtrak.peer_sessions (
    user_id   bytea   NOT NULL,
    info_hash bytea   NOT NULL,
    peer_id   bytea   NOT NULL DEFAULT ''::bytea,   -- empty: the deltas carry none
    seeding   boolean NOT NULL,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, info_hash, peer_id)
);

-- Cheating signals ----------------------------------------------------------

CREATE TABLE privtrak.cheat_flags (
    id           bigserial PRIMARY KEY,
    user_id      bytea NOT NULL,
    info_hash    bytea NOT NULL,
    kind         text  NOT NULL,            -- 'upload_rate'
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    flagged_at   timestamptz NOT NULL DEFAULT now(),
    reported_at  timestamptz,               -- of the delta that raised it
    topic        text,
    partition    int,
    kafka_offset bigint,
    instance     bigint,
    sequence     bigint
);
CREATE INDEX cheat_flags_user ON privtrak.cheat_flags (user_id, flagged_at);

-- Per torrent, per window of suspicious_window_s seconds, per user: raw bytes.
CREATE TABLE privtrak.torrent_windows (
    info_hash    bytea NOT NULL,
    window_start timestamptz NOT NULL,
    user_id      bytea NOT NULL,
    uploaded     bigint NOT NULL DEFAULT 0,
    downloaded   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (info_hash, window_start, user_id)
);

-- Optional audit log of applied deltas (settings.audit_enabled = 1), one
-- partition per UTC day, created on demand by apply_deltas.
CREATE TABLE privtrak.deltas (
    reported_at       timestamptz NOT NULL,
    topic             text   NOT NULL,
    partition         int    NOT NULL,
    kafka_offset      bigint NOT NULL,
    user_id           bytea  NOT NULL,
    info_hash         bytea  NOT NULL,
    uploaded          bigint NOT NULL,
    downloaded        bigint NOT NULL,
    event             smallint NOT NULL,
    seeding           boolean NOT NULL,
    interval_s        bigint NOT NULL,
    reset             boolean NOT NULL,
    instance          bigint NOT NULL,
    sequence          bigint NOT NULL,
    client_ip         bytea,
    peer_id           bytea,
    upload_factor     int NOT NULL,
    download_factor   int NOT NULL,
    applied_at        timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (reported_at);
CREATE INDEX deltas_user ON privtrak.deltas (user_id, reported_at);

-- Views ---------------------------------------------------------------------

CREATE VIEW privtrak.user_ratios AS
SELECT user_id, uploaded, downloaded, credited_uploaded, credited_downloaded,
       credited_uploaded::numeric / nullif(credited_downloaded, 0) AS ratio,
       updated_at
FROM privtrak.user_totals;

-- A snatch (completed_at set) seeded less than hnr_min_seed_s, no longer
-- announcing, last seen more than hnr_grace_s ago. "No longer announcing":
-- not active, or silent for longer than peer_lifetime_s (an entry whose
-- stop/expiry never reached us is gone all the same).
CREATE VIEW privtrak.hit_and_run_candidates AS
WITH s AS (
    SELECT
        coalesce((SELECT value FROM privtrak.settings WHERE name = 'hnr_min_seed_s'), 259200) AS min_seed_s,
        coalesce((SELECT value FROM privtrak.settings WHERE name = 'hnr_grace_s'), 1209600) AS grace_s,
        coalesce((SELECT value FROM privtrak.settings WHERE name = 'peer_lifetime_s'), 3600) AS lifetime_s
)
SELECT ut.user_id, ut.info_hash, ut.completed_at, ut.seed_seconds,
       s.min_seed_s AS required_seed_seconds,
       s.min_seed_s - ut.seed_seconds AS missing_seed_seconds,
       ut.last_announce_at, ut.active, ut.uploaded, ut.downloaded
FROM privtrak.user_torrents ut CROSS JOIN s
WHERE ut.completed_at IS NOT NULL
  AND ut.seed_seconds < s.min_seed_s
  AND ut.last_announce_at < now() - make_interval(secs => s.grace_s)
  AND (NOT ut.active OR ut.last_announce_at < now() - make_interval(secs => s.lifetime_s));

-- (user, torrent, window) where the user uploaded more than every OTHER user
-- downloaded on that torrent in that window: bytes nobody received.
CREATE VIEW privtrak.suspicious_uploads AS
SELECT w.user_id, w.info_hash, w.window_start,
       w.window_start + make_interval(secs => coalesce(
           (SELECT value FROM privtrak.settings WHERE name = 'suspicious_window_s'), 3600)) AS window_end,
       w.uploaded,
       w.others_downloaded,
       w.uploaded - w.others_downloaded AS excess
FROM (
    SELECT tw.*, sum(tw.downloaded) OVER (PARTITION BY tw.info_hash, tw.window_start) - tw.downloaded
               AS others_downloaded
    FROM privtrak.torrent_windows tw
) w
WHERE w.uploaded > w.others_downloaded;

-- apply_deltas ----------------------------------------------------------------

CREATE FUNCTION privtrak.apply_deltas(
    p_topic text,
    p_partitions int[], p_next_offsets bigint[],
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
    n_p int := coalesce(cardinality(p_partitions), 0);
    n_d int := coalesce(cardinality(d_partition), 0);
    n_r int := coalesce(cardinality(r_partition), 0);
    v_lifetime bigint;
    v_window bigint;
    v_max_rate bigint;
    v_audit bigint;
    v_applied bigint := 0;
    v_dups bigint := 0;
    v_skipped bigint := 0;
    v_day date;
BEGIN
    IF p_topic IS NULL THEN
        RAISE EXCEPTION 'apply_deltas: p_topic is null';
    END IF;
    IF coalesce(cardinality(p_next_offsets), 0) <> n_p THEN
        RAISE EXCEPTION 'apply_deltas: p_partitions has % elements, p_next_offsets %',
            n_p, coalesce(cardinality(p_next_offsets), 0);
    END IF;
    IF n_d <> ANY (ARRAY[
            coalesce(cardinality(d_offset), 0), coalesce(cardinality(d_user_id), 0),
            coalesce(cardinality(d_info_hash), 0), coalesce(cardinality(d_uploaded), 0),
            coalesce(cardinality(d_downloaded), 0), coalesce(cardinality(d_event), 0),
            coalesce(cardinality(d_reported_at_ms), 0), coalesce(cardinality(d_seeding), 0),
            coalesce(cardinality(d_interval_s), 0), coalesce(cardinality(d_reset), 0),
            coalesce(cardinality(d_instance), 0), coalesce(cardinality(d_sequence), 0),
            coalesce(cardinality(d_client_ip), 0), coalesce(cardinality(d_peer_id), 0),
            coalesce(cardinality(d_upload_factor), 0), coalesce(cardinality(d_download_factor), 0)]) THEN
        RAISE EXCEPTION 'apply_deltas: the d_* arrays differ in length (d_partition has %)', n_d;
    END IF;
    IF n_r <> coalesce(cardinality(r_offset), 0) OR n_r <> coalesce(cardinality(r_key), 0)
       OR n_r <> coalesce(cardinality(r_value), 0) OR n_r <> coalesce(cardinality(r_reason), 0) THEN
        RAISE EXCEPTION 'apply_deltas: the r_* arrays differ in length (r_partition has %)', n_r;
    END IF;

    SELECT coalesce(max(value) FILTER (WHERE name = 'peer_lifetime_s'), 3600),
           coalesce(max(value) FILTER (WHERE name = 'suspicious_window_s'), 3600),
           coalesce(max(value) FILTER (WHERE name = 'max_upload_rate_bps'), 104857600),
           coalesce(max(value) FILTER (WHERE name = 'audit_enabled'), 0)
      INTO v_lifetime, v_window, v_max_rate, v_audit
      FROM settings;
    IF v_window <= 0 THEN
        v_window := 3600;
    END IF;

    -- 1. Lock this batch's partitions (sorted: two ledgers never deadlock).
    DROP TABLE IF EXISTS pg_temp.ledger_offsets;
    CREATE TEMP TABLE ledger_offsets ON COMMIT DROP AS
    SELECT DISTINCT x.partition
    FROM (SELECT unnest(p_partitions) AS partition
          UNION ALL SELECT unnest(d_partition)
          UNION ALL SELECT unnest(r_partition)) x
    WHERE x.partition IS NOT NULL;

    INSERT INTO partition_offsets AS po (topic, partition, next_offset, updated_at)
    SELECT p_topic, lo.partition, 0, now() FROM ledger_offsets lo ORDER BY lo.partition
    ON CONFLICT (topic, partition) DO NOTHING;

    DROP TABLE IF EXISTS pg_temp.ledger_locked;
    CREATE TEMP TABLE ledger_locked ON COMMIT DROP AS
    SELECT po.partition, po.next_offset
    FROM partition_offsets po
    WHERE po.topic = p_topic AND po.partition IN (SELECT lo.partition FROM ledger_offsets lo)
    ORDER BY po.partition
    FOR UPDATE;

    -- 2./3. The batch, each delta classified: skipped (offset already
    -- applied), duplicate (origin sequence already seen), or applied.
    DROP TABLE IF EXISTS pg_temp.ledger_batch;
    CREATE TEMP TABLE ledger_batch ON COMMIT DROP AS
    SELECT u.ord,
           u.partition,
           u.kafka_offset,
           u.user_id,
           u.info_hash,
           coalesce(u.uploaded, 0) AS uploaded,
           coalesce(u.downloaded, 0) AS downloaded,
           coalesce(u.event, 0)::smallint AS event,
           coalesce(u.reported_at_ms, 0) AS reported_at_ms,
           coalesce(u.seeding, false) AS seeding,
           coalesce(u.interval_s, 0) AS interval_s,
           coalesce(u.reset, false) AS reset,
           u.instance,
           u.sequence,
           nullif(u.client_ip, ''::bytea) AS client_ip,
           coalesce(u.peer_id, ''::bytea) AS peer_id,
           CASE WHEN u.upload_factor IS NULL OR u.upload_factor = -1 THEN 100 ELSE u.upload_factor END AS upload_factor,
           CASE WHEN u.download_factor IS NULL OR u.download_factor = -1 THEN 100 ELSE u.download_factor END AS download_factor,
           CASE WHEN u.kafka_offset < ll.next_offset THEN 's' ELSE 'a' END::char AS status
    FROM unnest(d_partition, d_offset, d_user_id, d_info_hash, d_uploaded, d_downloaded,
                d_event, d_reported_at_ms, d_seeding, d_interval_s, d_reset, d_instance,
                d_sequence, d_client_ip, d_peer_id, d_upload_factor, d_download_factor)
         WITH ORDINALITY AS u(partition, kafka_offset, user_id, info_hash, uploaded, downloaded,
                              event, reported_at_ms, seeding, interval_s, reset, instance,
                              sequence, client_ip, peer_id, upload_factor, download_factor, ord)
    JOIN ledger_locked ll ON ll.partition = u.partition;

    IF EXISTS (SELECT 1 FROM ledger_batch b
               WHERE b.kafka_offset IS NULL OR b.user_id IS NULL OR b.info_hash IS NULL
                  OR b.instance IS NULL OR b.sequence IS NULL) THEN
        RAISE EXCEPTION 'apply_deltas: a delta has a null offset, user_id, info_hash, instance or sequence';
    END IF;
    IF n_d > 0 AND (SELECT count(*) FROM ledger_batch) <> n_d THEN
        RAISE EXCEPTION 'apply_deltas: a delta has a null partition';
    END IF;

    IF n_d >= 1000 THEN
        ANALYZE ledger_batch;
    END IF;

    -- A delta is a duplicate when its sequence is <= the highest sequence
    -- already seen from its (partition, instance): the stored mark or an
    -- earlier delta of this batch (offset order, then array order).
    UPDATE ledger_batch b SET status = 'd'
    FROM (
        SELECT x.ord,
               max(x.sequence) OVER (PARTITION BY x.partition, x.instance
                                     ORDER BY x.kafka_offset, x.ord
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max,
               om.last_sequence,
               x.sequence
        FROM ledger_batch x
        LEFT JOIN origin_marks om
               ON om.topic = p_topic AND om.partition = x.partition AND om.instance = x.instance
        WHERE x.status = 'a'
    ) w
    WHERE b.ord = w.ord
      AND (w.sequence <= w.prev_max OR w.sequence <= w.last_sequence);

    SELECT count(*) FILTER (WHERE b.status = 'a'),
           count(*) FILTER (WHERE b.status = 'd'),
           count(*) FILTER (WHERE b.status = 's')
      INTO v_applied, v_dups, v_skipped
      FROM ledger_batch b;

    IF v_applied > 0 THEN
        INSERT INTO origin_marks AS om (topic, partition, instance, last_sequence, updated_at)
        SELECT p_topic, b.partition, b.instance, max(b.sequence), now()
        FROM ledger_batch b WHERE b.status = 'a'
        GROUP BY b.partition, b.instance
        ORDER BY b.partition, b.instance
        ON CONFLICT (topic, partition, instance) DO UPDATE
            SET last_sequence = greatest(om.last_sequence, excluded.last_sequence),
                updated_at = excluded.updated_at;

        -- 4. The applied deltas with credit, time and seed/leech seconds.
        DROP TABLE IF EXISTS pg_temp.ledger_applied;
        CREATE TEMP TABLE ledger_applied ON COMMIT DROP AS
        SELECT b.*,
               div(b.uploaded::numeric * b.upload_factor, 100)::bigint AS credited_uploaded,
               div(b.downloaded::numeric * b.download_factor, 100)::bigint AS credited_downloaded,
               to_timestamp(b.reported_at_ms / 1000.0) AS reported_at,
               to_timestamp(((b.reported_at_ms / 1000) / v_window) * v_window) AS window_start,
               CASE WHEN s.prev_seeding AND b.seeding AND b.interval_s <= v_lifetime
                    THEN b.interval_s ELSE 0 END AS seed_add,
               CASE WHEN s.prev_seeding = false AND NOT b.seeding AND b.interval_s <= v_lifetime
                    THEN b.interval_s ELSE 0 END AS leech_add,
               s.is_last_of_peer,
               s.is_last_of_entry
        FROM ledger_batch b
        JOIN (
            SELECT x.ord,
                   CASE WHEN x.rn = 1 THEN x.session_seeding
                        WHEN x.prev_event IN (3, 4) THEN NULL   -- closed in this batch
                        ELSE x.prev_seeding END AS prev_seeding,
                   x.rn_desc = 1 AS is_last_of_peer,
                   x.rn_entry_desc = 1 AS is_last_of_entry
            FROM (
                SELECT y.ord, y.seeding, ps.seeding AS session_seeding,
                       row_number() OVER wp AS rn,
                       lag(y.seeding) OVER wp AS prev_seeding,
                       lag(y.event) OVER wp AS prev_event,
                       row_number() OVER (PARTITION BY y.user_id, y.info_hash, y.peer_id
                                          ORDER BY y.reported_at_ms DESC, y.instance DESC, y.sequence DESC) AS rn_desc,
                       row_number() OVER (PARTITION BY y.user_id, y.info_hash
                                          ORDER BY y.reported_at_ms DESC, y.instance DESC, y.sequence DESC) AS rn_entry_desc
                FROM ledger_batch y
                LEFT JOIN peer_sessions ps
                       ON ps.user_id = y.user_id AND ps.info_hash = y.info_hash AND ps.peer_id = y.peer_id
                WHERE y.status = 'a'
                WINDOW wp AS (PARTITION BY y.user_id, y.info_hash, y.peer_id
                              ORDER BY y.reported_at_ms, y.instance, y.sequence)
            ) x
        ) s ON s.ord = b.ord
        WHERE b.status = 'a';

        IF v_applied >= 1000 THEN
            ANALYZE ledger_applied;
        END IF;

        -- Rows are written in key order so concurrent ledgers lock them in
        -- the same order (no deadlock between two partitions' batches).
        INSERT INTO user_totals AS t (user_id, uploaded, downloaded, credited_uploaded,
                                      credited_downloaded, updated_at)
        SELECT a.user_id, sum(a.uploaded), sum(a.downloaded), sum(a.credited_uploaded),
               sum(a.credited_downloaded), now()
        FROM ledger_applied a
        GROUP BY a.user_id
        ORDER BY a.user_id
        ON CONFLICT (user_id) DO UPDATE SET
            uploaded = t.uploaded + excluded.uploaded,
            downloaded = t.downloaded + excluded.downloaded,
            credited_uploaded = t.credited_uploaded + excluded.credited_uploaded,
            credited_downloaded = t.credited_downloaded + excluded.credited_downloaded,
            updated_at = excluded.updated_at;

        -- Peer sessions: the last delta of each entry opens/updates it, or
        -- closes it (stopped, expired). A session newer than the batch's
        -- last delta (late delivery) is kept.
        DELETE FROM peer_sessions ps
        USING ledger_applied a
        WHERE a.is_last_of_peer AND a.event IN (3, 4)
          AND ps.user_id = a.user_id AND ps.info_hash = a.info_hash AND ps.peer_id = a.peer_id
          AND ps.last_at <= a.reported_at;

        INSERT INTO peer_sessions AS ps (user_id, info_hash, peer_id, seeding, last_at)
        SELECT a.user_id, a.info_hash, a.peer_id, a.seeding, a.reported_at
        FROM ledger_applied a
        WHERE a.is_last_of_peer AND a.event NOT IN (3, 4)
        ORDER BY a.user_id, a.info_hash, a.peer_id
        ON CONFLICT (user_id, info_hash, peer_id) DO UPDATE SET
            seeding = excluded.seeding,
            last_at = excluded.last_at
        WHERE ps.last_at <= excluded.last_at;

        INSERT INTO user_torrents AS t (user_id, info_hash, uploaded, downloaded, credited_uploaded,
                                        credited_downloaded, seed_seconds, leech_seconds, announces,
                                        completed_at, first_announce_at, last_announce_at, active)
        SELECT a.user_id, a.info_hash, sum(a.uploaded), sum(a.downloaded), sum(a.credited_uploaded),
               sum(a.credited_downloaded), sum(a.seed_add), sum(a.leech_add), count(*),
               min(a.reported_at) FILTER (WHERE a.event = 2),
               min(a.reported_at), max(a.reported_at),
               -- active: the entry's latest delta is not a stop/expiry, or
               -- another peer id of this user on this torrent is still open.
               bool_or(a.is_last_of_entry AND a.event NOT IN (3, 4))
               OR EXISTS (SELECT 1 FROM peer_sessions ps
                          WHERE ps.user_id = a.user_id AND ps.info_hash = a.info_hash)
        FROM ledger_applied a
        GROUP BY a.user_id, a.info_hash
        ORDER BY a.user_id, a.info_hash
        ON CONFLICT (user_id, info_hash) DO UPDATE SET
            uploaded = t.uploaded + excluded.uploaded,
            downloaded = t.downloaded + excluded.downloaded,
            credited_uploaded = t.credited_uploaded + excluded.credited_uploaded,
            credited_downloaded = t.credited_downloaded + excluded.credited_downloaded,
            seed_seconds = t.seed_seconds + excluded.seed_seconds,
            leech_seconds = t.leech_seconds + excluded.leech_seconds,
            announces = t.announces + excluded.announces,
            completed_at = coalesce(t.completed_at, excluded.completed_at),
            first_announce_at = least(t.first_announce_at, excluded.first_announce_at),
            last_announce_at = greatest(t.last_announce_at, excluded.last_announce_at),
            active = CASE WHEN t.last_announce_at IS NULL
                            OR excluded.last_announce_at >= t.last_announce_at
                          THEN excluded.active ELSE t.active END;

        INSERT INTO torrent_totals AS t (info_hash, uploaded, downloaded, snatches, last_announce_at)
        SELECT a.info_hash, sum(a.uploaded), sum(a.downloaded), count(*) FILTER (WHERE a.event = 2),
               max(a.reported_at)
        FROM ledger_applied a
        GROUP BY a.info_hash
        ORDER BY a.info_hash
        ON CONFLICT (info_hash) DO UPDATE SET
            uploaded = t.uploaded + excluded.uploaded,
            downloaded = t.downloaded + excluded.downloaded,
            snatches = t.snatches + excluded.snatches,
            last_announce_at = greatest(t.last_announce_at, excluded.last_announce_at);

        INSERT INTO torrent_windows AS t (info_hash, window_start, user_id, uploaded, downloaded)
        SELECT a.info_hash, a.window_start, a.user_id, sum(a.uploaded), sum(a.downloaded)
        FROM ledger_applied a
        WHERE a.uploaded <> 0 OR a.downloaded <> 0
        GROUP BY a.info_hash, a.window_start, a.user_id
        ORDER BY a.info_hash, a.window_start, a.user_id
        ON CONFLICT (info_hash, window_start, user_id) DO UPDATE SET
            uploaded = t.uploaded + excluded.uploaded,
            downloaded = t.downloaded + excluded.downloaded;

        INSERT INTO cheat_flags (user_id, info_hash, kind, detail, reported_at,
                                 topic, partition, kafka_offset, instance, sequence)
        SELECT a.user_id, a.info_hash, 'upload_rate',
               jsonb_build_object(
                   'uploaded', a.uploaded,
                   'interval_s', a.interval_s,
                   'rate_bps', round(a.uploaded::numeric / a.interval_s),
                   'max_upload_rate_bps', v_max_rate,
                   'seeding', a.seeding,
                   'upload_factor', a.upload_factor,
                   'peer_id', encode(a.peer_id, 'hex'),
                   'client_ip', encode(a.client_ip, 'hex')),
               a.reported_at, p_topic, a.partition, a.kafka_offset, a.instance, a.sequence
        FROM ledger_applied a
        WHERE a.interval_s > 0 AND a.uploaded::numeric / a.interval_s > v_max_rate
        ORDER BY a.partition, a.kafka_offset, a.ord;

        -- Optional audit log, one partition per UTC day (created under an
        -- advisory lock so two ledgers do not race on the DDL).
        IF v_audit = 1 THEN
            FOR v_day IN
                SELECT DISTINCT (a.reported_at AT TIME ZONE 'UTC')::date FROM ledger_applied a
            LOOP
                IF to_regclass(format('privtrak.deltas_%s', to_char(v_day, 'YYYYMMDD'))) IS NULL THEN
                    PERFORM pg_advisory_xact_lock(7368827);
                    EXECUTE format(
                        'CREATE TABLE IF NOT EXISTS privtrak.%I PARTITION OF privtrak.deltas '
                        'FOR VALUES FROM (%L) TO (%L)',
                        'deltas_' || to_char(v_day, 'YYYYMMDD'),
                        to_char(v_day, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(v_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
                END IF;
            END LOOP;
            INSERT INTO deltas (reported_at, topic, partition, kafka_offset, user_id, info_hash,
                                uploaded, downloaded, event, seeding, interval_s, reset, instance,
                                sequence, client_ip, peer_id, upload_factor, download_factor)
            SELECT a.reported_at, p_topic, a.partition, a.kafka_offset, a.user_id, a.info_hash,
                   a.uploaded, a.downloaded, a.event, a.seeding, a.interval_s, a.reset, a.instance,
                   a.sequence, a.client_ip, nullif(a.peer_id, ''::bytea), a.upload_factor,
                   a.download_factor
            FROM ledger_applied a;
        END IF;
    END IF;

    -- 5. Rejected records (those of offsets already applied are skipped).
    IF n_r > 0 THEN
        WITH r AS (
            SELECT u.partition, u.kafka_offset, u.key, u.value, u.reason,
                   u.kafka_offset < ll.next_offset AS is_skipped
            FROM unnest(r_partition, r_offset, r_key, r_value, r_reason)
                 AS u(partition, kafka_offset, key, value, reason)
            JOIN ledger_locked ll ON ll.partition = u.partition
        ), ins AS (
            INSERT INTO rejected_records (topic, partition, kafka_offset, key, value, reason, rejected_at)
            SELECT p_topic, r.partition, r.kafka_offset, r.key, r.value, coalesce(r.reason, ''), now()
            FROM r WHERE NOT r.is_skipped
            ORDER BY r.partition, r.kafka_offset
            ON CONFLICT (topic, partition, kafka_offset) DO NOTHING
        )
        SELECT v_skipped + count(*) FILTER (WHERE r.is_skipped) INTO v_skipped FROM r;
    END IF;

    -- 6. The partitions' next offsets never move back.
    UPDATE partition_offsets po
    SET next_offset = greatest(po.next_offset, p.next_offset),
        updated_at = now()
    FROM (SELECT u.partition, max(u.next_offset) AS next_offset
          FROM unnest(p_partitions, p_next_offsets) AS u(partition, next_offset)
          WHERE u.partition IS NOT NULL AND u.next_offset IS NOT NULL
          GROUP BY u.partition) p
    WHERE po.topic = p_topic AND po.partition = p.partition;

    RETURN QUERY SELECT v_applied, v_dups, v_skipped;
END;
$fn$;

COMMENT ON FUNCTION privtrak.apply_deltas IS
    'One Kafka batch, applied exactly once: see schemas/ledger/CONTRACT.md and README.md';

-- Drops audit partitions whose whole day is older than audit_retention_days.
CREATE FUNCTION privtrak.drop_expired_delta_partitions() RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = privtrak, pg_temp
AS $fn$
DECLARE
    v_days bigint;
    v_part record;
BEGIN
    SELECT coalesce(max(value), 30) INTO v_days FROM settings WHERE name = 'audit_retention_days';
    FOR v_part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'privtrak.deltas'::regclass
          AND n.nspname = 'privtrak'
          AND c.relname ~ '^deltas_[0-9]{8}$'
        ORDER BY c.relname
    LOOP
        -- The partition covers [day, day + 1): expired when day + 1 is
        -- more than v_days days ago.
        IF (to_date(substr(v_part.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
               <= now() - make_interval(days => v_days::int) THEN
            EXECUTE format('DROP TABLE privtrak.%I', v_part.relname);
            RETURN NEXT v_part.relname;
        END IF;
    END LOOP;
END;
$fn$;
