//! Operator features.
