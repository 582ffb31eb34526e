//! Kafka Connect, in Rust: Connect's schema-and-struct data model ([`data`]), the records
//! connectors and transforms pass around ([`record`]), converters between records and
//! Kafka's bytes ([`convert`]) and Kafka's single message transforms and predicates
//! ([`transforms`]), with Kafka's class names and options. No I/O here: the worker, its
//! REST API and the built-in connectors build on these.

pub mod config;
pub mod connector;
pub mod connectors;
pub mod convert;
pub mod data;
pub mod distributed;
pub mod errors;
pub mod record;
pub mod rest;
pub mod rest_server;
pub mod runtime;
pub mod security;
pub mod storage;
pub mod transforms;
pub mod worker;
