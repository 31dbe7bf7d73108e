-- CGM sensor sessions: one row per session record, start (Dexcom G6 212, Libre 2 404), join (the
-- pump joins a running session: G6 213, G7 394, Libre 2 406, Libre 3 477) and stop (G6 214, G7 447,
-- Libre 2 405, Libre 3 486).  Dexcom G6 reasons are named; the other sensors record a reason code
-- without published names, given as a number.  The session times inside the records count seconds
-- on the sensor's or transmitter's clock and are kept as recorded; session_length_hours (stop
-- records) is the stop time minus the start time of the same record, which needs no common clock.
SELECT
    timestamp,
    pump_time,
    CASE WHEN event_id IN (212, 213, 214) THEN 'dexcom_g6'
         WHEN event_id IN (394, 447) THEN 'dexcom_g7'
         WHEN event_id IN (404, 405, 406) THEN 'libre2'
         ELSE 'libre3' END AS sensor,
    CASE WHEN event_id IN (212, 404) THEN 'start'
         WHEN event_id IN (213, 394, 406, 477) THEN 'join'
         ELSE 'stop' END AS session_event,
    coalesce(session_join_reason, session_stop_reason) AS reason,
    coalesce(session_join_reason_code, session_stop_reason_code) AS reason_code,
    stop_session_code,
    session_duration_days,
    CASE WHEN session_stop_time_seconds > 0 AND session_start_time_seconds > 0
              AND session_stop_time_seconds >= session_start_time_seconds
         THEN (session_stop_time_seconds - session_start_time_seconds) / 3600.0 END AS session_length_hours,
    session_start_time_seconds,
    session_join_time_seconds,
    session_stop_time_seconds,
    transmitter_time_seconds,
    cgm_timestamp_seconds,
    session_signature,
    event_id,
    pump_serial,
    seq_num
FROM decoded
WHERE event_id IN (212, 213, 214, 394, 447, 404, 405, 406, 477, 486) AND time_reliable
ORDER BY timestamp, pump_serial, seq_num
