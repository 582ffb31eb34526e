//! The built-in connectors.

pub mod debezium;
pub mod file;
pub mod http_sink;
pub mod jdbc;
pub mod mysql;
pub mod postgres;
