use super::*;

const INVITE_WITH_AUTH: &str = "INVITE sip:+15551230001@10.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
From: <sip:+15557654321@10.0.0.2>;tag=a\r\n\
To: <sip:+15551230001@10.0.0.1>\r\n\
Call-ID: trace-1@10.0.0.2\r\n\
CSeq: 2 INVITE\r\n\
Proxy-Authorization: Digest username=\"tpswitch\", realm=\"carrier\", nonce=\"n0nce\", uri=\"sip:+15551230001@10.0.0.1\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"c\", qop=auth, nc=00000001\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\
\r\n\
v=0\r\n\
o=- 1 1 IN IP4 10.0.0.2\r\n\
s=-\r\n\
c=IN IP4 10.0.0.2\r\n\
t=0 0\r\n\
k=base64:c2VjcmV0a2V5\r\n\
m=audio 4000 RTP/SAVP 0\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n\
a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2;inline:c2Vjb25ka2V5c2Vjb25ka2V5c2Vjb25ka2V5MTIzNDU2Nzg5MA==|2^31\r\n\
a=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyO\r\n\
a=rtpmap:0 PCMU/8000\r\n";

#[test]
fn digest_response_and_sdp_keys_are_redacted() {
    let out = redact(INVITE_WITH_AUTH);
    for secret in [
        "6629fae49393a05397450978507c4ef1",
        "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2",
        "c2Vjb25ka2V5c2Vjb25ka2V5c2Vjb25ka2V5MTIzNDU2Nzg5MA==",
        "c2VjcmV0a2V5",
        "AQAFgM0XflABAAAAAAAAAAAAAAsAyO",
    ] {
        assert!(!out.contains(secret), "{secret} left in\n{out}");
    }
    // What is not secret stays, so the trace still explains the call.
    for kept in [
        "response=\"<redacted>\", algorithm=MD5, cnonce=\"c\"",
        "username=\"tpswitch\", realm=\"carrier\", nonce=\"n0nce\"",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>|2^20|1:32\r\n",
        "inline:<redacted>;inline:<redacted>|2^31\r\n",
        "k=<redacted>\r\n",
        "a=key-mgmt:<redacted>\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "Call-ID: trace-1@10.0.0.2\r\n",
    ] {
        assert!(out.contains(kept), "{kept:?} missing in\n{out}");
    }
    assert_eq!(out.lines().count(), INVITE_WITH_AUTH.lines().count());
}

#[test]
fn authorization_header_names_and_unquoted_responses_are_matched_in_any_case() {
    let msg = "REGISTER sip:carrier SIP/2.0\r\nauthorization: DIGEST Response=abcdef0123,username=\"u\"\r\n\r\n";
    let out = redact(msg);
    assert!(!out.contains("abcdef0123"), "{out}");
    assert!(
        out.contains("Response=\"<redacted>\",username=\"u\""),
        "{out}"
    );
    let basic = redact("OPTIONS sip:x SIP/2.0\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n");
    assert!(!basic.contains("dXNlcjpwYXNz"), "{basic}");
    assert!(basic.contains("Authorization: Basic <redacted>"), "{basic}");
}

#[test]
fn a_response_parameter_inside_a_quoted_value_does_not_end_the_redaction_early() {
    let msg =
        "INVITE sip:x SIP/2.0\r\nAuthorization: Digest response=\"ab\\\"cd\", nonce=\"n\"\r\n\r\n";
    let out = redact(msg);
    assert!(!out.contains("ab\\\"cd"), "{out}");
    assert!(
        out.contains("response=\"<redacted>\", nonce=\"n\""),
        "{out}"
    );
}

#[test]
fn info_dtmf_bodies_are_redacted() {
    let relay = "INFO sip:x SIP/2.0\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=7\r\nDuration=160\r\n";
    let out = redact(relay);
    assert!(!out.contains("Signal=7"), "{out}");
    let plain = redact("INFO sip:x SIP/2.0\r\nc: application/dtmf\r\n\r\n7");
    assert!(plain.ends_with("\r\n\r\n<redacted>"), "{plain}");
}

#[test]
fn messages_without_secrets_are_untouched() {
    let msg = "BYE sip:x SIP/2.0\r\nCall-ID: a\r\nContent-Length: 0\r\n\r\n";
    assert!(matches!(redact(msg), Cow::Borrowed(_)));
    let sdp = "SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n\r\nv=0\r\na=sendrecv\r\n";
    assert_eq!(redact(sdp), sdp);
}

#[test]
fn numbers_select_a_call_from_its_invite_on() {
    let wanted = "+15551230001";
    let mut t = SipTracer::new(false, Some(Box::new(move |u: &str| u == wanted)));
    assert!(t.is_traced(INVITE_WITH_AUTH, "trace-1@10.0.0.2"));
    // The BYE names no number: its Call-ID is enough.
    assert!(t.is_traced("BYE sip:x SIP/2.0\r\n\r\n", "trace-1@10.0.0.2"));
    let other = INVITE_WITH_AUTH.replace("+15551230001", "+15550000000");
    assert!(!t.is_traced(&other, "other@10.0.0.2"));
    assert!(!t.is_traced("BYE sip:x SIP/2.0\r\n\r\n", "other@10.0.0.2"));
    assert!(!SipTracer::off().is_traced(INVITE_WITH_AUTH, "trace-1@10.0.0.2"));
}

#[test]
fn the_traced_set_is_bounded() {
    let mut t = SipTracer::new(false, Some(Box::new(|_: &str| true)));
    for i in 0..TRACED_CALLS + 10 {
        assert!(t.is_traced(INVITE_WITH_AUTH, &format!("c{i}")));
    }
    assert_eq!(t.traced.len(), TRACED_CALLS);
    assert!(!t.traced.contains("c0"));
}

#[test]
fn headers_and_user_parts_are_read_in_compact_and_tel_forms() {
    let msg = "INVITE tel:+15551230001 SIP/2.0\r\ni: compact-id\r\nf: \"A\" <sip:2025550100@h;user=phone>;tag=1\r\n\r\n";
    assert_eq!(header(msg, &["call-id", "i"]), Some("compact-id"));
    assert_eq!(
        header(msg, &["from", "f"]).and_then(user_part),
        Some("2025550100")
    );
    assert_eq!(user_part("tel:+15551230001"), Some("+15551230001"));
    assert_eq!(user_part("<sip:host.example>"), Some("host.example"));
    assert_eq!(
        header("INVITE x SIP/2.0\r\n\r\nCall-ID: body", &["call-id"]),
        None
    );
}
