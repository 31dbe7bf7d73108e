-- Daily summary: one row per pump-calendar day (the date of pump_time) and pump, built from the
-- cgm_readings, basal_deliveries and bolus_deliveries tables (each computed from `decoded`, with
-- only reliable times, by its own SQL file; see tables.build_table).
-- CGM: readings with a glucose value (high and low readings count with 401 and 39 mg/dL);
--   cgm_active_percent = min(100, readings x 5 min / 1440 min x 100); SD is the sample standard
--   deviation (n - 1); CV = 100 x SD / mean; band percents count readings: g < 54, 54 <= g < 70,
--   70 <= g <= 180, 180 < g <= 250, g > 250 (for whole mg/dL: <54, 54-69, 70-180, 181-250, >250).
-- Basal: each basal record's commanded rate (U/h) times the time until the next basal record of
--   the same pump in time (the true instants; records logged at the same instant, or overlapping
--   after an unrecorded clock step, count each instant once), at most 15 minutes; the last record
--   of a history counts 5 minutes (the pump's record interval). A record counts for the day of its own
--   pump_time, including the part of its interval after midnight.
-- Bolus: delivered units of the boluses requested that day (bolus_deliveries); carbs: grams entered
--   in those bolus requests.
-- timestamp is the instant of the day's midnight, with the UTC offset of the day's first row.
-- Floating-point sums and the SD aggregate in a fixed order, so every run gives the same bits.
WITH cgm AS (
    SELECT pump_serial, CAST(pump_time AS DATE) AS day, pump_time, timestamp, glucose_mg_dl AS g
    FROM cgm_readings
),
basal AS (
    SELECT
        pump_serial,
        CAST(pump_time AS DATE) AS day,
        pump_time,
        timestamp,
        seq_num,
        commanded_rate_units_per_hour * greatest(0, least(900, coalesce(
            epoch(lead(timestamp) OVER (PARTITION BY pump_serial ORDER BY timestamp, seq_num)) - epoch(timestamp),
            300))) / 3600.0 AS units
    FROM basal_deliveries
),
bolus AS (
    SELECT pump_serial, CAST(pump_time AS DATE) AS day, pump_time, timestamp, seq_num, delivered_units, carbs_g
    FROM bolus_deliveries
),
days AS (
    SELECT
        pump_serial,
        day,
        -- pump clock minus UTC at the day's first row
        arg_min(pump_time - timezone('UTC', timestamp), pump_time) AS utc_offset
    FROM (
        SELECT pump_serial, day, pump_time, timestamp FROM cgm
        UNION ALL SELECT pump_serial, day, pump_time, timestamp FROM basal
        UNION ALL SELECT pump_serial, day, pump_time, timestamp FROM bolus
    )
    GROUP BY ALL
),
c AS (
    SELECT
        pump_serial,
        day,
        count(g) AS n,
        avg(g) AS mean,
        stddev_samp(g ORDER BY pump_time, timestamp) AS sd,
        count(g) FILTER (WHERE g < 54) AS n_below_54,
        count(g) FILTER (WHERE g >= 54 AND g < 70) AS n_54_69,
        count(g) FILTER (WHERE g >= 70 AND g <= 180) AS n_70_180,
        count(g) FILTER (WHERE g > 180 AND g <= 250) AS n_181_250,
        count(g) FILTER (WHERE g > 250) AS n_above_250
    FROM cgm
    GROUP BY ALL
),
b AS (
    SELECT pump_serial, day, count(*) AS records, sum(units ORDER BY seq_num) AS units FROM basal GROUP BY ALL
),
o AS (
    SELECT pump_serial, day, count(*) AS boluses, sum(delivered_units ORDER BY seq_num) AS units, sum(carbs_g) AS carbs
    FROM bolus GROUP BY ALL
)
SELECT
    timezone('UTC', CAST(d.day AS TIMESTAMP) - d.utc_offset) AS timestamp,
    CAST(d.day AS TIMESTAMP) AS pump_time,
    d.day,
    coalesce(c.n, 0) AS cgm_readings,
    least(100.0, 100.0 * coalesce(c.n, 0) * 5 / 1440) AS cgm_active_percent,
    c.mean AS mean_glucose_mg_dl,
    c.sd AS sd_glucose_mg_dl,
    100.0 * c.sd / c.mean AS cv_percent,
    100.0 * c.n_below_54 / nullif(c.n, 0) AS time_below_54_mg_dl_percent,
    100.0 * c.n_54_69 / nullif(c.n, 0) AS time_54_to_69_mg_dl_percent,
    100.0 * c.n_70_180 / nullif(c.n, 0) AS time_70_to_180_mg_dl_percent,
    100.0 * c.n_181_250 / nullif(c.n, 0) AS time_181_to_250_mg_dl_percent,
    100.0 * c.n_above_250 / nullif(c.n, 0) AS time_above_250_mg_dl_percent,
    coalesce(b.records, 0) AS basal_records,
    coalesce(b.units, 0.0) AS basal_units,
    coalesce(o.boluses, 0) AS boluses,
    coalesce(o.units, 0.0) AS bolus_units,
    coalesce(b.units, 0.0) + coalesce(o.units, 0.0) AS total_insulin_units,
    CAST(coalesce(o.carbs, 0) AS BIGINT) AS carbs_g,
    d.pump_serial
FROM days d
LEFT JOIN c USING (pump_serial, day)
LEFT JOIN b USING (pump_serial, day)
LEFT JOIN o USING (pump_serial, day)
ORDER BY timestamp, d.pump_serial
