//! Webhooks: each event of the kinds a `[[webhooks]]` entry asks for is
//! POSTed to its URL as JSON, signed, in order, retried with exponential
//! back-off (as Twilio TaskRouter's event callbacks and Stripe's webhooks
//! are).
//!
//! - [`signature`]: the `X-Tpswitch-Signature` header (HMAC-SHA256 over
//!   timestamp and body), made and checked.
//! - [`schedule`]: the sans-IO queue and retry schedule of one webhook.
//! - [`deliver`]: the shell: one task per webhook, the HTTP client.

pub mod deliver;
pub mod schedule;
pub mod signature;

pub use deliver::{spawn, WebhookStats};
pub use schedule::{Backoff, Due, Schedule};
