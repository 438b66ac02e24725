//! Session keys and the default transforms of RFC 3711: keys derived from the
//! master key by AES-CM (§4.3), payloads encrypted with AES in counter mode
//! (§4.1.1) and packets authenticated with HMAC-SHA1 (§4.2.1).
//!
//! Everything that costs per key is done once here, when the keys are set:
//! the AES key schedule and HMAC's padded key blocks. A packet then costs one
//! copy of each and the blocks it covers (issue 15: `webrtc-srtp` expanded the
//! AES key for every packet).

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128Enc;
use hmac::{Hmac, KeyInit as _, Mac};
use sha1::Sha1;

use super::{SrtpKey, MASTER_KEY_LEN, MASTER_SALT_LEN};

type HmacSha1 = Hmac<Sha1>;
type Aes128Ctr = ctr::Ctr128BE<Aes128Enc>;
type Aes128CtrCore = ctr::CtrCore<Aes128Enc, ctr::flavors::Ctr128BE>;

/// n_a, the session authentication key of the HMAC-SHA1 transform: 160 bits
/// (RFC 3711 §8.2, RFC 4568 §6.2.1).
const AUTH_KEY_LEN: usize = 20;
/// The AES block.
const BLOCK: usize = 16;

/// Which keys to derive: RTP's (labels 0, 1, 2) or RTCP's (3, 4, 5), RFC 3711 §4.3.2.
#[derive(Clone, Copy)]
pub(super) enum Keys {
    Rtp,
    Rtcp,
}

impl Keys {
    /// The labels of the encryption key, the authentication key and the salt.
    fn labels(self) -> [u8; 3] {
        match self {
            Keys::Rtp => [0x00, 0x01, 0x02],
            Keys::Rtcp => [0x03, 0x04, 0x05],
        }
    }
}

/// One direction's session keys for RTP or for RTCP, ready to use.
pub(super) struct SessionKeys {
    cipher: Aes128Enc,
    salt: [u8; MASTER_SALT_LEN],
    auth: HmacSha1,
}

impl SessionKeys {
    /// RFC 3711 §4.3.1 with a key derivation rate of 0, the only rate SDES
    /// allows without a `KDR=` parameter (RFC 4568 §6.3.1): `r` is then 0, so
    /// `x` is the master salt with the label XORed into its eighth byte
    /// (key_id = label || r, aligned to the salt's last bit).
    pub(super) fn derive(master: &SrtpKey, keys: Keys) -> SessionKeys {
        let prf = Aes128Enc::new(&master.key().into());
        let master_salt = master.salt();
        let [enc, auth, salt] = keys.labels();
        let enc: [u8; MASTER_KEY_LEN] = prf_output(&prf, &master_salt, enc);
        let auth: [u8; AUTH_KEY_LEN] = prf_output(&prf, &master_salt, auth);
        let salt: [u8; MASTER_SALT_LEN] = prf_output(&prf, &master_salt, salt);
        SessionKeys {
            cipher: Aes128Enc::new(&enc.into()),
            salt,
            // HMAC takes a key of any length (RFC 2104 §2); 20 bytes never fails.
            auth: HmacSha1::new_from_slice(&auth)
                .unwrap_or_else(|_| unreachable!("HMAC accepts a key of any length")),
        }
    }

    /// XOR the AES-CM keystream for packet `index` of `ssrc` into `data`
    /// (RFC 3711 §4.1.1): IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
    /// Encrypting and decrypting are the same operation. The counter is the
    /// IV's last 16 bits, enough for 2^16 blocks: 1 MiB, more than a datagram.
    pub(super) fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; BLOCK];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        // The index is 48 bits (SRTP) or 31 (SRTCP): bytes 8..14 of the IV.
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let core = Aes128CtrCore::inner_iv_init(self.cipher.clone(), &iv.into());
        let mut ctr = Aes128Ctr::from_core(core);
        ctr.apply_keystream(data);
    }

    /// HMAC-SHA1 over `parts` in order (RFC 3711 §4.2.1), untruncated.
    pub(super) fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        self.mac(parts).finalize().into_bytes().into()
    }

    /// Whether `tag` is the left-most bytes of HMAC-SHA1 over `parts`, compared
    /// in constant time so a forger learns nothing from how long a refusal took.
    pub(super) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.mac(parts).verify_truncated_left(tag).is_ok()
    }

    /// The keyed HMAC (its padded key hashed once, in `derive`) fed `parts`.
    fn mac(&self, parts: &[&[u8]]) -> HmacSha1 {
        let mut mac = self.auth.clone();
        for p in parts {
            mac.update(p);
        }
        mac
    }
}

/// PRF_n(k_master, x) of RFC 3711 §4.3.3: AES-CM keystream from IV = x * 2^16,
/// cut to N bytes; x = master salt XOR (label * 2^48).
fn prf_output<const N: usize>(
    prf: &Aes128Enc,
    master_salt: &[u8; MASTER_SALT_LEN],
    label: u8,
) -> [u8; N] {
    let mut x = *master_salt;
    x[7] ^= label;
    let mut out = [0u8; N];
    for (counter, chunk) in (0u16..).zip(out.chunks_mut(BLOCK)) {
        let mut block = [0u8; BLOCK];
        block[..MASTER_SALT_LEN].copy_from_slice(&x);
        block[MASTER_SALT_LEN..].copy_from_slice(&counter.to_be_bytes());
        let mut block = block.into();
        prf.encrypt_block(&mut block);
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 Appendix B.3: the session keys derived from its master key and salt.
    #[test]
    fn key_derivation_matches_rfc_3711_appendix_b3() {
        let mut ks = [0u8; 30];
        ks[..16].copy_from_slice(&hex("E1F97A0D3E018BE0D64FA32C06DE4139"));
        ks[16..].copy_from_slice(&hex("0EC675AD498AFEEBB6960B3AABE6"));
        let master = SrtpKey::from_bytes(ks);
        let prf = Aes128Enc::new(&master.key().into());
        let enc: [u8; 16] = prf_output(&prf, &master.salt(), 0);
        let salt: [u8; 14] = prf_output(&prf, &master.salt(), 2);
        let auth: [u8; 20] = prf_output(&prf, &master.salt(), 1);
        assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            auth.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream for its session key, salt
    /// and IV (SSRC and index zero, so the IV is the salt followed by 0000).
    #[test]
    fn keystream_matches_rfc_3711_appendix_b2() {
        let keys = SessionKeys {
            cipher: Aes128Enc::new(hex("2B7E151628AED2A6ABF7158809CF4F3C")[..].into()),
            salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
            auth: HmacSha1::new_from_slice(&[0; 20]).unwrap(),
        };
        let mut zeros = [0u8; 48];
        keys.apply_keystream(0, 0, &mut zeros);
        let want = hex(concat!(
            "E03EAD0935C95E80E166B16DD92B4EB4",
            "D23513162B02D0F72A43A2FE4A5F97AB",
            "41E95B3BB0A2E8DD477901E4FCA894C0"
        ));
        assert_eq!(zeros.to_vec(), want);
    }
}
