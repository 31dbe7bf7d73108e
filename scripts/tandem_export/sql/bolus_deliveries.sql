-- Bolus deliveries: one row per bolus, joining its request (64, 65, 66), delivery records
-- (280, started and completed) and completion (20; 21 for the extended part).
-- Bolus ids are 16-bit and repeat over a long history, so records are never joined by id alone:
-- each request (64) opens a new episode of its id, and the records of that id that follow it in
-- sequence order, up to the next request with the same id, belong to it.  Records seen before
-- any request of their id (a history that starts mid-bolus) form an episode of their own.
WITH b AS (
    SELECT *,
        sum(CASE WHEN event_id = 64 THEN 1 ELSE 0 END) OVER (
            PARTITION BY pump_serial, bolus_id ORDER BY seq_num
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM decoded
    WHERE event_id IN (64, 65, 66, 280, 20, 21) AND bolus_id IS NOT NULL AND time_reliable
),
g AS (
    SELECT
        pump_serial,
        bolus_id,
        min(seq_num) FILTER (WHERE event_id = 64) AS request_seq_num,
        min(seq_num) AS first_seq_num,
        min(pump_time) FILTER (WHERE event_id = 64) AS request_pump_time,
        min(pump_time) AS first_pump_time,
        min(timestamp) FILTER (WHERE event_id = 64) AS requested_at,
        min(timestamp) AS first_timestamp,
        max(timestamp) FILTER (WHERE event_id IN (20, 21)) AS completed_at,
        any_value(total_bolus_units) FILTER (WHERE event_id = 66) AS total_requested,
        max(insulin_requested_units) FILTER (WHERE event_id = 20) AS completion_requested,
        sum(insulin_delivered_units) FILTER (WHERE event_id IN (20, 21)) AS completion_delivered,
        max(delivered_total_units) FILTER (WHERE event_id = 280 AND bolus_delivery_status = 'completed') AS delivery_delivered,
        any_value(food_bolus_units) FILTER (WHERE event_id = 66) AS food_units,
        any_value(correction_bolus_units) FILTER (WHERE event_id = 66) AS correction_units,
        any_value(carb_amount_g) FILTER (WHERE event_id = 64) AS carbs_g,
        any_value(bg_mg_dl) FILTER (WHERE event_id = 64) AS bg_mg_dl,
        any_value(iob_units) FILTER (WHERE event_id = 64) AS iob_units,
        any_value(bolus_options) FILTER (WHERE event_id = 65) AS bolus_type,
        any_value(bolus_request_type) FILTER (WHERE event_id = 64) AS request_type,
        any_value(bolus_source) FILTER (WHERE event_id = 280) AS bolus_source,
        any_value(completion_status) FILTER (WHERE event_id = 20) AS completion_status,
        coalesce(any_value(duration_minutes) FILTER (WHERE event_id = 65),
                 max(extended_duration_minutes) FILTER (WHERE event_id = 280)) AS extended_duration_minutes
    FROM b
    GROUP BY pump_serial, bolus_id, episode
)
SELECT
    coalesce(requested_at, first_timestamp) AS timestamp,
    coalesce(request_pump_time, first_pump_time) AS pump_time,
    bolus_id,
    requested_at,
    completed_at,
    coalesce(total_requested, completion_requested) AS requested_units,
    -- A bolus delivers at most 25 U, its extended part included (layouts.BOLUS_U, the largest Max
    -- Bolus), and never more than the calculator's total requested (66): parts that add up to more
    -- cannot be one bolus, and are no delivery (NULL; counted in the derived tables' log).
    CASE WHEN coalesce(completion_delivered, delivery_delivered) <= 25
              AND (total_requested IS NULL OR coalesce(completion_delivered, delivery_delivered) <= total_requested + 0.005)
         THEN coalesce(completion_delivered, delivery_delivered) END AS delivered_units,
    food_units,
    correction_units,
    carbs_g,
    bg_mg_dl,
    iob_units,
    bolus_type,
    request_type,
    bolus_source,
    completion_status,
    extended_duration_minutes,
    pump_serial,
    coalesce(request_seq_num, first_seq_num) AS seq_num
FROM g
ORDER BY timestamp, pump_serial, seq_num
