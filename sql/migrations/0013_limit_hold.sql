-- Limit detection waits while a signal's source is reading its history back: its rows after a gap
-- are judged once the gap is filled, in time order, so a breach that began during an outage and
-- lasted past it is one event at its source time (not a second one where live data resumed).
-- limit_held_at: when the collector began holding the signal's rows (null: not held).
ALTER TABLE blackbox_signal_state ADD COLUMN limit_held_at timestamptz;
CREATE INDEX blackbox_signal_state_held ON blackbox_signal_state (tenant_id, signal_id) WHERE limit_held_at IS NOT NULL;
