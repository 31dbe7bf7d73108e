-- Site changes: one row per fill record, cartridge filled (33), tubing filled (63) and cannula
-- filled (61). amount_units is the insulin put in the cartridge (33: the V2 volume when the pump
-- recorded one, else the whole-unit volume) or the insulin used to fill the tubing or cannula
-- (61, 63: prime size). Completion status is recorded for tubing and cannula fills only.
SELECT
    timestamp,
    pump_time,
    CASE event_id WHEN 33 THEN 'cartridge' WHEN 63 THEN 'tubing' WHEN 61 THEN 'cannula' END AS fill,
    CASE event_id
        WHEN 33 THEN CASE WHEN v2_volume_units > 0 THEN v2_volume_units ELSE CAST(insulin_volume_units AS DOUBLE) END
        ELSE prime_size_units END AS amount_units,
    completion_status,
    insulin_volume_units AS cartridge_volume_units,
    v2_volume_units AS cartridge_v2_volume_units,
    prime_size_units,
    position_counts AS tubing_position_counts,
    pump_serial,
    seq_num
FROM decoded
WHERE event_id IN (33, 61, 63) AND time_reliable
ORDER BY timestamp, pump_serial, seq_num
