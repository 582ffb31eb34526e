//! The built-in connectors.

pub mod debezium;
pub mod file;
