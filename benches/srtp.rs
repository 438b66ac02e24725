//! One 20 ms G.711 packet (12-byte header, 160-byte payload) protected and
//! unprotected with `AES_CM_128_HMAC_SHA1_80`, as the bridge does for every
//! relayed packet between two SRTP legs: ours (media::srtp), and webrtc-srtp
//! 0.17, which the switch used before, for comparison. No sockets: the
//! transform's own cost, the part of SRTP's price that is not the kernel's.
//!
//! `cargo bench --bench srtp`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use tpswitch::media::srtp::{CryptoSuite, SrtpKey, SrtpParams, SrtpReceiver, SrtpSender};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const PAYLOAD: usize = 160;

fn packet(seq: u16) -> Vec<u8> {
    let mut b = vec![0x80, 0x00];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    b.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    b.resize(12 + PAYLOAD, 0xd5);
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp");
    g.throughput(Throughput::Elements(1));
    let key = SrtpKey::from_bytes([7; 30]);
    let params = SrtpParams {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        tag: 1,
        local: key.clone(),
        remote: key.clone(),
    };

    // Protect then unprotect, each packet a new sequence number, as a relay does.
    let mut tx = SrtpSender::new(&params);
    let mut rx = SrtpReceiver::new(&params);
    let mut seq = 0u16;
    let mut buf = Vec::with_capacity(256);
    g.bench_function("ours protect+unprotect", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&packet(seq));
            seq = seq.wrapping_add(1);
            tx.protect_rtp(&mut buf).ok();
            black_box(rx.unprotect_rtp(&mut buf).ok())
        })
    });

    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let master = key.as_bytes();
    let new = |replay: bool| {
        let opt = replay.then(|| webrtc_srtp::option::srtp_replay_protection(64));
        Context::new(&master[..16], &master[16..], profile, opt, None).ok()
    };
    let (Some(mut wtx), Some(mut wrx)) = (new(false), new(true)) else {
        return;
    };
    let mut seq = 0u16;
    g.bench_function("webrtc-srtp protect+unprotect", |b| {
        b.iter(|| {
            let p = packet(seq);
            seq = seq.wrapping_add(1);
            let Ok(wire) = wtx.encrypt_rtp(&p) else {
                return None;
            };
            black_box(wrx.decrypt_rtp(&wire).ok())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
