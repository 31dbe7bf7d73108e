-- Sleep, exercise and eating-soon modes (229, user mode change): one row per period in a mode.
-- A record starts a mode when its current mode is that mode and its previous mode is not, and
-- stops a mode when its previous mode is that mode and its current mode is not (so a switch from
-- sleep to exercise stops one and starts the other).  Each start is paired with the first stop of
-- the same mode on the same pump that follows it in sequence order and comes before the next start
-- of that mode.  A stop with no start before it in the history gives a row with started_at NULL; a
-- mode still on at the end of the history has stopped_at NULL.
WITH c AS (
    SELECT * FROM decoded WHERE event_id = 229 AND time_reliable
),
m AS (
    SELECT *, true AS is_start,
        CASE current_user_mode WHEN 'sleeping' THEN 'sleep' WHEN 'exercising' THEN 'exercise'
                               WHEN 'eating_soon' THEN 'eating_soon' END AS mode
    FROM c
    WHERE current_user_mode IN ('sleeping', 'exercising', 'eating_soon')
      AND current_user_mode IS DISTINCT FROM previous_user_mode
    UNION ALL
    SELECT *, false AS is_start,
        CASE previous_user_mode WHEN 'sleeping' THEN 'sleep' WHEN 'exercising' THEN 'exercise'
                                WHEN 'eating_soon' THEN 'eating_soon' END AS mode
    FROM c
    WHERE previous_user_mode IN ('sleeping', 'exercising', 'eating_soon')
      AND previous_user_mode IS DISTINCT FROM current_user_mode
),
e AS (
    SELECT *,
        sum(CASE WHEN is_start THEN 1 ELSE 0 END) OVER (
            PARTITION BY pump_serial, mode ORDER BY seq_num, is_start
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM m
),
g AS (
    SELECT
        pump_serial,
        mode,
        episode,
        arg_min(seq_num, seq_num) FILTER (WHERE is_start) AS start_seq_num,
        arg_min(timestamp, seq_num) FILTER (WHERE is_start) AS started_at,
        arg_min(pump_time, seq_num) FILTER (WHERE is_start) AS started_pump_time,
        arg_min(requested_action, seq_num) FILTER (WHERE is_start) AS start_action,
        arg_min(active_sleep_schedule, seq_num) FILTER (WHERE is_start) AS sleep_schedule,
        arg_min(sleep_started_by_gui, seq_num) FILTER (WHERE is_start) AS sleep_started_by_gui,
        arg_min(exercise_choice, seq_num) FILTER (WHERE is_start) AS exercise_choice,
        arg_min(exercise_time_minutes, seq_num) FILTER (WHERE is_start) AS exercise_time_minutes,
        arg_min(seq_num, seq_num) FILTER (WHERE NOT is_start) AS stop_seq_num,
        arg_min(timestamp, seq_num) FILTER (WHERE NOT is_start) AS stopped_at,
        arg_min(pump_time, seq_num) FILTER (WHERE NOT is_start) AS stopped_pump_time,
        arg_min(requested_action, seq_num) FILTER (WHERE NOT is_start) AS stop_action,
        arg_min(CASE mode WHEN 'exercise' THEN exercise_stopped_by_timer
                          WHEN 'eating_soon' THEN eating_soon_stopped_by_timer END, seq_num)
            FILTER (WHERE NOT is_start) AS stopped_by_timer
    FROM e
    GROUP BY ALL
)
SELECT
    coalesce(started_at, stopped_at) AS timestamp,
    coalesce(started_pump_time, stopped_pump_time) AS pump_time,
    mode,
    started_at,
    stopped_at,
    stopped_pump_time,
    (epoch(stopped_at) - epoch(started_at)) / 60.0 AS duration_minutes,
    start_action,
    stop_action,
    stopped_by_timer,
    CASE WHEN mode = 'sleep' THEN sleep_schedule END AS sleep_schedule,
    CASE WHEN mode = 'sleep' THEN sleep_started_by_gui END AS sleep_started_by_gui,
    CASE WHEN mode = 'exercise' THEN exercise_choice END AS exercise_choice,
    CASE WHEN mode = 'exercise' THEN exercise_time_minutes END AS exercise_time_minutes,
    pump_serial,
    coalesce(start_seq_num, stop_seq_num) AS seq_num
FROM g
ORDER BY timestamp, pump_serial, seq_num, mode
