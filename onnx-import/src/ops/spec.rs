//! What an op file declares: the opsets it handles, its inputs and outputs with their optionality
//! and whether they must be known at import time, its attributes with defaults and their opset
//! history, and the functions that import it (on run-time values) and fold it (on constants).

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::tensor::ConstTensor;

/// Imports one node on run-time values, emitting engine IR through the context.
pub type ImportFn = fn(&mut ImportCx<'_, '_>) -> Result<()>;

/// Folds one node whose inputs are all constants (absent optional inputs are `None`).
pub type FoldFn = fn(&NodeCx<'_>, &Consts) -> Result<ConstTensor>;

/// One ONNX op (default domain) as the importer supports it.
#[derive(Debug)]
pub struct OpDef {
    /// The ONNX op type.
    pub op_type: &'static str,
    /// Its declared form.
    pub spec: OpSpec,
    /// Its import on run-time values; `None` when it has only a constant form (it must fold).
    pub import: Option<ImportFn>,
    /// Its constant fold, used when every present input is a constant; `None` when it never folds
    /// (the import then runs on the constants, materialised in the engine graph).
    pub fold: Option<FoldFn>,
}

/// The declared form of an op.
#[derive(Debug)]
pub struct OpSpec {
    /// The first opset the importer handles the op at.
    pub since: i64,
    /// The last opset the importer handles the op at (`None`: every later one so far).
    pub until: Option<i64>,
    /// Positional inputs. A [`Presence::Variadic`] input may only come last.
    pub inputs: &'static [InputSpec],
    /// Positional outputs; the first is the one the importer produces.
    pub outputs: &'static [OutputSpec],
    /// Attributes the importer reads, with their defaults per opset range.
    pub attrs: &'static [AttrSpec],
    /// How the output's constness follows from the inputs' (for the coverage check).
    pub output: OutputRule,
}

impl OpSpec {
    /// A spec to complete with struct-update syntax: opsets from 1, one required value input,
    /// one output, no attributes.
    pub const DEFAULT: OpSpec = OpSpec {
        since: 1,
        until: None,
        inputs: &[InputSpec::value("X")],
        outputs: &[OutputSpec::produced("Y")],
        attrs: &[],
        output: OutputRule::Computed,
    };

    /// Whether the op is handled at `opset`.
    pub fn handles_opset(&self, opset: i64) -> bool {
        opset >= self.since && self.until.is_none_or(|u| opset <= u)
    }

    /// The opsets handled, for messages (`11..` or `6..=12`).
    pub fn opset_range(&self) -> String {
        match self.until {
            Some(u) => format!("{}..={u}", self.since),
            None => format!("{}..", self.since),
        }
    }

    /// The input spec that applies to position `i` at `opset` (the variadic last one repeats).
    pub fn input(&self, i: usize, opset: i64) -> Option<&InputSpec> {
        let declared: Vec<&InputSpec> = self.inputs.iter().filter(|s| s.exists_at(opset)).collect();
        match declared.get(i) {
            Some(s) => Some(*s),
            None => declared.last().copied().filter(|s| s.presence.repeats()),
        }
    }

    /// The attribute spec named `name` that applies at `opset`.
    pub fn attr(&self, name: &str, opset: i64) -> Option<&AttrSpec> {
        self.attrs.iter().find(|a| a.name == name && opset >= a.since && a.until.is_none_or(|u| opset <= u))
    }
}

/// Whether an input must be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// It must be given.
    Required,
    /// It may be absent (missing or named `""`).
    Optional,
    /// One or more values from here on.
    Variadic,
    /// Zero or more values from here on (Loop's loop-carried values).
    ZeroOrMore,
}

impl Presence {
    /// Whether the input repeats to the end of the list.
    pub fn repeats(self) -> bool {
        matches!(self, Presence::Variadic | Presence::ZeroOrMore)
    }
}

/// What the importer needs of an input's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any tensor: computed at run time, a parameter or a constant.
    Value,
    /// Its values at import time: a constant or an initializer (never computed at run time).
    Known,
}

/// One positional input.
#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    /// Its name in the ONNX operator documentation.
    pub name: &'static str,
    /// Whether it must be there.
    pub presence: Presence,
    /// What the importer needs of it.
    pub need: Need,
    /// The first opset with this input (earlier opsets pass it as an attribute, or not at all).
    pub since: i64,
}

impl InputSpec {
    /// A required input of any kind.
    pub const fn value(name: &'static str) -> Self {
        InputSpec { name, presence: Presence::Required, need: Need::Value, since: 1 }
    }

