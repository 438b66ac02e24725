//! The differential check between the gate's head and the message it hands
//! on: the gate judges every message with the RFC 3261 grammar (`grammar.rs`)
//! and gives the core the head it keys transactions and dialogs on from that
//! parse (`Accepted::head`), while the call layer reads other headers off the
//! rsipstack `Request` beside it, and `message.rs` has its own fast readers of
//! the same fields (for responses). Two readers of one header that disagree
//! on what it says are a smuggling risk (one component routes by one reading,
//! the other by another), so on every message the gate accepts all must agree.
//!
//! Used by the gate's unit tests (RFC 4475/5118 corpus, mutations) and by the
//! SIP fuzz target (`fuzz/`), which asserts it on every accepted request.

use super::access::top_via;
use super::inspect::Accepted;
use super::{grammar, message, wire};

/// The head the gate built must be what `message`'s readers read off the canonical
/// headers it hands on, and the top Via, tags, Contact, Call-ID and CSeq must be what
/// the grammar reads off the request as it goes out again.
pub fn readers_agree(accepted: &Accepted) -> Result<(), String> {
    let req = &accepted.req;
    let read = message::RequestHead::read(req)
        .map_err(|e| format!("the core cannot read a request the gate accepted: {e:?}"))?;
    if read != accepted.head {
        return Err(format!(
            "the gate's head and the readers differ: gate {:?}, readers {read:?}",
            accepted.head
        ));
    }
    let head = &accepted.head;
    let core = &head.top_via;
    let rfc = top_via(req).ok_or("the grammar cannot read the top Via")?;
    let host = if rfc.host.contains(':') {
        format!("[{}]", rfc.host)
    } else {
        rfc.host.clone()
    };
    let sent_by = match rfc.port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let core_view = (
        core.transport.clone(),
        core.sent_by.to_ascii_lowercase(),
        core.branch.clone(),
        core.rport,
    );
    let rfc_view = (
        rfc.transport.clone(),
        sent_by.to_ascii_lowercase(),
        rfc.branch.clone(),
        rfc.rport.is_some(),
    );
    if core_view != rfc_view {
        return Err(format!(
            "Via readers differ: core {core_view:?}, grammar {rfc_view:?}"
        ));
    }
    // The dialog's tags (§12.2.2) likewise: the core's header_param against the grammar.
    let bytes = req.to_bytes();
    let raw = wire::split(&bytes, 1000).map_err(|e| e.to_string())?;
    for (name, core_tag) in [("From", &head.from_tag), ("To", &head.to_tag)] {
        let value = raw.first(name).ok_or(format!("no {name}"))?;
        let rfc_tag = grammar::parse_name_addr(value)
            .map_err(|e| format!("{name} does not parse: {e:?}"))?
            .param("tag")
            .flatten()
            .map(str::to_owned);
        if core_tag != &rfc_tag {
            return Err(format!(
                "{name} tag readers differ: core {core_tag:?}, grammar {rfc_tag:?}"
            ));
        }
    }
    // The Contact's URI: it becomes the dialog's remote target (§12.1.1),
    // the Request-URI of our BYE. The core's one name-addr reader against
    // the grammar.
    if let Some(contact) = head.contact.as_deref().filter(|c| *c != "*") {
        let rfc_uri = grammar::parse_name_addr(contact)
            .map_err(|e| format!("Contact does not parse: {e:?}"))?
            .uri;
        let core_uri = message::header_uri(contact);
        if core_uri != rfc_uri {
            return Err(format!(
                "Contact readers differ: core {core_uri:?}, grammar {rfc_uri:?}"
            ));
        }
    }
    // Call-ID and CSeq: what the transaction and dialog keys are made of.
    let call_id = raw.first("Call-ID").unwrap_or("");
    let cseq = grammar::collapse_lws(raw.first("CSeq").unwrap_or(""));
    let core_keys = (
        head.call_id.clone(),
        format!("{} {}", head.cseq, head.cseq_method),
    );
    let gate_keys = (call_id.to_owned(), cseq.clone());
    if core_keys != gate_keys {
        return Err(format!(
            "Call-ID/CSeq readers differ: core {core_keys:?}, gate {gate_keys:?}"
        ));
    }
    Ok(())
}
