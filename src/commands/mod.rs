//! One module per subcommand.

pub mod bench;
pub mod devices;
pub mod evaluate;
pub mod inspect;
pub mod job;
pub mod object_paths;
pub mod predict;
pub mod ps;
pub mod punchcard;
pub mod run;
pub mod secret;
pub mod submit;
pub mod transform;
pub mod worker;
