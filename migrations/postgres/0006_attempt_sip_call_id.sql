-- PostgreSQL twin of ../0006_attempt_sip_call_id.sql.
ALTER TABLE call_attempts ADD COLUMN sip_call_id TEXT;
