//! threada: a self-hosted, multi-tenant, omnichannel support-ticket API on one SQLite
//! file. See README.md for running it and SPEC.md for the contract.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod actions;
pub mod auth;
pub mod bulk;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod idempotency;
pub mod pagination;
pub mod ratelimit;
pub mod routes;
pub mod startup;
pub mod state;
pub mod tickets;
