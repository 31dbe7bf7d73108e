-- CGM readings (Dexcom G6 256, G7 399, Libre 2 372, Libre 3 480): one row per measurement.
-- The time of a reading is the EGV timestamp in the payload (pump-clock seconds since
-- 2008-01-01), not the time the pump logged it: backfilled readings are logged hours later.
-- High / low readings (beyond the sensor's 40-400 mg/dL range) carry 401 / 39; readings the
-- sensor marks as not to be shown carry NULL with status 'unavailable'; a reading marked ok whose
-- value the decoder refused (no value, or outside 40-400 mg/dL: see layouts.CGM_MG_DL) carries
-- NULL with status 'invalid', so that it never counts as a reading (as does one whose measured time
-- cannot be its time, below). The instant uses the UTC
-- offset of the record that logged the reading (see times.py).
WITH e AS (
    SELECT
        *,
        CASE WHEN egv_timestamp_seconds > 0
             THEN TIMESTAMP '2008-01-01 00:00:00' + to_seconds(egv_timestamp_seconds) END AS egv_pump_time
    FROM decoded
    WHERE event_id IN (256, 399, 372, 480) AND time_reliable
),
-- A reading is measured before the pump logs it, by at most a day of backfill (Dexcom G7 fills in
-- up to 24 hours, tandem-source-api.md's CGM notes: "sometimes hours later"): an EGV time more
-- than 25 hours before the record or more than 10 minutes after it is not the reading's time; the
-- reading is 'invalid' (NULL glucose, the time of the record) and counted in the log.
m AS (
    SELECT
        *,
        egv_pump_time IS NULL OR egv_pump_time BETWEEN pump_time - INTERVAL 25 HOUR
                                                  AND pump_time + INTERVAL 10 MINUTE AS measured_in_time
    FROM e
),
r AS (
    SELECT
        pump_serial,
        seq_num,
        CASE event_id WHEN 256 THEN 'dexcom_g6' WHEN 399 THEN 'dexcom_g7'
                      WHEN 372 THEN 'libre2' WHEN 480 THEN 'libre3' END AS sensor,
        CASE WHEN measured_in_time THEN coalesce(egv_pump_time, pump_time) ELSE pump_time END AS measured_pump_time,
        pump_time AS logged_pump_time,
        utc_offset_seconds,
        CASE WHEN NOT measured_in_time THEN 'invalid'
             WHEN glucose_value_status IN ('high', 'low') THEN glucose_value_status
             WHEN glucose_value_status = 'ok' AND glucose_display_value_mg_dl IS NOT NULL THEN 'ok'
             WHEN glucose_value_status = 'ok' THEN 'invalid'
             ELSE 'unavailable' END AS glucose_status,
        glucose_display_value_mg_dl,
        rate_mg_dl_per_min,
        coalesce(list_contains(cgm_data_type, 'backfill'), false) AS backfill
    FROM m
),
-- A measurement logged more than once (same pump, sensor and measured time) is kept once, from the
-- record with the lowest sequence number. Only the few repeated measurements are ranked; the rest
-- pass through (the same rows as ranking every measurement, without a hash table of all of them).
repeated AS (
    SELECT pump_serial, sensor, measured_pump_time FROM r GROUP BY ALL HAVING count(*) > 1
),
kept AS (
    SELECT * FROM r ANTI JOIN repeated USING (pump_serial, sensor, measured_pump_time)
    UNION ALL
    SELECT * FROM (SELECT * FROM r SEMI JOIN repeated USING (pump_serial, sensor, measured_pump_time))
    QUALIFY row_number() OVER (PARTITION BY pump_serial, sensor, measured_pump_time ORDER BY seq_num) = 1
)
SELECT
    timezone('UTC', measured_pump_time - to_seconds(utc_offset_seconds)) AS timestamp,
    measured_pump_time AS pump_time,
    CAST(CASE glucose_status WHEN 'ok' THEN glucose_display_value_mg_dl
                             WHEN 'high' THEN 401 WHEN 'low' THEN 39 END AS INTEGER) AS glucose_mg_dl,
    glucose_status,
    rate_mg_dl_per_min AS trend_mg_dl_per_min,
    backfill,
    sensor,
    pump_serial,
    seq_num,
    logged_pump_time
FROM kept
ORDER BY timestamp, pump_serial, seq_num
