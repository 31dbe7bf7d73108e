-- Daily status (81, LID_DAILY_BASAL): logged by the pump once a day, with the day's total basal,
-- the last basal rate, insulin on board and the battery charge.
-- Battery charge fraction = (256 x (MSB - 14) + LSB) / 768 from the two raw bytes; the table gives
-- it as a percent rounded to 0.1 (NULL when either byte is missing).
SELECT
    timestamp,
    pump_time,
    daily_total_basal_units,
    last_basal_rate_units_per_hour,
    iob_units,
    round(100.0 * (256 * (battery_charge_msb_raw - 14) + battery_charge_lsb_raw) / 768, 1) AS battery_percent,
    battery_charge_msb_raw,
    battery_charge_lsb_raw,
    battery_lipo_mv,
    pump_serial,
    seq_num
FROM decoded
WHERE event_id = 81 AND time_reliable
ORDER BY timestamp, pump_serial, seq_num
