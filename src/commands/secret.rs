//! `distk-gpu secret`: makes a secret of 256 bits from the operating system's random source,
//! appends `{"secret", "identity"}` to the secrets file (created with mode 0600, rewritten
//! atomically), and writes the bare secret to `--out FILE` (mode 0600, a new file) or prints it
//! alone on the last line of stdout.

use std::io::Write;

use anyhow::{Context, Result, bail};
use distk_net::auth::{SecretEntry, Secrets, random_secret};

use crate::cli::SecretArgs;
use crate::data::atomic::{write_private, write_private_new};

/// Makes and records a secret.
pub fn run(args: SecretArgs) -> Result<()> {
    let identity = args.identity.trim();
    if identity.is_empty() || identity.chars().any(|c| c.is_control()) {
        bail!("--identity must be a non-empty name without control characters");
    }
    if let Some(out) = &args.out
        && out.exists()
    {
        bail!("--out {}: the file exists (it may hold someone's secret); choose a new file name", out.display());
    }
    let mut secrets = if args.secrets.exists() { Secrets::load(&args.secrets)? } else { Secrets::default() };
    let secret = random_secret()?;
    // The holder's file first: if the secrets file cannot be written, the new file is removed and
    // nothing was granted.
    if let Some(out) = &args.out {
        if out == &args.secrets {
            bail!("--out and --secrets name the same file: the secret goes to its own file");
        }
        write_private_new(out, |f| Ok(f.write_all(format!("{secret}\n").as_bytes())?))?;
    }
    secrets.0.push(SecretEntry { secret: secret.clone(), identity: identity.to_string() });
    write_private(&args.secrets, |f| {
        serde_json::to_writer_pretty(&mut *f, &secrets.0)?;
        Ok(f.write_all(b"\n")?)
    })
    .with_context(|| format!("cannot write the secrets file {}", args.secrets.display()))
    .inspect_err(|_| {
        if let Some(out) = &args.out {
            let _ = std::fs::remove_file(out);
        }
    })?;
    eprintln!("added a secret for `{identity}` to {} (mode 0600)", args.secrets.display());
    match &args.out {
        Some(out) => eprintln!("wrote the secret to {} (mode 0600): hand it to its holder", out.display()),
        None => println!("{secret}"),
    }
    Ok(())
}
