-- The SIP Call-ID of each attempt's outbound leg, so a carrier's trace of a
-- leg can be matched to the attempt (issue 9). NULL for rows written before
-- this column existed, and for legs whose INVITE never went out.
ALTER TABLE call_attempts ADD COLUMN sip_call_id TEXT;
