//! One module per subcommand.

pub mod bench;
pub mod devices;
pub mod inspect;
pub mod predict;
