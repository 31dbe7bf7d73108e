-- Fingerstick BG readings (16): one row per BG the pump recorded, entered by hand or filled in
-- from the CGM, with the insulin on board and the bolus settings in force at that moment.
SELECT
    timestamp,
    pump_time,
    bg_mg_dl,
    bg_entry_type AS entry_type,
    cgm_calibration AS used_for_calibration,
    iob_units,
    isf_mg_dl_per_unit,
    target_bg_mg_dl,
    bg_source,
    iob_model,
    pump_serial,
    seq_num
FROM decoded
WHERE event_id = 16 AND time_reliable
ORDER BY timestamp, pump_serial, seq_num
