//! Serialising our side of offer/answer: the answer to a remote offer and our own offer.

use std::net::{IpAddr, SocketAddr};

use ::sdp::description::common::{Address, Attribute, ConnectionInformation};
use ::sdp::description::media::{MediaDescription, MediaName, RangedPort};
use ::sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};

use super::crypto::{self, OfferCrypto};
use super::{MediaLine, Negotiated, PTIME_MS};
use crate::media::codec::Codec;
use crate::media::stream::Direction;

/// Build our answer to `neg`'s offer: the audio line carries our address and the single
/// chosen codec (plus telephone-event if offered); every other m= line of the offer is
/// answered with port 0 in the same position (RFC 3264 §6). An SRTP stream's answer
/// repeats the accepted `a=crypto` tag and suite with our key (RFC 4568 §7.1.2).
pub fn build_answer(neg: &Negotiated, local: SocketAddr, session_id: u64, version: u64) -> Vec<u8> {
    let mut audio = audio_description(
        local.port(),
        neg.media_lines
            .get(neg.audio_index)
            .map_or("RTP/AVP", |l| l.proto.as_str()),
        &[(neg.stream.codec, neg.stream.pt)],
        neg.stream.telephone_event_pt,
        neg.stream.direction,
    );
    if let Some(s) = &neg.stream.srtp {
        audio.attributes.push(attr(
            "crypto",
            Some(crypto::build(s.tag, s.suite, &s.local)),
        ));
    }
    let mut media = Vec::with_capacity(neg.media_lines.len().max(1));
    for (i, line) in neg.media_lines.iter().enumerate() {
        if i == neg.audio_index {
            media.push(audio.clone());
        } else {
            media.push(rejected_description(line));
        }
    }
    if media.is_empty() {
        media.push(audio);
    }
    session(local.ip(), session_id, version, media)
}

/// Build an offer for one audio stream: `codecs` in our preference order (duplicates
/// dropped), telephone-event on `dtmf_pt`, SRTP as `srtp` says.
pub fn build_offer(
    local: SocketAddr,
    codecs: &[Codec],
    dtmf_pt: u8,
    session_id: u64,
    version: u64,
    direction: Direction,
    srtp: &OfferCrypto,
) -> Vec<u8> {
    let mut list: Vec<(Codec, u8)> = Vec::with_capacity(codecs.len());
    for &c in codecs {
        if !list.iter().any(|(seen, _)| *seen == c) {
            list.push((c, c.payload_type()));
        }
    }
    let mut audio = audio_description(local.port(), srtp.proto(), &list, Some(dtmf_pt), direction);
    for line in srtp.lines() {
        audio.attributes.push(attr("crypto", Some(line)));
    }
    session(local.ip(), session_id, version, vec![audio])
}

fn connection(ip: IpAddr) -> ConnectionInformation {
    ConnectionInformation {
        network_type: "IN".into(),
        address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(),
        address: Some(Address {
            address: ip.to_string(),
            ttl: None,
            range: None,
        }),
    }
}

fn attr(key: &str, value: Option<String>) -> Attribute {
    Attribute::new(key.to_string(), value)
}

fn audio_description(
    port: u16,
    proto: &str,
    codecs: &[(Codec, u8)],
    dtmf_pt: Option<u8>,
    direction: Direction,
) -> MediaDescription {
    let mut formats: Vec<String> = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
    let mut attributes: Vec<Attribute> = codecs
        .iter()
        .map(|(c, pt)| attr("rtpmap", Some(format!("{pt} {}/8000", c.name()))))
        .collect();
    if let Some(te) = dtmf_pt {
        formats.push(te.to_string());
        attributes.push(attr("rtpmap", Some(format!("{te} telephone-event/8000"))));
        // Events 0-15 are the DTMF keys, 16 is flash (RFC 4733 §3.2).
        attributes.push(attr("fmtp", Some(format!("{te} 0-16"))));
    }
    attributes.push(attr("ptime", Some(PTIME_MS.to_string())));
    attributes.push(attr(direction.as_str(), None));
    MediaDescription {
        media_name: MediaName {
            media: "audio".into(),
            port: RangedPort {
                value: port as isize,
                range: None,
            },
            protos: proto.split('/').map(str::to_string).collect(),
            formats,
        },
        media_title: None,
        connection_information: None,
        bandwidth: vec![],
        encryption_key: None,
        attributes,
    }
}

/// A refused stream: same media and proto, port 0, and at least one format as the m=
/// grammar requires (RFC 3264 §6).
fn rejected_description(line: &MediaLine) -> MediaDescription {
    let formats = if line.formats.is_empty() {
        vec!["0".to_string()]
    } else {
        line.formats.clone()
    };
    MediaDescription {
        media_name: MediaName {
            media: line.media.clone(),
            port: RangedPort {
                value: 0,
                range: None,
            },
            protos: line.proto.split('/').map(str::to_string).collect(),
            formats,
        },
        media_title: None,
        connection_information: None,
        bandwidth: vec![],
        encryption_key: None,
        attributes: vec![],
    }
}

fn session(ip: IpAddr, session_id: u64, version: u64, media: Vec<MediaDescription>) -> Vec<u8> {
    let conn = connection(ip);
    let desc = SessionDescription {
        version: 0,
        origin: Origin {
            username: "tpswitch".into(),
            session_id,
            session_version: version,
            network_type: conn.network_type.clone(),
            address_type: conn.address_type.clone(),
            unicast_address: ip.to_string(),
        },
        session_name: "tpswitch".into(),
        session_information: None,
        uri: None,
        email_address: None,
        phone_number: None,
        connection_information: Some(conn),
        bandwidth: vec![],
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        time_zones: vec![],
        encryption_key: None,
        attributes: vec![],
        media_descriptions: media,
    };
    desc.marshal().into_bytes()
}
