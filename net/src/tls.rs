//! TLS material for the QUIC endpoints (rustls with the ring provider only: a second provider in the
//! binary makes rustls panic at start): the server's identity (a fresh self-signed rcgen certificate,
//! or PEM files the operator gives), and the two ways a worker trusts the server: pinning the
//! certificate's SHA-256, or a CA file.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use subtle::ConstantTimeEq;

use crate::error::{NetError, Result};

/// The one crypto provider of the binary.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Lower-case hex of a fingerprint.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a 64-digit hex SHA-256 (colons and case ignored).
pub fn parse_sha256(text: &str) -> Result<[u8; 32]> {
    let digits: String = text.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    let bad = || NetError::Tls(format!("`{text}` is not a SHA-256 fingerprint (64 hexadecimal digits)"));
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A server's certificate chain and key, and the SHA-256 of its leaf certificate.
pub struct Identity {
    /// DER certificates, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the DER leaf certificate (what workers pin).
    pub sha256: [u8; 32],
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { chain: self.chain.clone(), key: self.key.clone_key(), sha256: self.sha256 }
    }
}

impl Identity {
    /// A fresh self-signed certificate for `localhost` and `names` (host names or IP addresses).
    pub fn self_signed(names: &[&str]) -> Result<Self> {
        let mut all = vec!["localhost".to_string()];
        all.extend(names.iter().map(|s| s.to_string()));
        let ck = rcgen::generate_simple_self_signed(all).map_err(|e| NetError::Tls(format!("certificate: {e}")))?;
        let cert = ck.cert.der().clone();
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).map_err(|e| NetError::Tls(e.to_string()))?;
        Ok(Identity { sha256: sha256(&cert), chain: vec![cert], key })
    }

    /// Reads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self> {
        let cert_pem =
            std::fs::read(cert).map_err(|e| NetError::Tls(format!("cannot read {}: {e}", cert.display())))?;
        let key_pem = std::fs::read(key).map_err(|e| NetError::Tls(format!("cannot read {}: {e}", key.display())))?;
        Self::from_pem(&cert_pem, &key_pem)
            .map_err(|e| NetError::Tls(format!("{} / {}: {e}", cert.display(), key.display())))
    }

    /// Parses a PEM certificate chain and a PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| NetError::Tls(format!("certificate PEM: {e}")))?;
        let leaf = chain.first().ok_or_else(|| NetError::Tls("no certificate in the PEM".into()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| NetError::Tls(format!("key PEM: {e}")))?;
        Ok(Identity { sha256: sha256(leaf), chain, key })
    }

    /// A secret derived from the private key (so the same for every process presenting this
    /// identity, and unknown to anyone without the key): the key of QUIC stateless resets.
    pub fn reset_secret(&self) -> [u8; 32] {
        let mut material = b"distk-ps stateless reset v1".to_vec();
        material.extend_from_slice(self.key.secret_der());
        sha256(&material)
    }

    /// The certificate chain and key as PEM text (to keep a self-signed identity across restarts).
    pub fn to_pem(&self) -> (String, String) {
        let cert = self.chain.iter().map(|c| pem("CERTIFICATE", c.as_ref())).collect();
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        (cert, pem(label, self.key.secret_der()))
    }

    /// A rustls server configuration (TLS 1.3) presenting this identity with `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| NetError::Tls(e.to_string()))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// How a client trusts the server.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Only the certificate with this SHA-256 (the name is not checked; TLS 1.3 signatures are).
    Pinned([u8; 32]),
    /// Certificates chaining to these roots, for the server name.
    Roots(Arc<rustls::RootCertStore>),
}

