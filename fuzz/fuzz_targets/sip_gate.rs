//! One UDP datagram through the inbound gate (`sip::inspect`): it must
//! answer every input (no panic), and on every request it accepts the
//! head it gives the core, the core's fast readers and the RFC 3261 grammar
//! must agree on the Via, tags, Contact, Call-ID and CSeq (the differential
//! check), the
//! request must survive its own serialisation, and the readers the call
//! layer uses (called number, caller, SDP body) must take it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpswitch::sip::access::{called_number_user, caller_candidates, sdp_body};
use tpswitch::sip::differential::readers_agree;
use tpswitch::sip::inspect::{inspect, Inspection, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match inspect(data, &limits) {
        Inspection::Request(accepted) => {
            if let Err(e) = readers_agree(&accepted) {
                panic!("gate and core disagree: {e}");
            }
            let req = &accepted.req;
            let _ = (
                called_number_user(req),
                caller_candidates(req),
                sdp_body(req),
            );
            let again = inspect(&req.to_bytes(), &limits);
            assert!(
                matches!(again, Inspection::Request(_)),
                "re-serialised request not accepted: {again:?}"
            );
        }
        Inspection::Response(resp) => {
            let _ = tpswitch::sip::message::ResponseHead::read(&resp);
        }
        // The stateless answer goes back on the wire: it must itself be a
        // message the gate reads as a response (never a request).
        Inspection::Reject { response, .. } => {
            let back = inspect(&response, &limits);
            assert!(
                !matches!(back, Inspection::Request(_)),
                "our own error response reads as a request: {back:?}"
            );
        }
        Inspection::Drop { .. } => {}
    }
});
