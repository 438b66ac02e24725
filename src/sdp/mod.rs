//! SDP offer/answer for one G.711 audio stream (RFC 3264 on RFC 4566).
//!
//! Parsing and serialising go through the `sdp` crate; this module adds the
//! offer/answer rules the switch needs: pick the first usable audio stream, map payload
//! types to [`Codec`]s, find the telephone-event payload type (never assumed to be 101),
//! work out direction and hold, and keep the answer's m= lines aligned with the offer.
//! The outcome is media's own [`StreamParams`]: media consumes what this module
//! produces and never imports it. SRTP keys travel in `a=crypto` (RFC 4568,
//! `crypto.rs`); which stream is acceptable depends on the trunk's
//! [`SrtpPolicy`]. Pure functions: no I/O, no clock (a fresh SRTP key is the
//! only random thing they make).

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use ::sdp::description::common::{Attribute, ConnectionInformation};
use ::sdp::description::media::MediaDescription;
use ::sdp::description::session::SessionDescription;

use crate::media::codec::Codec;
use crate::media::srtp::{SrtpKey, SrtpParams, SrtpPolicy};
use crate::media::stream::{Direction, StreamParams};

mod build;
pub mod crypto;
pub use build::{build_answer, build_offer};
pub use crypto::{CryptoLine, OfferCrypto};

/// Packet time we ask for and send (RFC 4566 §6 `a=ptime`); 20 ms is the G.711 norm.
pub const PTIME_MS: u32 = 20;

/// Why an SDP body cannot be used. `status_code` gives the SIP response to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not valid SDP (RFC 4566 §5): answer 400.
    #[error("malformed SDP body: {0}")]
    Malformed(String),
    /// Valid SDP, but no audio m= line we could use (all absent, port 0, a transport
    /// other than RTP/AVP and RTP/SAVP, or refused by the trunk's SRTP policy).
    #[error("SDP offers no usable audio stream: {0}")]
    NoAudio(String),
    /// The audio stream has no PCMU/PCMA that we also accept.
    #[error("no codec in common: {0}")]
    NoCommonCodec(String),
    /// Valid SDP that asks for something we do not do (domain name or multicast in c=).
    #[error("unsupported SDP: {0}")]
    Unsupported(String),
}

impl SdpError {
    /// SIP status for rejecting the INVITE: 400 for a malformed body, otherwise
    /// 488 Not Acceptable Here (RFC 3261 §21.4.26). 415 for a non-SDP Content-Type is the
    /// inbound gate's job (`sip::inspect`), before the body gets here.
    pub fn status_code(&self) -> u16 {
        match self {
            SdpError::Malformed(_) => 400,
            _ => 488,
        }
    }
}

/// A direction attribute's stream direction (RFC 4566 §6), if `key` is one.
fn direction_from_attribute(key: &str) -> Option<Direction> {
    match key {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// One m= line of the remote description, kept so the answer can mirror the offer's
/// line count and order (RFC 3264 §6: rejected streams stay, with port 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub media: String,
    pub proto: String,
    pub formats: Vec<String>,
}

/// The audio stream of a remote SDP (an offer, or an answer to our offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP: media-level c= if present, else session-level (RFC 4566 §5.7).
    pub addr: IpAddr,
    pub port: u16,
    /// G.711 codecs with their payload types, in the remote's preference order.
    pub codecs: Vec<(Codec, u8)>,
    /// Payload type of `telephone-event/8000` (RFC 4733), if offered.
    pub telephone_event_pt: Option<u8>,
    /// `a=ptime`, media level else session level.
    pub ptime: Option<u32>,
    /// The remote's direction: media level overrides session level; default sendrecv.
    pub direction: Direction,
    /// Remote put us on hold: sendonly/inactive, or the RFC 2543 `c=0.0.0.0` form that
    /// RFC 3264 §8.4 says we must still understand.
    pub hold: bool,
    /// `o=` session id and version; an unchanged version in a re-INVITE means no change
    /// (RFC 3264 §8).
    pub session_id: u64,
    pub session_version: u64,
    /// Every m= line, in order, and which of them is the audio stream we use.
    pub media_lines: Vec<MediaLine>,
    pub audio_index: usize,
    /// The usable `a=crypto` lines of the chosen stream, in the remote's order; empty
    /// for plain RTP (and always empty under `srtp = "off"`).
    pub crypto: Vec<CryptoLine>,
}

/// The outcome of offer/answer for our single audio stream: the parameters media
/// runs the stream with, and the offer's m= lines so an answer can mirror them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub stream: StreamParams,
    media_lines: Vec<MediaLine>,
    audio_index: usize,
}

