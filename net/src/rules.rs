//! The server-side update rules of the asynchronous trainers, each applied to the centre straight
//! from a commit's payload slice (`shared/spec/dist-keras.md` §3 gives the originals):
//!
//! - [`Add`]: `C <- C + delta` — DOWNPOUR (accumulated delta), AGN (the residual the worker already
//!   divided by its window), AEASGD and EAMSGD (the elastic difference `E = alpha (W - C_pulled)`).
//! - [`DynSgd`]: `C <- C + delta / (tau + 1)`, `tau` the commits by others since this worker's pull.
//! - [`Adag`]: `C <- C + delta / ((C - C_pulled)^2 / gamma + 1)` per weight, the thesis' ADAG (the
//!   original's class `Experimental`); the server keeps each worker's pulled centre (the thesis'
//!   option 2) so commits carry only the delta.

/// What the server knows about a commit besides its payload.
#[derive(Clone, Copy, Debug)]
pub struct CommitMeta<'a> {
    /// The committing worker.
    pub worker: u32,
    /// Commits applied by anyone since this worker's last pull.
    pub staleness: u64,
    /// The centre this worker last pulled, for rules that ask for it.
    pub pulled_centre: Option<&'a [f32]>,
}

/// A rule that folds a commit into the centre.
pub trait UpdateRule: Send + Sync {
    /// Applies `commit` (as long as the centre) to `centre`.
    fn apply(&self, centre: &mut [f32], commit: &[f32], meta: &CommitMeta<'_>);
    /// Whether the server must keep a copy of each worker's pulled centre for this rule.
    fn needs_pulled_centre(&self) -> bool {
        false
    }
    /// A name for logs.
    fn name(&self) -> &'static str;
}

/// `C <- C + delta`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Add;

impl UpdateRule for Add {
    fn apply(&self, centre: &mut [f32], commit: &[f32], _: &CommitMeta<'_>) {
        for (c, &d) in centre.iter_mut().zip(commit) {
            *c += d;
        }
    }
    fn name(&self) -> &'static str {
        "add"
    }
}

/// `C <- C + delta / (staleness + 1)` (Jiang et al., SIGMOD 2017).
#[derive(Clone, Copy, Debug, Default)]
pub struct DynSgd;

impl UpdateRule for DynSgd {
    fn apply(&self, centre: &mut [f32], commit: &[f32], meta: &CommitMeta<'_>) {
        let scale = 1.0 / (meta.staleness as f32 + 1.0);
        for (c, &d) in centre.iter_mut().zip(commit) {
            *c += d * scale;
        }
    }
    fn name(&self) -> &'static str {
        "dynsgd"
    }
}

/// Per-weight ADAG scaling: `s = 1 / ((C - C_pulled)^2 / gamma + 1)`, `C <- C + s delta`.
#[derive(Clone, Copy, Debug)]
pub struct Adag {
    /// The thesis' gamma (`--elastic-lr`; the thesis used 1e-4).
    pub gamma: f32,
}

impl UpdateRule for Adag {
    fn apply(&self, centre: &mut [f32], commit: &[f32], meta: &CommitMeta<'_>) {
        let inv = 1.0 / self.gamma;
        match meta.pulled_centre {
            Some(pulled) => {
                for ((c, &d), &p) in centre.iter_mut().zip(commit).zip(pulled) {
                    let dist = *c - p;
                    *c += d / (inv * dist * dist + 1.0);
                }
            }
            // A worker that never pulled started from the initial centre: no distance known, add.
            None => Add.apply(centre, commit, meta),
        }
    }
    fn needs_pulled_centre(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "adag"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(staleness: u64, pulled: Option<&[f32]>) -> CommitMeta<'_> {
        CommitMeta { worker: 0, staleness, pulled_centre: pulled }
    }

    #[test]
    fn add_adds() {
        let mut c = vec![1.0, 2.0];
        Add.apply(&mut c, &[0.5, -1.0], &meta(3, None));
        assert_eq!(c, vec![1.5, 1.0]);
    }

    #[test]
    fn dynsgd_divides_by_staleness_plus_one() {
        let mut c = vec![0.0, 0.0];
        DynSgd.apply(&mut c, &[3.0, -6.0], &meta(2, None));
        assert_eq!(c, vec![1.0, -2.0]);
        DynSgd.apply(&mut c, &[1.0, 1.0], &meta(0, None));
        assert_eq!(c, vec![2.0, -1.0]);
    }

    #[test]
    fn adag_scales_each_weight_by_its_distance() {
        // gamma 0.5: s = 1 / (2 D^2 + 1). D = [0, 1, -2] -> s = [1, 1/3, 1/9].
        let mut c = vec![1.0, 2.0, -1.0];
        let pulled = [1.0, 1.0, 1.0];
        Adag { gamma: 0.5 }.apply(&mut c, &[0.9, 0.9, 0.9], &meta(5, Some(&pulled)));
        let want = [1.9, 2.0 + 0.3, -1.0 + 0.1];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{c:?}");
        }
    }
}
