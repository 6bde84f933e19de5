//! sql tests