/// Parse an SDP offer (from an INVITE or re-INVITE) into the audio stream we will use,
/// the first whose transport and keys `srtp` allows.
///
/// A missing G.711 codec is not an error here (so the caller can log what was offered);
/// [`negotiate`] reports it.
pub fn parse_offer(body: &[u8], srtp: SrtpPolicy) -> Result<RemoteMedia, SdpError> {
    let desc = unmarshal(body)?;
    remote_media(&desc, srtp)
}

/// Choose the codec for an answer: the first codec in the *offerer's* order that we also
/// support (RFC 3264 §6.1 lets the answerer choose; we follow the caller's preference so
/// both ends agree without transcoding). Our direction mirrors the offer's.
///
/// An offer with `a=crypto` is answered with SRTP: the first line's suite and tag, and a
/// fresh key of ours (RFC 4568 §7.1.2).
pub fn negotiate(offer: &RemoteMedia, our_codecs: &[Codec]) -> Result<Negotiated, SdpError> {
    let srtp = offer.crypto.first().map(|c| SrtpParams {
        suite: c.suite,
        tag: c.tag,
        local: SrtpKey::random(),
        remote: c.key.clone(),
    });
    negotiated(offer, our_codecs, srtp)
}

fn negotiated(
    offer: &RemoteMedia,
    our_codecs: &[Codec],
    srtp: Option<SrtpParams>,
) -> Result<Negotiated, SdpError> {
    let (codec, pt) = offer
        .codecs
        .iter()
        .copied()
        .find(|(c, _)| our_codecs.contains(c))
        .ok_or_else(|| no_common_codec(offer, our_codecs))?;
    Ok(Negotiated {
        stream: StreamParams {
            codec,
            pt,
            telephone_event_pt: offer.telephone_event_pt,
            remote: SocketAddr::new(offer.addr, offer.port),
            remote_ptime: offer.ptime,
            direction: offer.direction.mirrored(),
            hold: offer.hold,
            srtp,
        },
        media_lines: offer.media_lines.clone(),
        audio_index: offer.audio_index,
    })
}

/// Parse the answer to an offer we made with `offered` codecs (in our 200 for an
/// offerless INVITE, answered in the ACK; or our INVITE to an agent). RFC 3264 §6.1: the
/// answer may only use what we offered, so the first answered codec that we offered wins;
/// codecs we never offered are ignored rather than failing the call.
///
/// `our_offer` is the SDP we sent: an answer's `a=crypto` must repeat the tag and suite of
/// one of its lines (RFC 4568 §7.1.3), and that line holds our key.
pub fn parse_answer(
    body: &[u8],
    offered: &[Codec],
    srtp: SrtpPolicy,
    our_offer: &[u8],
) -> Result<Negotiated, SdpError> {
    let answer = parse_offer(body, srtp)?;
    let params = match answer.crypto.first() {
        None => None,
        Some(theirs) => {
            let ours = offered_crypto(our_offer);
            let Some(mine) = ours
                .iter()
                .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)
            else {
                return Err(SdpError::NoAudio(format!(
                    "the answer's a=crypto tag {} ({}) matches no line of our offer",
                    theirs.tag,
                    theirs.suite.name()
                )));
            };
            Some(SrtpParams {
                suite: theirs.suite,
                tag: theirs.tag,
                local: mine.key.clone(),
                remote: theirs.key.clone(),
            })
        }
    };
    negotiated(&answer, offered, params)
}

/// The `a=crypto` lines of our own offer's audio stream.
fn offered_crypto(our_offer: &[u8]) -> Vec<CryptoLine> {
    unmarshal(our_offer)
        .ok()
        .and_then(|d| {
            d.media_descriptions
                .into_iter()
                .find(|m| m.media_name.media == "audio")
        })
        .map(|m| crypto_lines(&m.attributes).0)
        .unwrap_or_default()
}

/// The usable `a=crypto` lines and, for the others, why not.
fn crypto_lines(attrs: &[Attribute]) -> (Vec<CryptoLine>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for a in attrs.iter().filter(|a| a.key == "crypto") {
        match crypto::parse(a.value.as_deref().unwrap_or("")) {
            Ok(line) => ok.push(line),
            Err(why) => bad.push(why),
        }
    }
    (ok, bad)
}

/// How an audio m= line's transport relates to SRTP (RFC 3551, RFC 3711 §12).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plain,
    Secure,
    Other,
}

