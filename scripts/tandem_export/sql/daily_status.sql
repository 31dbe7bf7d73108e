-- Daily status (81, LID_DAILY_BASAL): logged by the pump once a day (and, with the final-event flag
-- clear, at some other times), with the day's total basal so far, the last basal rate, insulin on
-- board, the LiPo battery's charge (percent, as the pump computes it) and voltage (mV); see the
-- layout of record 81 in layouts.py for where these bytes are and how that was settled.
SELECT
    timestamp,
    pump_time,
    daily_total_basal_units,
    last_basal_rate_units_per_hour,
    iob_units,
    battery_charge_percent,
    battery_lipo_mv,
    final_event_of_day,
    pump_serial,
    seq_num
FROM decoded
WHERE event_id = 81 AND time_reliable
ORDER BY timestamp, pump_serial, seq_num
