//! Datagrams into one media session's receive path (the switch's own
//! receive task, fed by hand on a simulated clock): RTP with G.711 audio,
//! RFC 4733 telephone events, RTCP on either port (RFC 5761 mux), SRTP and
//! SRTCP. The first byte sets the session up (SRTP suite, in-band DTMF, a
//! bridge to a second leg, the telephone-event payload type, the codec);
//! then each record is a control byte, a length byte and that many bytes.
//! With SRTP, records marked so are protected with the peer's key first,
//! so the decrypted packet reaches the decoders too.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tpswitch::media::codec::Codec;
use tpswitch::media::engine::fuzzing::{Harness, Setup};
use tpswitch::media::ports::PortPool;
use tpswitch::media::srtp::CryptoSuite;

struct World {
    rt: tokio::runtime::Runtime,
    pool: PortPool,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| World {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime"),
        pool: PortPool::new("127.0.0.1".parse().expect("literal address"), 61000, 61998),
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    {
        let _guard = w.rt.enter();
        one_input(w, data);
    }
    // The sockets of the input's sessions are dropped by now; their
    // reactor registrations are released only when the runtime's driver
    // turns, which nothing else here does (the switch's runtime turns all
    // the time). Without this each input left about 1 KB behind.
    w.rt.block_on(tokio::task::yield_now());
});

fn one_input(w: &World, data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let setup = Setup {
        srtp: match setup & 3 {
            1 => Some(CryptoSuite::AesCm128HmacSha1_80),
            2 => Some(CryptoSuite::AesCm128HmacSha1_32),
            _ => None,
        },
        inband_dtmf: setup & 4 != 0,
        bridged: setup & 8 != 0,
        telephone_event_pt: (setup & 16 != 0).then_some(101),
        codec: if setup & 32 != 0 {
            Codec::Pcma
        } else {
            Codec::Pcmu
        },
    };
    let Some(mut h) = Harness::new(&w.pool, setup) else {
        return;
    };
    let mut records = 0;
    while let [ctl, len, tail @ ..] = rest {
        records += 1;
        if records > 64 {
            break;
        }
        let n = usize::from(*len).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        rest = next;
        let after = Duration::from_millis(u64::from(ctl >> 3) * 10);
        match ctl & 7 {
            0 | 1 => h.rtp(pkt, after, ctl & 1 == 1),
            2 => h.rtcp(pkt, after),
            3 => h.timer(after),
            _ => h.rtp(pkt, after, true),
        }
    }
    let _ = h.events();
}
