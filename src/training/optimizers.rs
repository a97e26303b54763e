//! Optimizers by Keras 3 name with Keras 3.15 defaults; extra hyper-parameters come from
//! `--optimizer-args key=value,...`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use distk_engine::optimizer::{Optimizer, OptimizerKind};

/// The optimizer names `--optimizer` accepts.
pub const OPTIMIZERS: &[&str] = &["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"];

/// Keras' default learning rate of each optimizer.
pub fn default_learning_rate(name: &str) -> f32 {
    match name {
        "sgd" => 0.01,
        _ => 0.001,
    }
}

fn parse_args(args: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for part in args.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            bail!("--optimizer-args: `{part}` is not key=value (e.g. momentum=0.9,nesterov=true)");
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// Builds an optimizer from its Keras name, learning rate (None: Keras' default) and extra args.
pub fn parse_optimizer(name: &str, learning_rate: Option<f32>, args: &str) -> Result<Optimizer> {
    let name = name.to_ascii_lowercase();
    let mut a = parse_args(args)?;
    let f = |a: &mut BTreeMap<String, String>, key: &str, default: f32| -> Result<f32> {
        match a.remove(key) {
            None => Ok(default),
            Some(v) => v.parse::<f32>().map_err(|_| anyhow::anyhow!("--optimizer-args: {key}={v} is not a number")),
        }
    };
    let lr = learning_rate.unwrap_or(default_learning_rate(&name));
    let (kind, default_wd) = match name.as_str() {
        "sgd" => {
            let momentum = f(&mut a, "momentum", 0.0)?;
            let nesterov = match a.remove("nesterov").as_deref() {
                None | Some("false") | Some("False") | Some("0") => false,
                Some("true") | Some("True") | Some("1") => true,
                Some(other) => bail!("--optimizer-args: nesterov={other} is not true or false"),
            };
            (OptimizerKind::Sgd { momentum, nesterov }, None)
        }
        "adam" | "adamw" => (
            OptimizerKind::Adam {
                beta_1: f(&mut a, "beta_1", 0.9)?,
                beta_2: f(&mut a, "beta_2", 0.999)?,
                epsilon: f(&mut a, "epsilon", 1e-7)?,
            },
            (name == "adamw").then_some(0.004),
        ),
        "rmsprop" => {
            let centered = matches!(a.remove("centered").as_deref(), Some("true") | Some("True") | Some("1"));
            (
                OptimizerKind::RmsProp {
                    rho: f(&mut a, "rho", 0.9)?,
                    momentum: f(&mut a, "momentum", 0.0)?,
                    epsilon: f(&mut a, "epsilon", 1e-7)?,
                    centered,
                },
                None,
            )
        }
        "adagrad" => (
            OptimizerKind::Adagrad {
                initial_accumulator_value: f(&mut a, "initial_accumulator_value", 0.1)?,
                epsilon: f(&mut a, "epsilon", 1e-7)?,
            },
            None,
        ),
        "adadelta" => {
            (OptimizerKind::Adadelta { rho: f(&mut a, "rho", 0.95)?, epsilon: f(&mut a, "epsilon", 1e-7)? }, None)
        }
        other => bail!("unknown optimizer `{other}`: use one of {}", OPTIMIZERS.join(", ")),
    };
    let weight_decay = match a.remove("weight_decay") {
        Some(v) => {
            Some(v.parse::<f32>().map_err(|_| anyhow::anyhow!("--optimizer-args: weight_decay={v} is not a number"))?)
        }
        None => default_wd,
    };
    if let Some(k) = a.keys().next() {
        bail!("--optimizer-args: `{k}` is not a hyper-parameter of {name}");
    }
    Ok(Optimizer { kind, learning_rate: lr, weight_decay })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_defaults_and_args() {
        let o = parse_optimizer("adamw", None, "").unwrap();
        assert_eq!(o.learning_rate, 0.001);
        assert_eq!(o.weight_decay, Some(0.004));
        let o = parse_optimizer("sgd", Some(0.1), "momentum=0.9,nesterov=true").unwrap();
        assert_eq!(o.kind, OptimizerKind::Sgd { momentum: 0.9, nesterov: true });
        assert!(parse_optimizer("sgd", None, "beta_1=0.9").unwrap_err().to_string().contains("not a hyper-parameter"));
        assert!(parse_optimizer("lion", None, "").is_err());
    }
}
