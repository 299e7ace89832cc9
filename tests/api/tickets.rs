//! Tickets and messages.
