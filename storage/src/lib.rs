//! eddy storage
