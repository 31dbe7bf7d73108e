-- Pump suspensions: one row per suspension (11), paired with the first resume (12) on the same
-- pump that follows it in sequence order and comes before the next suspension.  A resume with no
-- suspension before it in the history (a history that starts suspended) gives a row of its own
-- with started_at NULL; a suspension not yet resumed has resumed_at NULL.
WITH s AS (
    SELECT
        *,
        sum(CASE WHEN event_id = 11 THEN 1 ELSE 0 END) OVER (
            PARTITION BY pump_serial ORDER BY seq_num
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM decoded
    WHERE event_id IN (11, 12) AND time_reliable
),
g AS (
    SELECT
        pump_serial,
        episode,
        arg_min(seq_num, seq_num) FILTER (WHERE event_id = 11) AS suspend_seq_num,
        arg_min(timestamp, seq_num) FILTER (WHERE event_id = 11) AS started_at,
        arg_min(pump_time, seq_num) FILTER (WHERE event_id = 11) AS started_pump_time,
        arg_min(suspend_reason, seq_num) FILTER (WHERE event_id = 11) AS reason,
        arg_min(pre_suspend_state, seq_num) FILTER (WHERE event_id = 11) AS pre_suspend_state,
        arg_min(rpa_timeout_minutes, seq_num) FILTER (WHERE event_id = 11) AS rpa_timeout_minutes,
        arg_min(insulin_amount_units, seq_num) FILTER (WHERE event_id = 11) AS suspended_insulin_amount_units,
        arg_min(seq_num, seq_num) FILTER (WHERE event_id = 12) AS resume_seq_num,
        arg_min(timestamp, seq_num) FILTER (WHERE event_id = 12) AS resumed_at,
        arg_min(pump_time, seq_num) FILTER (WHERE event_id = 12) AS resumed_pump_time,
        arg_min(pre_resume_state, seq_num) FILTER (WHERE event_id = 12) AS pre_resume_state,
        arg_min(insulin_amount_units, seq_num) FILTER (WHERE event_id = 12) AS resumed_insulin_amount_units
    FROM s
    GROUP BY ALL
)
SELECT
    coalesce(started_at, resumed_at) AS timestamp,
    coalesce(started_pump_time, resumed_pump_time) AS pump_time,
    started_at,
    resumed_at,
    resumed_pump_time,
    (epoch(resumed_at) - epoch(started_at)) / 60.0 AS duration_minutes,
    reason,
    rpa_timeout_minutes,
    pre_suspend_state,
    pre_resume_state,
    suspended_insulin_amount_units,
    resumed_insulin_amount_units,
    pump_serial,
    coalesce(suspend_seq_num, resume_seq_num) AS seq_num
FROM g
ORDER BY timestamp, pump_serial, seq_num