/// Whether `srtp` lets us use this audio stream, and with which keys; the error says why not.
fn acceptable(
    transport: Transport,
    proto: &str,
    md: &MediaDescription,
    srtp: SrtpPolicy,
) -> Result<Vec<CryptoLine>, String> {
    let (lines, bad) = crypto_lines(&md.attributes);
    let no_keys = || {
        if bad.is_empty() {
            format!("{proto} without a=crypto")
        } else {
            format!("{proto} with no usable a=crypto ({})", bad.join("; "))
        }
    };
    match (transport, srtp) {
        (Transport::Other, _) => Err(format!(
            "uses {proto}; only RTP/AVP and RTP/SAVP are supported"
        )),
        (Transport::Secure, SrtpPolicy::Off) => {
            Err(format!("uses {proto} and the trunk's srtp is \"off\""))
        }
        // A plain stream's a=crypto is an offer we may decline by ignoring it (RFC 4568 §5.1).
        (Transport::Plain, SrtpPolicy::Off) => Ok(Vec::new()),
        (Transport::Plain, SrtpPolicy::Optional) => Ok(lines),
        (Transport::Secure, _) | (Transport::Plain, SrtpPolicy::Required) if lines.is_empty() => {
            Err(if srtp == SrtpPolicy::Required {
                format!("{}; the trunk's srtp is \"required\"", no_keys())
            } else {
                no_keys()
            })
        }
        (_, _) => Ok(lines),
    }
}

fn unmarshal(body: &[u8]) -> Result<SessionDescription, SdpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SdpError::Malformed(
            "the body is empty; an SDP offer starts with `v=0`".into(),
        ));
    }
    SessionDescription::unmarshal(&mut Cursor::new(body)).map_err(|e| {
        SdpError::Malformed(format!(
            "{e} (RFC 4566 §5 line order: v o s [i u e p c b] t [a] m...)"
        ))
    })
}

fn remote_media(desc: &SessionDescription, srtp: SrtpPolicy) -> Result<RemoteMedia, SdpError> {
    let mut media_lines = Vec::with_capacity(desc.media_descriptions.len());
    let mut audio: Option<(usize, &MediaDescription, Vec<CryptoLine>)> = None;
    let mut skipped = Vec::new();
    for (i, md) in desc.media_descriptions.iter().enumerate() {
        let name = &md.media_name;
        media_lines.push(MediaLine {
            media: name.media.clone(),
            proto: name.protos.join("/"),
            formats: name.formats.clone(),
        });
        if audio.is_some() || name.media != "audio" {
            continue;
        }
        if name.port.value == 0 {
            skipped.push(format!("m= line {} is audio with port 0 (disabled)", i + 1));
            continue;
        }
        let proto = name.protos.join("/");
        match acceptable(transport_of(&name.protos), &proto, md, srtp) {
            Ok(crypto) => audio = Some((i, md, crypto)),
            Err(why) => skipped.push(format!("m= line {}: {why}", i + 1)),
        }
    }
    let Some((audio_index, md, crypto)) = audio else {
        let why = if skipped.is_empty() {
            "there is no m=audio line".to_string()
        } else {
            skipped.join("; ")
        };
        return Err(SdpError::NoAudio(why));
    };

    let conn = md
        .connection_information
        .as_ref()
        .or(desc.connection_information.as_ref())
        .ok_or_else(|| {
            SdpError::Malformed(format!(
                "m= line {} has no c= line and there is none at session level (RFC 4566 §5.7)",
                audio_index + 1
            ))
        })?;
    let addr = connection_addr(conn)?;
    let port = u16::try_from(md.media_name.port.value).map_err(|_| {
        SdpError::Malformed(format!(
            "m= port {} is out of range",
            md.media_name.port.value
        ))
    })?;

    let (codecs, telephone_event_pt) = classify_formats(md);
    let ptime = attr_value(&md.attributes, "ptime")
        .or_else(|| attr_value(&desc.attributes, "ptime"))
        .and_then(|v| v.trim().parse::<u32>().ok());
    let direction = direction_of(&md.attributes)
        .or_else(|| direction_of(&desc.attributes))
        .unwrap_or(Direction::SendRecv);
    let hold =
        matches!(direction, Direction::SendOnly | Direction::Inactive) || addr.is_unspecified();

    Ok(RemoteMedia {
        addr,
        port,
        codecs,
        telephone_event_pt,
        ptime,
        direction,
        hold,
        session_id: desc.origin.session_id,
        session_version: desc.origin.session_version,
        media_lines,
        audio_index,
        crypto,
    })
}

/// RTP/AVP, or RTP/AVPF which an RTP/AVP endpoint can treat the same (RFC 4585 §3.4);
/// their SRTP forms RTP/SAVP (RFC 3711 §12) and RTP/SAVPF (RFC 5124).
fn transport_of(protos: &[String]) -> Transport {
    match protos
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["RTP", "AVP"] | ["RTP", "AVPF"] => Transport::Plain,
        ["RTP", "SAVP"] | ["RTP", "SAVPF"] => Transport::Secure,
        _ => Transport::Other,
    }
}

