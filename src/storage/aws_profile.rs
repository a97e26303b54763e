//! The AWS shared configuration files (`~/.aws/credentials`, `~/.aws/config`) as the AWS CLI reads
//! them: the profile `AWS_PROFILE` (else `default`), its keys, credentials before config. The
//! environment always wins; the caller applies only keys the environment does not set.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The keys of a profile distk-gpu uses, as object_store's S3 configuration names them.
const KEYS: [(&str, &str); 5] = [
    ("aws_access_key_id", "aws_access_key_id"),
    ("aws_secret_access_key", "aws_secret_access_key"),
    ("aws_session_token", "aws_session_token"),
    ("region", "aws_region"),
    ("endpoint_url", "aws_endpoint"),
];

/// The settings of `profile` from the two files' texts: object_store key to value. The
/// credentials file names sections `[NAME]`, the config file `[default]` or `[profile NAME]`;
/// nested blocks (`s3 =` followed by indented lines) are skipped.
pub fn profile_settings(credentials: &str, config: &str, profile: &str) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let config_section = if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
    for (text, section) in [(credentials, profile.to_string()), (config, config_section)] {
        for (key, value) in section_pairs(text, &section) {
            if let Some((_, ours)) = KEYS.iter().find(|(k, _)| *k == key) {
                out.entry(*ours).or_insert(value);
            }
        }
    }
    out
}

/// The top-level `key = value` pairs of `[section]` in an INI text.
fn section_pairs(text: &str, section: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            inside = name.split_whitespace().collect::<Vec<_>>().join(" ") == section;
            continue;
        }
        // An indented line belongs to a nested block such as `s3 =`.
        if !inside || line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((k, v)) = trimmed.split_once('=') {
            let value = v.trim();
            if !value.is_empty() {
                pairs.push((k.trim().to_ascii_lowercase(), value.to_string()));
            }
        }
    }
    pairs
}

/// The settings of the profile in effect, read from the files the AWS CLI reads
/// (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, else under `~/.aws`); missing files are empty.
pub fn settings_from_files() -> BTreeMap<&'static str, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| -> String {
        let path = env(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)));
        path.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
    };
    let profile = env("AWS_PROFILE").or_else(|| env("AWS_DEFAULT_PROFILE")).unwrap_or_else(|| "default".into());
    profile_settings(&file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), &file("AWS_CONFIG_FILE", "config"), &profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_profile_credentials_first() {
        let credentials = "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n[work]\naws_access_key_id=W\naws_secret_access_key = WS\naws_session_token = T\n";
        let config = "[default]\nregion = eu-west-1\n[profile work]\nregion = us-east-2\naws_access_key_id = IGNORED\nendpoint_url = http://127.0.0.1:9000\ns3 =\n  endpoint_url = http://nested\n# comment\n[profile other]\nregion = x\n";
        let d = profile_settings(credentials, config, "default");
        assert_eq!(d.get("aws_access_key_id").map(String::as_str), Some("D"));
        assert_eq!(d.get("aws_region").map(String::as_str), Some("eu-west-1"));
        assert!(!d.contains_key("aws_endpoint"));
        let w = profile_settings(credentials, config, "work");
        assert_eq!(w.get("aws_access_key_id").map(String::as_str), Some("W"));
        assert_eq!(w.get("aws_secret_access_key").map(String::as_str), Some("WS"));
        assert_eq!(w.get("aws_session_token").map(String::as_str), Some("T"));
        assert_eq!(w.get("aws_region").map(String::as_str), Some("us-east-2"));
        assert_eq!(w.get("aws_endpoint").map(String::as_str), Some("http://127.0.0.1:9000"));
        assert!(profile_settings(credentials, config, "missing").is_empty());
    }
}
