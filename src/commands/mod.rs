//! One module per subcommand.

pub mod bench;
pub mod devices;
pub mod evaluate;
pub mod inspect;
pub mod predict;
pub mod ps;
pub mod run;
pub mod secret;
pub mod worker;
