//! Black-box tests: real servers on port 0 with their own SQLite files, real HTTP.
#![allow(clippy::unwrap_used)]

mod helpers;

mod abuse;
mod actions;
mod auth;
mod cli;
mod console;
mod errors;
mod feed;
mod lifecycle;
mod observe;
mod openapi;
mod operator;
mod privilege;
mod startup;
mod tickets;