impl Trust {
    /// Reads a PEM CA file.
    pub fn ca_file(path: &Path) -> Result<Self> {
        let pem = std::fs::read(path).map_err(|e| NetError::Tls(format!("cannot read {}: {e}", path.display())))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| NetError::Tls(format!("{}: {e}", path.display())))?;
            roots.add(cert).map_err(|e| NetError::Tls(format!("{}: {e}", path.display())))?;
        }
        if roots.is_empty() {
            return Err(NetError::Tls(format!("{}: no certificate in the CA file", path.display())));
        }
        Ok(Trust::Roots(Arc::new(roots)))
    }

    /// A rustls client configuration (TLS 1.3) trusting the server this way, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<rustls::ClientConfig> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Tls(e.to_string()))?;
        let mut cfg = match self {
            Trust::Pinned(sha256) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    sha256: Some(*sha256),
                    seen: std::sync::Mutex::new(None),
                    provider,
                }))
                .with_no_client_auth(),
            Trust::Roots(roots) => builder.with_root_certificates(roots.clone()).with_no_client_auth(),
        };
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

/// Checks the server certificate by its SHA-256: with a pin, only that certificate is accepted;
/// without (trust on first use), any is, and its SHA-256 is recorded for the caller to compare with
/// what it remembers before sending anything. TLS signatures are verified either way.
#[derive(Debug)]
pub struct Pinned {
    sha256: Option<[u8; 32]>,
    seen: std::sync::Mutex<Option<[u8; 32]>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Pinned {
    /// A verifier pinning `sha256`.
    pub fn new(sha256: [u8; 32]) -> Self {
        Pinned { sha256: Some(sha256), seen: std::sync::Mutex::new(None), provider: provider() }
    }

    /// A verifier that accepts any certificate and records it (trust on first use).
    pub fn first_use() -> Self {
        Pinned { sha256: None, seen: std::sync::Mutex::new(None), provider: provider() }
    }

    /// The SHA-256 of the last certificate the server presented.
    pub fn seen(&self) -> Option<[u8; 32]> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A TLS 1.3 client configuration using this verifier, offering `alpn`.
    pub fn client_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<rustls::ClientConfig> {
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let got = sha256(end_entity);
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(got);
        match self.sha256 {
            Some(pin) if !bool::from(got.ct_eq(&pin)) => Err(rustls::Error::General(format!(
                "the server certificate's SHA-256 is {}, not the pinned {}",
                hex(&got),
                hex(&pin)
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }
    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        // Every configuration here offers TLS 1.3 only, so a TLS 1.2 handshake never gets this far.
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOfferedOrEnabled))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_and_identities_survive_pem() {
        let id = Identity::self_signed(&["10.0.0.1"]).unwrap();
        let h = hex(&id.sha256);
        assert_eq!(parse_sha256(&h).unwrap(), id.sha256);
        assert_eq!(parse_sha256(&h.to_uppercase()).unwrap(), id.sha256);
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"zz".repeat(32)).is_err());
        let (cert, key) = id.to_pem();
        let back = Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(back.sha256, id.sha256);
        assert!(back.server_config(&[b"x"]).is_ok(), "the key round-trips too");
    }

    /// A ClientHello offering TLS 1.2 only (no supported_versions extension), as an old client
    /// sends it: ECDHE-ECDSA/RSA AES-128-GCM, x25519, two signature schemes.
    fn tls12_client_hello() -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // no session id
        body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]);
        body.extend_from_slice(&[0x01, 0x00]);
        let ext: &[u8] = &[
            0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d, // supported_groups: x25519
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
            0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04, // signature_algorithms
        ];
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(ext);
        let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut record = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn a_tls12_only_client_is_refused() {
        let id = Identity::self_signed(&[]).unwrap();
        let cfg = Arc::new(id.server_config(&[b"http/1.1"]).unwrap());
        let mut conn = rustls::ServerConnection::new(cfg).unwrap();
        let hello = tls12_client_hello();
        conn.read_tls(&mut hello.as_slice()).unwrap();
        let err = conn.process_new_packets().unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::SupportedVersionsExtensionRequired)
            ),
            "{err:?}"
        );
        // The server answers with a fatal protocol_version alert (level 2, description 70).
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        assert_eq!(out.first(), Some(&0x15), "an alert record: {out:?}");
        assert_eq!(&out[out.len() - 2..], &[2, 70]);
    }
}