fn connection_addr(conn: &ConnectionInformation) -> Result<IpAddr, SdpError> {
    let Some(address) = conn.address.as_ref() else {
        return Err(SdpError::Malformed("c= line has no address".into()));
    };
    // Multicast addresses may carry /ttl and /count suffixes (RFC 4566 §5.7).
    let host = address.address.split('/').next().unwrap_or("");
    let ip: IpAddr = host.parse().map_err(|_| {
        SdpError::Unsupported(format!(
            "c= address `{host}` is not an IP literal; domain names in SDP are not resolved"
        ))
    })?;
    let family_ok = match conn.address_type.as_str() {
        "IP4" => ip.is_ipv4(),
        "IP6" => ip.is_ipv6(),
        _ => false,
    };
    if !family_ok {
        return Err(SdpError::Malformed(format!(
            "c= says {} but the address is `{host}`",
            conn.address_type
        )));
    }
    if ip.is_multicast() {
        return Err(SdpError::Unsupported(format!(
            "c= address {ip} is multicast"
        )));
    }
    Ok(ip)
}

/// An initial offer must name one host we can send to: not the unspecified
/// address (RFC 3264 §8.4 allows `c=0.0.0.0` only to put an existing stream
/// on hold), not broadcast, not multicast (RFC 4566 §5.7; we do no multicast).
/// Anything else would aim our RTP at a whole network or nowhere.
pub fn check_initial_address(addr: IpAddr) -> Result<(), SdpError> {
    let ip = addr.to_canonical();
    let what = if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_multicast() {
        "multicast"
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        "broadcast"
    } else {
        return Ok(());
    };
    Err(SdpError::Unsupported(format!(
        "c= address {addr} is {what}; an offer needs one unicast host"
    )))
}

/// Map the m= formats to codecs and the telephone-event PT, keeping the offer's order.
/// rtpmap names are case-insensitive (RFC 4566 §6 via RFC 4855 §3); static PTs 0 and 8
/// need no rtpmap (RFC 3551 §6). Only 8 kHz mono is G.711 as we run it, and RFC 4733 §2.5.1
/// wants telephone-event at the audio clock rate, so other rates are ignored.
fn classify_formats(md: &MediaDescription) -> (Vec<(Codec, u8)>, Option<u8>) {
    let mut codecs = Vec::new();
    let mut dtmf = None;
    for fmt in &md.media_name.formats {
        let Ok(pt) = fmt.parse::<u8>() else { continue };
        if pt > 127 {
            continue;
        }
        match rtpmap_for(&md.attributes, pt) {
            Some((name, rate, channels)) => {
                if rate != 8000 || !matches!(channels, None | Some(1)) {
                    continue;
                }
                if name.eq_ignore_ascii_case("PCMU") {
                    codecs.push((Codec::Pcmu, pt));
                } else if name.eq_ignore_ascii_case("PCMA") {
                    codecs.push((Codec::Pcma, pt));
                } else if name.eq_ignore_ascii_case("telephone-event") && dtmf.is_none() {
                    dtmf = Some(pt);
                }
            }
            None => match pt {
                0 => codecs.push((Codec::Pcmu, pt)),
                8 => codecs.push((Codec::Pcma, pt)),
                _ => {}
            },
        }
    }
    (codecs, dtmf)
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]` for `pt`, if present and well-formed.
fn rtpmap_for(attrs: &[Attribute], pt: u8) -> Option<(&str, u32, Option<u32>)> {
    attrs
        .iter()
        .filter(|a| a.key == "rtpmap")
        .filter_map(|a| a.value.as_deref())
        .find_map(|v| {
            let (num, rest) = v.trim().split_once(char::is_whitespace)?;
            if num.parse::<u8>().ok()? != pt {
                return None;
            }
            let mut parts = rest.trim().split('/');
            let name = parts.next()?;
            let rate = parts.next()?.trim().parse().ok()?;
            let channels = parts.next().and_then(|c| c.trim().parse().ok());
            Some((name, rate, channels))
        })
}

fn attr_value<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_deref())
}

/// The last direction attribute wins if several are given (none is legal; be tolerant).
fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .filter_map(|a| direction_from_attribute(&a.key))
        .next_back()
}

fn no_common_codec(offer: &RemoteMedia, ours: &[Codec]) -> SdpError {
    let offered = offer
        .media_lines
        .get(offer.audio_index)
        .map(|l| l.formats.join(" "))
        .unwrap_or_default();
    let ours: Vec<String> = ours
        .iter()
        .map(|c| format!("{} ({})", c.name(), c.payload_type()))
        .collect();
    SdpError::NoCommonCodec(format!(
        "the audio stream offers payload types [{offered}]; we accept {}",
        if ours.is_empty() {
            "nothing (no codecs configured)".to_string()
        } else {
            ours.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_crypto;
