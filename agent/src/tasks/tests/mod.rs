//! Task lifecycle tests.
