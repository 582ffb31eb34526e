//! The built-in connectors.

pub mod debezium;
