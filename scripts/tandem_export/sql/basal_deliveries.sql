-- Basal deliveries (279): one row per record (about every 5 minutes, also at rate 0).
-- Rates are recorded in milliunits/hour and decoded to units/hour. Temp and algorithm rates are
-- as the pump recorded them (0 when that mechanism is not active).
SELECT
    timestamp,
    pump_time,
    commanded_rate_units_per_hour,
    profile_rate_units_per_hour,
    algorithm_rate_units_per_hour,
    temp_rate_units_per_hour,
    commanded_rate_source AS rate_source,
    pump_serial,
    seq_num
FROM decoded
WHERE event_id = 279 AND time_reliable
ORDER BY timestamp, pump_serial, seq_num
