//! A TCP (or TLS) byte stream through the framer, cut into pieces at
//! points the input chooses: the first byte says how many cuts, the next
//! bytes where. Every framed message goes through the gate. Whatever the
//! cuts, the framer must yield the same messages and the same error as when
//! the whole stream arrives at once (a framer that depends on where reads
//! happen to end splits messages differently under load).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpswitch::sip::inspect::{inspect, Limits};
use tpswitch::sip::transport::{Frame, FrameError, FrameLimits, Framer};

/// Push `pieces` one by one and drain after each; stop at the first error.
fn frame(pieces: &[&[u8]]) -> (Vec<Frame>, Option<FrameError>, Option<Vec<u8>>) {
    let mut f = Framer::new(FrameLimits {
        max_header_bytes: 4096,
        max_message_bytes: 16384,
    });
    let mut out = Vec::new();
    for p in pieces {
        f.push(p);
        loop {
            match f.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => {
                    let answer = f.error_answer(&e);
                    return (out, Some(e), answer);
                }
            }
        }
    }
    (out, None, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16);
    let (cuts, stream) = rest.split_at(n.min(rest.len()));
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| usize::from(*c) * stream.len() / 256)
        .collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut at = 0;
    for p in points {
        pieces.push(&stream[at..p]);
        at = p;
    }
    pieces.push(&stream[at..]);

    let (cut, cut_err, cut_answer) = frame(&pieces);
    let (whole, whole_err, _) = frame(&[stream]);
    // An error ends the connection at once, so frames after it never exist;
    // without errors both must agree exactly.
    if cut_err.is_none() && whole_err.is_none() {
        assert_eq!(
            cut, whole,
            "the framing depends on where the stream was cut"
        );
    } else {
        let shorter = cut.len().min(whole.len());
        assert_eq!(
            cut[..shorter],
            whole[..shorter],
            "frames before the error differ"
        );
    }
    let limits = Limits::default();
    for m in &cut {
        if let Frame::Message(b) = m {
            let _ = inspect(b, &limits);
        }
    }
    if let Some(a) = cut_answer {
        let _ = inspect(&a, &limits);
    }
});
