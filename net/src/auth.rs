//! Secrets: the file shared by the parameter server and the job server, a JSON list of
//! `{"secret": "...", "identity": "..."}`. Secrets are compared in constant time against every entry.

use std::path::Path;

use subtle::ConstantTimeEq;

use crate::error::{NetError, Result};

/// One secret and who holds it.
#[derive(Clone, serde::Deserialize, serde::Serialize)]
pub struct SecretEntry {
    /// The bearer secret.
    pub secret: String,
    /// Who holds it.
    pub identity: String,
}

impl std::fmt::Debug for SecretEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretEntry").field("identity", &self.identity).field("secret", &"<hidden>").finish()
    }
}

/// Known secrets.
#[derive(Clone, Debug, Default)]
pub struct Secrets(pub Vec<SecretEntry>);

impl Secrets {
    /// Parses a secrets file's text.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: Vec<SecretEntry> = serde_json::from_str(text).map_err(|e| {
            NetError::Protocol(format!(
                "the secrets file is not a JSON list of {{\"secret\", \"identity\"}} objects: {e}"
            ))
        })?;
        if let Some(e) = v.iter().find(|e| e.secret.len() < 16) {
            return Err(NetError::Protocol(format!(
                "the secret of `{}` is shorter than 16 characters; make one with `distk-gpu secret`",
                e.identity
            )));
        }
        Ok(Secrets(v))
    }

    /// Reads a secrets file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NetError::Protocol(format!("cannot read the secrets file {}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| NetError::Protocol(format!("{}: {e}", path.display())))
    }

    /// The identity holding `secret`, compared in constant time against every entry.
    pub fn identify(&self, secret: &[u8]) -> Option<&str> {
        let mut found = None;
        for e in &self.0 {
            if bool::from(e.secret.as_bytes().ct_eq(secret)) {
                found = Some(e.identity.as_str());
            }
        }
        found
    }
}

/// A new secret of 256 bits from the operating system's random source, as 64 hex digits.
pub fn random_secret() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| NetError::Protocol("the operating system's random source failed".into()))?;
    Ok(crate::tls::hex(&b))
}

/// Reads a secret file (only the secret; surrounding whitespace ignored).
pub fn read_secret_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| NetError::Protocol(format!("cannot read the secret file {}: {e}", path.display())))?;
    let s = text.trim();
    if s.is_empty() {
        return Err(NetError::Protocol(format!("the secret file {} is empty", path.display())));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_identify_their_holders_and_never_print() {
        let s = Secrets::from_json(
            r#"[{"secret":"0123456789abcdef-a","identity":"alice"},{"secret":"0123456789abcdef-b","identity":"bob"}]"#,
        )
        .unwrap();
        assert_eq!(s.identify(b"0123456789abcdef-b"), Some("bob"));
        assert_eq!(s.identify(b"0123456789abcdef-"), None);
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        assert!(Secrets::from_json(r#"[{"secret":"short","identity":"x"}]"#).is_err());
        assert!(Secrets::from_json("{}").is_err());
    }
}
