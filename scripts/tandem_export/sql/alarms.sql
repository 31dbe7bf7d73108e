-- Alerts (4 activated / 26 cleared), alarms (5 / 28), malfunctions (6, never cleared by a record)
-- and CGM alerts (171 / 172, Dexcom 369 / 370, Libre 2 460 / 461; 371 is a Dexcom acknowledgement):
-- one row per activation, named from the pump's own tables (the decoded *_name columns).
-- Ids repeat, so an activation is paired with the first clearing record of the same kind and id on
-- the same pump that follows it in sequence order and comes before the next activation of that id;
-- each activation opens such an episode, and records before the first activation are dropped.
WITH a AS (
    SELECT
        *,
        CASE
            WHEN event_id IN (4, 26) THEN 'alert'
            WHEN event_id IN (5, 28) THEN 'alarm'
            WHEN event_id = 6 THEN 'malfunction'
            ELSE 'cgm_alert' END AS kind,
        CASE
            WHEN event_id IN (4, 26) THEN alert_id
            WHEN event_id IN (5, 28) THEN alarm_id
            WHEN event_id = 6 THEN malfunction_id
            ELSE cgm_alert_id END AS code,
        CASE
            WHEN event_id IN (4, 26) THEN alert_name
            WHEN event_id IN (5, 28) THEN alarm_name
            WHEN event_id = 6 THEN malfunction_name
            ELSE cgm_alert_name END AS name,
        event_id IN (4, 5, 6, 171, 369, 460) AS activation,
        event_id IN (26, 28, 172, 370, 461) AS clearing
    FROM decoded
    WHERE event_id IN (4, 26, 5, 28, 6, 171, 172, 369, 370, 371, 460, 461) AND time_reliable
),
e AS (
    SELECT
        *,
        sum(CASE WHEN activation THEN 1 ELSE 0 END) OVER (
            PARTITION BY pump_serial, kind, code ORDER BY seq_num
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM a
),
closing AS (
    SELECT
        pump_serial,
        kind,
        code,
        episode,
        arg_min(timestamp, seq_num) FILTER (WHERE clearing) AS cleared_at,
        arg_min(pump_time, seq_num) FILTER (WHERE clearing) AS cleared_pump_time,
        arg_min(timestamp, seq_num) FILTER (WHERE event_id = 371) AS acknowledged_at,
        arg_min(ack_source, seq_num) FILTER (WHERE event_id = 371) AS acknowledged_by
    FROM e
    WHERE NOT activation AND episode > 0
    GROUP BY ALL
)
SELECT
    e.timestamp,
    e.pump_time,
    e.kind,
    e.code,
    e.name,
    c.cleared_at,
    c.cleared_pump_time,
    (epoch(c.cleared_at) - epoch(e.timestamp)) / 60.0 AS duration_minutes,
    c.acknowledged_at,
    c.acknowledged_by,
    e.sensor_type,
    e.fault_locator_data,
    e.param1,
    e.param2,
    e.event_id,
    e.pump_serial,
    e.seq_num
FROM e
LEFT JOIN closing c USING (pump_serial, kind, code, episode)
WHERE e.activation
ORDER BY e.timestamp, e.pump_serial, e.seq_num
