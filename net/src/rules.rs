//! How the server folds a commit into the centre: the [`UpdateRule`] trait, what the server tells a
//! rule about a commit ([`CommitMeta`]: its staleness, the centre the worker pulled), and the plain
//! sum [`Add`]. The trainers' own rules (DynSGD's staleness scaling, ADAG's per-weight scaling) live
//! with their trainers in the root crate (`src/trainers/<name>.rs`); this crate keeps the mechanism.

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

/// `C <- C + delta`: the plain sum (DOWNPOUR, AGN, AEASGD and EAMSGD fold their commits with it).
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

#[cfg(test)]
pub(crate) mod testing {
    //! Rules that exercise the mechanism in this crate's tests: one that reads the staleness, one
    //! that reads the pulled centre (the shapes of DynSGD's and ADAG's rules, whose real versions
    //! live with their trainers).

    use super::{Add, CommitMeta, UpdateRule};

    /// `C <- C + delta / (staleness + 1)`.
    pub struct StaleScaled;

    impl UpdateRule for StaleScaled {
        fn apply(&self, centre: &mut [f32], commit: &[f32], meta: &CommitMeta<'_>) {
            let scale = 1.0 / (meta.staleness as f32 + 1.0);
            centre.iter_mut().zip(commit).for_each(|(c, d)| *c += d * scale);
        }
        fn name(&self) -> &'static str {
            "stale-scaled"
        }
    }

    /// `C <- C + delta / ((C - C_pulled)^2 + 1)` per weight; adds when the worker never pulled.
    pub struct DistanceScaled;

    impl UpdateRule for DistanceScaled {
        fn apply(&self, centre: &mut [f32], commit: &[f32], meta: &CommitMeta<'_>) {
            let Some(pulled) = meta.pulled_centre else { return Add.apply(centre, commit, meta) };
            for ((c, &d), &p) in centre.iter_mut().zip(commit).zip(pulled) {
                *c += d / ((*c - p) * (*c - p) + 1.0);
            }
        }
        fn needs_pulled_centre(&self) -> bool {
            true
        }
        fn name(&self) -> &'static str {
            "distance-scaled"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_adds() {
        let mut c = vec![1.0, 2.0];
        Add.apply(&mut c, &[0.5, -1.0], &CommitMeta { worker: 0, staleness: 3, pulled_centre: None });
        assert_eq!(c, vec![1.5, 1.0]);
    }
}