    /// A required input whose values must be known at import time.
    pub const fn known(name: &'static str) -> Self {
        InputSpec { name, presence: Presence::Required, need: Need::Known, since: 1 }
    }

    /// The same input, optional.
    pub const fn optional(self) -> Self {
        InputSpec { presence: Presence::Optional, ..self }
    }

    /// The same input, repeated one or more times.
    pub const fn variadic(self) -> Self {
        InputSpec { presence: Presence::Variadic, ..self }
    }

    /// The same input, repeated zero or more times.
    pub const fn zero_or_more(self) -> Self {
        InputSpec { presence: Presence::ZeroOrMore, ..self }
    }

    /// The same input, existing from `opset` on.
    pub const fn since(self, opset: i64) -> Self {
        InputSpec { since: opset, ..self }
    }

    /// Whether the input exists at `opset`.
    pub fn exists_at(&self, opset: i64) -> bool {
        opset >= self.since
    }
}

/// One positional output.
#[derive(Clone, Copy, Debug)]
pub struct OutputSpec {
    /// Its name in the ONNX operator documentation.
    pub name: &'static str,
    /// Whether the importer produces it (an output it does not produce must be absent or unused).
    pub produced: bool,
    /// Whether it repeats (Split's outputs): it may only come last.
    pub variadic: bool,
}

impl OutputSpec {
    /// An output the importer produces.
    pub const fn produced(name: &'static str) -> Self {
        OutputSpec { name, produced: true, variadic: false }
    }

    /// The same output, repeated one or more times.
    pub const fn variadic(self) -> Self {
        OutputSpec { variadic: true, ..self }
    }

    /// An optional output the importer does not produce: the node must leave it out.
    pub const fn not_produced(name: &'static str) -> Self {
        OutputSpec { name, produced: false, variadic: false }
    }
}

/// How a node's output constness follows from its inputs', for the coverage check (the import
/// itself decides by the values it meets; the pipeline checks that both agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputRule {
    /// Folded to a constant when every present input is a constant and the op folds; computed at
    /// run time otherwise.
    Computed,
    /// Always a constant once the batch is bound: it reads only its input's shape (Shape, Size).
    FromShape,
    /// The input itself (Identity): a constant, a parameter or a run-time value as the input is.
    PassThrough,
}

/// An attribute's default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrDefault {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f32),
    /// A list of integers.
    Ints(&'static [i64]),
    /// A string.
    Str(&'static str),
    /// No default: the op decides what absence means (`Transpose.perm`, `Conv.kernel_shape`, ...).
    Absent,
    /// The attribute must be given.
    Required,
}

/// One attribute over an opset range.
#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    /// Its name.
    pub name: &'static str,
    /// Its default over the range.
    pub default: AttrDefault,
    /// First opset of the range.
    pub since: i64,
    /// Last opset of the range (`None`: open).
    pub until: Option<i64>,
}

impl AttrSpec {
    /// An attribute with a default, at every opset.
    pub const fn new(name: &'static str, default: AttrDefault) -> Self {
        AttrSpec { name, default, since: 1, until: None }
    }

    /// An integer attribute with a default.
    pub const fn int(name: &'static str, default: i64) -> Self {
        Self::new(name, AttrDefault::Int(default))
    }

    /// A float attribute with a default.
    pub const fn float(name: &'static str, default: f32) -> Self {
        Self::new(name, AttrDefault::Float(default))
    }

    /// An attribute without a default.
    pub const fn absent(name: &'static str) -> Self {
        Self::new(name, AttrDefault::Absent)
    }

    /// A required attribute.
    pub const fn required(name: &'static str) -> Self {
        Self::new(name, AttrDefault::Required)
    }

    /// The same attribute over `since..=until` only.
    pub const fn opsets(self, since: i64, until: Option<i64>) -> Self {
        AttrSpec { since, until, ..self }
    }
}

/// The constant inputs of a node being folded, by position (absent optional inputs are `None`).
#[derive(Clone, Debug, Default)]
pub struct Consts(pub Vec<Option<ConstTensor>>);

impl Consts {
    /// Input `i`, when present.
    pub fn opt(&self, i: usize) -> Option<&ConstTensor> {
        self.0.get(i).and_then(Option::as_ref)
    }

    /// The present inputs in order.
    pub fn present(&self) -> impl Iterator<Item = &ConstTensor> {
        self.0.iter().flatten()
    }
}
